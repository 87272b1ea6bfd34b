import t, { type Test } from 'tap';
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bytesSublevel, openDatabase, SUBLEVELS, type BatchOp, type Database } from '../../src/storage/db.ts';
import { openKeyFile, openKeyring, type KeyFileOptions } from '../../src/storage/keyring.ts';

/** KeyObjects compare as empty objects: compare their bytes. */
const raw = (key: KeyObject): Buffer => key.export();

// Cheap KDF for tests; the default cost is exercised by the server's own start-up.
const scrypt = { N: 2 ** 10, r: 8, p: 1 };

async function tempDir(t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-keyring-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

function keyFile(dataDir: string, passphrase: string | undefined, warnings: string[] = []): Promise<Awaited<ReturnType<typeof openKeyFile>>> {
  const options: KeyFileOptions = { dataDir, passphrase, warn: (m) => warnings.push(m), scrypt };
  return openKeyFile(options);
}

async function openDb(t: Test, dir: string): Promise<Database> {
  const db = await openDatabase(path.join(dir, 'db'));
  t.teardown(() => db.close());
  return db;
}

t.test('key file: created 0600 with scrypt parameters, and opens to the same master key', async (t) => {
  const dir = await tempDir(t);
  const first = await keyFile(dir, 'correct horse battery staple');
  const file = path.join(dir, 'keys', 'master.key');
  t.equal((await fs.stat(file)).mode & 0o777, 0o600);
  const json = JSON.parse(await fs.readFile(file, 'utf8'));
  t.match(json, { format: 'sealed-fhir master key', version: 1, kdf: { name: 'scrypt', N: 1024, r: 8, p: 1 } });
  t.match(json, { salt: /^[A-Za-z0-9_-]{22}$/, nonce: /^[A-Za-z0-9_-]{16}$/, ciphertext: /^[A-Za-z0-9_-]{64}$/ });
  const wrapped = await first.wrap(new Uint8Array(32).fill(7), 'kek patient/a');
  const again = await keyFile(dir, 'correct horse battery staple');
  t.same(await again.unwrap(wrapped, 'kek patient/a'), new Uint8Array(32).fill(7), 'same master key after reopening');
  t.same(await again.deriveKey('content-hash'), await first.deriveKey('content-hash'));
  t.notSame(await again.deriveKey('content-hash'), await again.deriveKey('checkpoint'), 'one subkey per purpose');
  t.same(await fs.readdir(path.join(dir, 'keys')), ['master.key'], 'no passphrase file when one is configured');
});

t.test('key file: a wrong passphrase is a clear start-up error', async (t) => {
  const dir = await tempDir(t);
  await keyFile(dir, 'right');
  await t.rejects(keyFile(dir, 'wrong'), { code: 'ERR_MASTER_KEY_PASSPHRASE', message: /wrong MASTER_KEY_PASSPHRASE/ });
});

t.test('key file: a damaged file or absurd KDF parameters are refused', async (t) => {
  const dir = await tempDir(t);
  await keyFile(dir, 'right');
  const file = path.join(dir, 'keys', 'master.key');
  const json = JSON.parse(await fs.readFile(file, 'utf8'));
  await fs.writeFile(file, JSON.stringify({ ...json, kdf: { name: 'scrypt', N: 2 ** 30, r: 8, p: 1 } }));
  await t.rejects(keyFile(dir, 'right'), { code: 'ERR_MASTER_KEY' });
  await fs.writeFile(file, '{not json');
  await t.rejects(keyFile(dir, 'right'), { code: 'ERR_MASTER_KEY' });
});

t.test('key file: development mode generates a passphrase file and warns loudly every start', async (t) => {
  const dir = await tempDir(t);
  const warnings: string[] = [];
  const first = await keyFile(dir, undefined, warnings);
  const passFile = path.join(dir, 'keys', 'master.passphrase');
  t.equal((await fs.stat(passFile)).mode & 0o777, 0o600);
  const passphrase = (await fs.readFile(passFile, 'utf8')).trim();
  t.match(passphrase, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
  t.equal(warnings.length, 1);
  t.match(warnings[0], /MASTER_KEY_PASSPHRASE is not set/);
  t.match(warnings[0], passFile);
  const wrapped = await first.wrap(new Uint8Array(32).fill(1), 'x');
  const second = await keyFile(dir, undefined, warnings);
  t.same(await second.unwrap(wrapped, 'x'), new Uint8Array(32).fill(1), 'the stored passphrase opens the key');
  t.equal(warnings.length, 2, 'warned again');
  const explicit = await keyFile(dir, passphrase);
  t.same(await explicit.unwrap(wrapped, 'x'), new Uint8Array(32).fill(1), 'the same passphrase given in config');
  await fs.rm(passFile);
  await t.rejects(keyFile(dir, undefined), { code: 'ERR_MASTER_KEY', message: /MASTER_KEY_PASSPHRASE is not set/ });
});

t.test('patient KEKs: created lazily, written only by the commit, persisted, destroyed', async (t) => {
  const dir = await tempDir(t);
  const keyStore = await keyFile(dir, 'pass');
  const db = await openDb(t, dir);
  const kek = bytesSublevel(db, SUBLEVELS.kek);
  const keyring = await openKeyring({ db, keyStore });

  const concurrent = await Promise.all([1, 2, 3].map(() => keyring.kekForWrite('patient/p1')));
  const first = concurrent[0]!;
  t.equal(first.ops.length, 1, 'a new KEK comes with its op');
  t.equal(await kek.get('patient/p1'), undefined, 'and is not written by the keyring itself');
  for (const c of [...concurrent, await keyring.kekForWrite('patient/p1')]) {
    const value = (ops: BatchOp[]) => (ops[0]?.type === 'put' ? ops[0].value : undefined);
    t.same([raw(c.key), value(c.ops)], [raw(first.key), value(first.ops)], 'writers before the commit share the key and its op');
  }
  await t.rejects(keyring.kekForRead('patient/p1'), { code: 'ERR_KEY_DESTROYED' }, 'not readable before it is committed');

  await db.batch(first.ops, { sync: true });
  const stored = await kek.get('patient/p1');
  t.equal(stored?.length, 61, 'stored wrapped (format, nonce, key, tag)');
  t.equal(Buffer.from(stored!).indexOf(raw(first.key)), -1, 'never in the clear');
  // Until a read confirms the commit, writers share the pending KEK without a database read and carry its
  // (idempotent) put; the first read moves it to the cache, and from then on there are no ops.
  const unconfirmed = await keyring.kekForWrite('patient/p1');
  t.same(raw(unconfirmed.key), raw(first.key), 'the same key before confirmation');
  t.same(raw(await keyring.kekForRead('patient/p1')), raw(first.key));
  const committed = await keyring.kekForWrite('patient/p1');
  t.same([raw(committed.key), committed.ops], [raw(first.key), []], 'no ops once committed and confirmed');

  const other = await keyring.kekForWrite('patient/p2');
  t.notSame(raw(other.key), raw(first.key), 'one KEK per patient');
  const node = await keyring.kekForWrite('node');
  await db.batch([...other.ops, ...node.ops], { sync: true });

  const reopened = await openKeyring({ db, keyStore: await keyFile(dir, 'pass') });
  t.same(raw(await reopened.kekForRead('patient/p1')), raw(first.key), 'persisted');
  t.same(raw(await reopened.kekForRead('node')), raw(node.key), 'the node KEK too');
  t.equal(reopened.contentHash(new Uint8Array([1])), keyring.contentHash(new Uint8Array([1])), 'content-hash key is stable');

  await reopened.destroyPatientKey('p1');
  t.equal(await kek.get('patient/p1'), undefined, 'wrapped KEK deleted');
  await t.rejects(reopened.kekForRead('patient/p1'), { code: 'ERR_KEY_DESTROYED', status: 410 });
  t.same(raw(await reopened.kekForRead('patient/p2')), raw(other.key), 'other patients are untouched');
  const fresh = await reopened.kekForWrite('patient/p1');
  t.notSame(raw(fresh.key), raw(first.key), 'new data after erasure gets a new key');
});

t.test('fresh KEKs: no lookup for a patient id just generated; pending ones are confirmed in batches', async (t) => {
  const dir = await tempDir(t);
  const keyStore = await keyFile(dir, 'pass');
  const db = await openDb(t, dir);
  const kek = bytesSublevel(db, SUBLEVELS.kek);
  const keyring = await openKeyring({ db, keyStore });

  // what a lookup would have found: `fresh` promises there is none, so the keyring does not read it
  const stored = await keyring.kekForWrite('patient/p1');
  await db.batch(stored.ops, { sync: true });
  const reopened = await openKeyring({ db, keyStore });
  const fresh = await reopened.kekForWrite('patient/p1', { fresh: true });
  t.equal(fresh.ops.length, 1, 'a fresh KEK is created with its op, without reading the database');
  t.notSame(raw(fresh.key), raw(stored.key));
  const shared = await reopened.kekForWrite('patient/p1', { fresh: true });
  t.same(raw(shared.key), raw(fresh.key), 'but one created in this process (pending) is shared');
  const node = await reopened.kekForWrite('node', { fresh: true });
  t.same(node.ops.length, 1);
  await db.batch(node.ops, { sync: true });
  t.same((await reopened.kekForWrite('node', { fresh: true })).ops.length, 1, 'pending until confirmed');
  t.same(raw(await (await openKeyring({ db, keyStore })).kekForRead('node')), raw(node.key), 'committed node KEK');
  const nodeAgain = await (await openKeyring({ db, keyStore })).kekForWrite('node', { fresh: true });
  t.same([raw(nodeAgain.key), nodeAgain.ops], [raw(node.key), []], 'the node KEK is never taken as fresh: it is looked up');

  // many new patients committed: once more than the sweep size are pending, one batched read confirms them
  const names = Array.from({ length: 1100 }, (_, i) => `patient/n${i}`);
  const created: Array<{ key: Parameters<typeof raw>[0]; ops: BatchOp[] }> = [];
  for (const name of names) created.push(await keyring.kekForWrite(name, { fresh: true }));
  await db.batch(created.flatMap((c) => c.ops), { sync: true });
  await keyring.kekForWrite('patient/trigger', { fresh: true });
  let confirmed = false;
  for (let i = 0; i < 1000 && !confirmed; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    confirmed = (await keyring.kekForWrite(names[0]!)).ops.length === 0;
  }
  t.ok(confirmed, 'a committed pending KEK is confirmed by the sweep (no more ops)');
  const again = await keyring.kekForWrite(names[0]!);
  t.same(raw(again.key), raw(created[0]!.key), 'with the key that was pending');
  t.same(raw(await keyring.kekForRead(names[1099]!)), raw(created[1099]!.key));
  t.equal((await kek.get(names[5]!))?.length, 61);
});

t.test('KEK names are checked', async (t) => {
  const dir = await tempDir(t);
  const db = await openDb(t, dir);
  const keyring = await openKeyring({ db, keyStore: await keyFile(dir, 'pass') });
  for (const name of ['patient/', 'patient/a/b', 'Patient/1', 'nodes', '', 'patient/' + 'x'.repeat(65)]) {
    await t.rejects(keyring.kekForWrite(name), { code: 'ERR_KEK_NAME' }, JSON.stringify(name));
  }
  await t.rejects(keyring.destroyPatientKey('a/b'), { code: 'ERR_KEK_NAME' });
});

t.test('the KEK cache is bounded and still answers from the database', async (t) => {
  const dir = await tempDir(t);
  const db = await openDb(t, dir);
  const keyring = await openKeyring({ db, keyStore: await keyFile(dir, 'pass'), cacheSize: 2 });
  const keys = [];
  for (const id of ['a', 'b', 'c', 'd']) {
    const created = await keyring.kekForWrite(`patient/${id}`);
    await db.batch(created.ops);
    keys.push(raw(created.key));
  }
  for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) t.same(raw(await keyring.kekForRead(`patient/${id}`)), keys[i]);
});
