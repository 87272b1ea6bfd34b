/** sha256.ts takes the digest as a latin1 string for speed: it must give exactly the bytes of the Buffer digest. */
import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { sha256 } from '../../src/storage/sha256.ts';

const reference = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

t.test('equals the Buffer digest for bytes of every length around the block size', async (t) => {
  for (let n = 0; n <= 130; n++) {
    const data = randomBytes(n);
    t.same(sha256(data), reference(data), `${n} bytes`);
  }
  // the FIPS 180-2 vector for "abc", whose digest holds bytes above 0x7f (latin1 must keep them as they are)
  t.equal(sha256(Buffer.from('abc')).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

t.test('a string is hashed as its UTF-8 bytes', async (t) => {
  for (const text of ['', '\0{"a":1}', 'Müller', '患者', '\u{1F600}', 'x'.repeat(1000)]) {
    t.same(sha256(text), reference(Buffer.from(text, 'utf8')), JSON.stringify(text.slice(0, 20)));
  }
});

t.test('every result is its own 32 bytes, not overwritten by the next', async (t) => {
  const inputs = Array.from({ length: 600 }, (_, i) => Buffer.from(String(i)));
  const results = inputs.map((b) => sha256(b));
  t.ok(results.every((r, i) => r.length === 32 && r.equals(reference(inputs[i]!))));
});
