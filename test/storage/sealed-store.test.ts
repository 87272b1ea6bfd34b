import t, { type Test } from 'tap';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CID } from 'multiformats/cid';
import { bytesSublevel, openDatabase, SUBLEVELS, type BatchOp, type Database } from '../../src/storage/db.ts';
import { createHeliaBlockStore, type HeliaBlockStore } from '../../src/storage/helia-blocks.ts';
import { openKeyFile, openKeyring, type Keyring } from '../../src/storage/keyring.ts';
import type { FhirError } from '../../src/errors.ts';
import { dataKeyLabel, newKey, sealBlock, wrapKey } from '../../src/storage/envelope.ts';
import { createSealedStore } from '../../src/storage/sealed-store.ts';
import type { VersionStamp } from '../../src/storage/envelope.ts';
import type { SealedStore, SealInput, SealedVersion } from '../../src/storage/types.ts';

interface Node {
  dir: string;
  db: Database;
  blocks: HeliaBlockStore;
  keyring: Keyring;
  sealed: SealedStore;
  close(): Promise<void>;
}

// The crypto properties are tested on the decrypting path: the plaintext cache is off unless a test turns it on.
async function startNode(dir: string, cacheBytes = 0): Promise<Node> {
  const db = await openDatabase(path.join(dir, 'db'));
  const keyStore = await openKeyFile({ dataDir: dir, passphrase: 'test passphrase', warn: () => {}, scrypt: { N: 1024, r: 8, p: 1 } });
  const keyring = await openKeyring({ db, keyStore });
  const blocks = await createHeliaBlockStore({ db });
  return {
    dir,
    db,
    blocks,
    keyring,
    sealed: createSealedStore({ blocks, keyring, cacheBytes }),
    async close() {
      await blocks.close();
      await db.close();
    },
  };
}

