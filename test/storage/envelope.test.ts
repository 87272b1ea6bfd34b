import t from 'tap';
import { createHmac } from 'node:crypto';
import {
  blockAad,
  contentHash,
  dataKeyLabel,
  kekLabel,
  newKey,
  openBlock,
  sealBlock,
  unwrapKey,
  wrapKey,
  WRAPPED_KEY_BYTES,
  type VersionAddress,
} from '../../src/storage/envelope.ts';

const address: VersionAddress = { resourceType: 'Patient', id: 'p1', versionId: '3' };
const plaintext = new TextEncoder().encode('{"resourceType":"Patient","id":"p1","name":[{"family":"Zyxwvutsrq"}]}');

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index < 0 ? copy.length + index : index]! ^= 0x01;
  return copy;
}

t.test('a sealed block opens to the same bytes and carries neither key nor plaintext', async (t) => {
  const key = newKey();
  const block = sealBlock(key, plaintext, address);
  t.same(openBlock(key, block, address), plaintext);
  t.equal(block.length, 4 + 12 + plaintext.length + 16, 'header, nonce, ciphertext, tag');
  t.same([...block.subarray(0, 4)], [0x53, 0x46, 0x42, 0x01], 'magic and format version');
  t.equal(Buffer.from(block).indexOf(Buffer.from('Zyxwvutsrq')), -1);
  t.equal(Buffer.from(block).indexOf(Buffer.from(key)), -1);
  t.notSame(sealBlock(key, plaintext, address), block, 'a fresh nonce each time');
  t.same(openBlock(key, sealBlock(key, new Uint8Array(0), address), address), new Uint8Array(0), 'empty plaintext');
});

t.test('the associated data binds type, id and version', async (t) => {
  const key = newKey();
  const block = sealBlock(key, plaintext, address);
  const others: Array<[string, VersionAddress]> = [
    ['another version', { ...address, versionId: '4' }],
    ['another id', { ...address, id: 'p2' }],
    ['another type', { ...address, resourceType: 'Practitioner' }],
  ];
  for (const [name, other] of others) {
    t.throws(() => openBlock(key, block, other), { code: 'ERR_DECRYPT', status: 500 }, name);
  }
  t.not(blockAad(address).toString(), blockAad({ ...address, versionId: '33' }).toString());
});

t.test('tampering, truncation and the wrong key are all one opaque ERR_DECRYPT', async (t) => {
  const key = newKey();
  const block = sealBlock(key, plaintext, address);
  const cases: Array<[string, Uint8Array, Uint8Array]> = [
    ['flipped header byte', flip(block, 3), key],
    ['flipped nonce byte', flip(block, 5), key],
    ['flipped ciphertext byte', flip(block, 20), key],
    ['flipped tag byte', flip(block, -1), key],
    ['truncated', block.subarray(0, 20), key],
    ['empty', new Uint8Array(0), key],
    ['wrong key', block, newKey()],
  ];
  for (const [name, bytes, k] of cases) {
    t.throws(() => openBlock(k, bytes, address), { code: 'ERR_DECRYPT', message: 'Stored data could not be decrypted' }, name);
  }
});

t.test('key wrapping round-trips and is bound to its label and its KEK', async (t) => {
  const kek = newKey();
  const key = newKey();
  const label = dataKeyLabel('patient/p1', address);
  const wrapped = wrapKey(kek, key, label);
  t.equal(wrapped.length, WRAPPED_KEY_BYTES);
  t.same(unwrapKey(kek, wrapped, label), key);
  const failures: Array<[string, () => unknown]> = [
    ['other version label', () => unwrapKey(kek, wrapped, dataKeyLabel('patient/p1', { ...address, versionId: '9' }))],
    ['other KEK name in label', () => unwrapKey(kek, wrapped, dataKeyLabel('node', address))],
    ['KEK label instead of data key label', () => unwrapKey(kek, wrapped, kekLabel('patient/p1'))],
    ['other KEK', () => unwrapKey(newKey(), wrapped, label)],
    ['flipped byte', () => unwrapKey(kek, flip(wrapped, 20), label)],
    ['truncated', () => unwrapKey(kek, wrapped.subarray(1), label)],
  ];
  for (const [name, fn] of failures) t.throws(fn, { code: 'ERR_DECRYPT' }, name);
  t.throws(() => wrapKey(kek, new Uint8Array(16), label), RangeError, 'only 32-byte keys are wrapped');

  // A stamped label binds the record's lastUpdated and method too, and never equals an unstamped one.
  const stamp = { lastUpdated: '2025-06-01T12:00:00.000Z', method: 'PUT' };
  const stamped = dataKeyLabel('patient/p1', address, stamp);
  t.equal(stamped, `${label} 2025-06-01T12:00:00.000Z PUT`);
  const wrappedStamped = wrapKey(kek, key, stamped);
  t.same(unwrapKey(kek, wrappedStamped, stamped), key);
  for (const [name, other] of [
    ['unstamped', label],
    ['other lastUpdated', dataKeyLabel('patient/p1', address, { ...stamp, lastUpdated: '2025-06-01T12:00:00.001Z' })],
    ['other method', dataKeyLabel('patient/p1', address, { ...stamp, method: 'POST' })],
  ] as const) {
    t.throws(() => unwrapKey(kek, wrappedStamped, other), { code: 'ERR_DECRYPT' }, `stamped key under the ${name} label`);
  }
  t.throws(() => sealBlock(new Uint8Array(16), plaintext, address), RangeError, 'only AES-256 keys');
});

t.test('content hash is base64url HMAC-SHA-256 under the given key', async (t) => {
  const key = newKey();
  const expected = createHmac('sha256', key).update(plaintext).digest('base64url');
  t.equal(contentHash(key, plaintext), expected);
  t.match(contentHash(key, plaintext), /^[A-Za-z0-9_-]{43}$/);
  t.not(contentHash(newKey(), plaintext), expected, 'unguessable without the key');
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
  const rfc = contentHash(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'));
  t.equal(Buffer.from(rfc, 'base64url').toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});