async function tempNode(t: Test, cacheBytes = 0): Promise<Node> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-sealed-'));
  const node = await startNode(dir, cacheBytes);
  let closed = false;
  t.teardown(async () => {
    if (!closed) await node.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { ...node, close: async () => ((closed = true), node.close()) };
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const patient = (family: string) => encode({ resourceType: 'Patient', id: 'p1', name: [{ family, given: ['Ada'] }] });

/** What the version record says beyond the address: bound into the data key's label. */
const stamp: VersionStamp = { lastUpdated: '2025-06-01T12:00:00.000Z', method: 'PUT' };

/** Seals (with `stamp` unless the input names its own) and commits; the result is what a record keeps. */
async function sealAndCommit(node: Node, input: Omit<SealInput, keyof VersionStamp> & Partial<VersionStamp>): Promise<SealedVersion & VersionStamp> {
  const full = { ...stamp, ...input };
  const { sealed, ops } = await node.sealed.seal(full);
  await node.db.batch(ops as BatchOp[], { sync: true });
  return { ...sealed, lastUpdated: full.lastUpdated, method: full.method };
}

t.test('seal, commit, open: the plaintext comes back, the index keeps only CID, KEK name, wrapped key and HMAC', async (t) => {
  const node = await tempNode(t);
  const input: SealInput = { resourceType: 'Patient', id: 'p1', versionId: '1', plaintext: patient('Zyxwvutsrq'), kek: 'patient/p1', ...stamp };
  const { sealed, ops } = await node.sealed.seal(input);
  t.equal(ops.length, 2, 'the new patient KEK and the block go into the commit');
  t.equal(CID.parse(sealed.cid).version, 1);
  t.equal(sealed.kek, 'patient/p1');
  t.match(sealed.wrappedKey, /^[A-Za-z0-9_-]{82}$/, '61 bytes, base64url');
  t.equal(sealed.hmac, node.keyring.contentHash(input.plaintext));
  await node.db.batch(ops, { sync: true });
  t.same(await node.sealed.open({ ...input, ...sealed }), input.plaintext);

  const second = await node.sealed.seal({ ...input, versionId: '2' });
  t.equal(second.ops.length, 1, 'the KEK exists now: only the block');
  t.not(second.sealed.wrappedKey, sealed.wrappedKey, 'a fresh data key per version');
  t.not(second.sealed.cid, sealed.cid, 'same plaintext, different ciphertext');
  t.equal(second.sealed.hmac, sealed.hmac, 'same plaintext, same keyed hash');

  const node2 = await sealAndCommit(node, { resourceType: 'Organization', id: 'o1', versionId: '1', plaintext: encode({ resourceType: 'Organization' }), kek: 'node' });
  t.same(await node.sealed.open({ resourceType: 'Organization', id: 'o1', versionId: '1', ...node2 }), encode({ resourceType: 'Organization' }));
});

t.test('a version cannot be opened as another one, nor with another key record', async (t) => {
  const node = await tempNode(t);
  const v1 = await sealAndCommit(node, { resourceType: 'Patient', id: 'p1', versionId: '1', plaintext: patient('A'), kek: 'patient/p1' });
  const v2 = await sealAndCommit(node, { resourceType: 'Patient', id: 'p1', versionId: '2', plaintext: patient('B'), kek: 'patient/p1' });
  const other = await sealAndCommit(node, { resourceType: 'Patient', id: 'p2', versionId: '1', plaintext: patient('C'), kek: 'patient/p2' });
  const swaps: Array<[string, Parameters<SealedStore['open']>[0]]> = [
    ["v1's block and key read as v2", { resourceType: 'Patient', id: 'p1', versionId: '2', ...v1 }],
    ["v2's block under v1's wrapped key", { resourceType: 'Patient', id: 'p1', versionId: '1', ...v1, cid: v2.cid }],
    ["p2's record read as p1", { resourceType: 'Patient', id: 'p1', versionId: '1', ...other }],
    ["p1's record unwrapped with p2's KEK", { resourceType: 'Patient', id: 'p1', versionId: '1', ...v1, kek: 'patient/p2' }],
    ['read as another type', { resourceType: 'Person', id: 'p1', versionId: '1', ...v1 }],
  ];
  for (const [name, address] of swaps) await t.rejects(node.sealed.open(address), { code: 'ERR_DECRYPT', status: 500 }, name);
  await t.rejects(node.sealed.open({ resourceType: 'Patient', id: 'p1', versionId: '1', ...v1, cid: 'not-a-cid' }), { code: 'ERR_BLOCK_CORRUPT' });
});

t.test("the record's lastUpdated and method are bound to the data key; keys wrapped before stamps still open", async (t) => {
  const node = await tempNode(t);
  const address = { resourceType: 'Patient', id: 'p1', versionId: '1' };
  const v1 = await sealAndCommit(node, { ...address, plaintext: patient('A'), kek: 'patient/p1' });
  t.same(await node.sealed.open({ ...address, ...v1 }), patient('A'));
  const altered: Array<[string, Parameters<SealedStore['open']>[0]]> = [
    ['lastUpdated a second later', { ...address, ...v1, lastUpdated: '2025-06-01T12:00:01.000Z' }],
    ['method POST', { ...address, ...v1, method: 'POST' }],
  ];
  for (const [name, changed] of altered) {
    const err = await node.sealed.open(changed).catch((e: unknown) => e as FhirError);
    t.match(err, { code: 'ERR_DECRYPT', status: 500, message: 'Stored data could not be decrypted' }, name);
    t.match(String((err as FhirError).cause), /Patient\/p1\/_history\/1: its wrapped data key does not unwrap under KEK patient\/p1/, `${name}: the cause names the version`);
  }

  // A data key wrapped as before stamps were bound (label without them): still opens, whatever the record says.
  const kek = await node.keyring.kekForRead('patient/p1');
  const dataKey = newKey();
  const legacy = sealBlock(dataKey, patient('L'), address);
  const { cid, ops } = await node.blocks.stage(legacy);
  await node.db.batch(ops as BatchOp[], { sync: true });
  const old = { ...address, ...v1, cid: cid.toString(), wrappedKey: Buffer.from(wrapKey(kek, dataKey, dataKeyLabel('patient/p1', address))).toString('base64url') };
  t.same(await node.sealed.open(old), patient('L'), 'an unstamped key opens');
  t.same(await node.sealed.open({ ...old, lastUpdated: '1999-01-01T00:00:00.000Z' }), patient('L'), '(its stamp is not authenticated)');
});

t.test('a damaged KEK record: every version under it is ERR_DECRYPT, and the cause names the KEK', async (t) => {
  const node = await tempNode(t);
  const address = { resourceType: 'Observation', id: 'o1', versionId: '1' };
  const obs = await sealAndCommit(node, { ...address, plaintext: encode({ resourceType: 'Observation' }), kek: 'patient/p1' });
  await node.close();
  const db = await openDatabase(path.join(node.dir, 'db'));
  const keks = bytesSublevel(db, SUBLEVELS.kek);
  const wrapped = Uint8Array.from((await keks.get('patient/p1'))!);
  wrapped[20]! ^= 1;
  await keks.put('patient/p1', wrapped);
  await db.close();
  const again = await startNode(node.dir);
  t.teardown(() => again.close());
  const err = (await again.sealed.open({ ...address, ...obs }).catch((e: unknown) => e)) as FhirError;
  t.match(err, { code: 'ERR_DECRYPT', status: 500, message: 'Stored data could not be decrypted' });
  t.match(String(err.cause), /KEK patient\/p1 does not unwrap under the master key/);
});

t.test('erasure: destroying the patient KEK makes every version unreadable (410), others stay readable', async (t) => {
  const node = await tempNode(t);
  const address = { resourceType: 'Observation', id: 'o1', versionId: '1' };
  const obs = await sealAndCommit(node, { ...address, plaintext: encode({ resourceType: 'Observation' }), kek: 'patient/p1' });
  const kept = await sealAndCommit(node, { ...address, id: 'o2', plaintext: encode({ resourceType: 'Observation' }), kek: 'patient/p2' });
  await node.sealed.open({ ...address, ...obs });
  await node.keyring.destroyPatientKey('p1');
  await t.rejects(node.sealed.open({ ...address, ...obs }), { code: 'ERR_KEY_DESTROYED', status: 410 });
  t.ok(await node.blocks.has(CID.parse(obs.cid)), 'the ciphertext may linger: without the key it is noise');
  t.same(await node.sealed.open({ ...address, id: 'o2', ...kept }), encode({ resourceType: 'Observation' }));
});

t.test('a corrupted block is detected before decryption', async (t) => {
  const node = await tempNode(t);
  const address = { resourceType: 'Patient', id: 'p1', versionId: '1' };
  const sealed = await sealAndCommit(node, { ...address, plaintext: patient('A'), kek: 'patient/p1' });
  const blocks = bytesSublevel(node.db, SUBLEVELS.blocks);
  const [[key, value]] = await blocks.iterator().all();
  const flipped = Uint8Array.from(value!);
  flipped[10]! ^= 1;
  await blocks.put(key!, flipped);
  await t.rejects(node.sealed.open({ ...address, ...sealed }), { code: 'ERR_BLOCK_CORRUPT' });
});

t.test('no plaintext PHI anywhere on disk, after a restart still readable', async (t) => {
  const node = await tempNode(t);
  const family = 'Zyxwvutsrq';
  const addresses = [];
  for (let i = 1; i <= 20; i++) {
    const address = { resourceType: 'Patient', id: `p${i}`, versionId: '1' };
    addresses.push({ ...address, ...(await sealAndCommit(node, { ...address, plaintext: patient(family), kek: `patient/p${i}` })) });
  }
  await node.close();
  const files: string[] = [];
  for (const entry of await fs.readdir(node.dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name));
  }
  t.ok(files.some((f) => f.endsWith('.log') || f.endsWith('.ldb')), 'the LevelDB files were scanned');
  const needles = [family, Buffer.from(family, 'utf16le').toString('latin1'), Buffer.from(family).toString('base64').slice(0, 12)];
  for (const file of files) {
    const bytes = (await fs.readFile(file)).toString('latin1');
    for (const needle of needles) t.equal(bytes.indexOf(needle), -1, `${path.relative(node.dir, file)} has no ${JSON.stringify(needle)}`);
  }
  const again = await startNode(node.dir);
  t.teardown(() => again.close());
  for (const address of addresses) t.same(await again.sealed.open(address), patient(family));
});

t.test('the plaintext cache answers only for the exact sealed address, and erasure still wins', async (t) => {
  const node = await tempNode(t, 1024 * 1024);
  const v1 = await sealAndCommit(node, { resourceType: 'Patient', id: 'p1', versionId: '1', plaintext: patient('A'), kek: 'patient/p1' });
  const v2 = await sealAndCommit(node, { resourceType: 'Patient', id: 'p1', versionId: '2', plaintext: patient('B'), kek: 'patient/p1' });
  const address1 = { resourceType: 'Patient', id: 'p1', versionId: '1' };
  t.same(await node.sealed.open({ ...address1, ...v1 }), patient('A'), 'a hit gives the same plaintext');
  // A record pointing at another version's block (or wrapped key) must fail exactly as without the cache.
  await t.rejects(node.sealed.open({ ...address1, ...v2 }), { code: 'ERR_DECRYPT' });
  await t.rejects(node.sealed.open({ ...address1, ...v1, wrappedKey: v2.wrappedKey }), { code: 'ERR_DECRYPT' });
  await node.keyring.destroyPatientKey('p1');
  node.sealed.forget('patient/p1');
  await t.rejects(node.sealed.open({ ...address1, ...v1 }), { code: 'ERR_KEY_DESTROYED' });
});

t.test('openMany: every version in order, as open gives it, from the cache or from blocks fetched together', async (t) => {
  for (const cacheBytes of [0, 1024 * 1024]) {
    const node = await tempNode(t, cacheBytes);
    const addresses: Array<Parameters<SealedStore['open']>[0]> = [];
    for (let i = 0; i < 12; i++) {
      const address = { resourceType: 'Observation', id: `o${i}`, versionId: '1' };
      const sealed = await sealAndCommit(node, { ...address, plaintext: encode({ resourceType: 'Observation', id: `o${i}` }), kek: `patient/p${i % 3}` });
      addresses.push({ ...address, ...sealed });
    }
    const label = cacheBytes ? 'cached' : 'uncached';
    const expected = addresses.map((a) => encode({ resourceType: 'Observation', id: a.id }));
    t.same(await node.sealed.openMany(addresses), expected, `${label}: in order`);
    t.same(await node.sealed.openMany([...addresses].reverse()), [...expected].reverse(), `${label}: any order`);
    t.same(await node.sealed.openMany([]), [], `${label}: nothing`);
    // each KEK is asked for once per call, not once per version
    const asked: string[] = [];
    const counting = createSealedStore({ blocks: node.blocks, keyring: { ...node.keyring, kekForRead: (name: string) => (asked.push(name), node.keyring.kekForRead(name)) }, cacheBytes });
    t.same(await counting.openMany(addresses), expected, `${label}: through a counting keyring`);
    t.same(asked.sort(), ['patient/p0', 'patient/p1', 'patient/p2'], `${label}: one KEK lookup per name`);
    // one bad version fails the whole call, as open fails for it
    await t.rejects(node.sealed.openMany([addresses[0]!, { ...addresses[1]!, versionId: '2' }]), { code: 'ERR_DECRYPT' }, `${label}: a swapped address`);
    await node.keyring.destroyPatientKey('p1');
    node.sealed.forget('patient/p1');
    await t.rejects(node.sealed.openMany(addresses), { code: 'ERR_KEY_DESTROYED' }, `${label}: an erased patient's version`);
    t.same(await node.sealed.openMany(addresses.filter((_, i) => i % 3 !== 1)), expected.filter((_, i) => i % 3 !== 1), `${label}: the others`);
  }
});
