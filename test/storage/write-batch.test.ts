/**
 * writeBatch (db.ts) writes the node's commits through a chained batch instead of `db.batch(ops)`, for speed. It
 * must store exactly what the array form stores, in every encoding and sublevel the node uses, and stay atomic.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { bytesSublevel, jsonSublevel, openDatabase, PRESENT_BYTES, stringSublevel, writeBatch, type BatchOp, type Database } from '../../src/storage/db.ts';

async function tempDatabase(t: Test): Promise<Database> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'write-batch-'));
  const db = await openDatabase(dir);
  t.teardown(async () => {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return db;
}

/** Every key and value of the database as raw bytes, hex-encoded. */
async function rawContents(db: Database): Promise<string[]> {
  const out: string[] = [];
  for await (const [key, value] of db.iterator({ keyEncoding: 'view', valueEncoding: 'view' })) {
    out.push(`${Buffer.from(key as unknown as Uint8Array).toString('hex')}=${Buffer.from(value).toString('hex')}`);
  }
  return out;
}

/** One operation of each kind the node writes: root keys with byte values, and utf8, json and bytes sublevels. */
function mixedOps(db: Database): BatchOp[] {
  const strings = stringSublevel(db, 'search-value');
  const records = jsonSublevel<{ versionId: string; deleted?: boolean }>(db, 'head');
  const bytes = bytesSublevel(db, 'ledger-hash');
  return [
    { type: 'put', key: `${strings.prefix}Patient/name/hx\x00p1`, value: PRESENT_BYTES },
    { type: 'put', sublevel: strings, key: 'Patient/family/hy\x00p1', value: '1' },
    { type: 'put', sublevel: records, key: 'Patient/p1', value: { versionId: '2', deleted: false } },
    { type: 'put', sublevel: bytes, key: '0000000000000007', value: new Uint8Array([0, 1, 2, 255]) },
    { type: 'put', key: 'root/ünïcode', value: new TextEncoder().encode('wert ✓') },
    { type: 'del', sublevel: strings, key: 'Patient/family/gone\x00p1' },
    { type: 'del', key: 'root/never-there' },
  ] as BatchOp[];
}

t.test('writeBatch stores exactly what db.batch stores, in every encoding the node uses', async (t) => {
  const arrayDb = await tempDatabase(t);
  const chainedDb = await tempDatabase(t);
  for (const db of [arrayDb, chainedDb]) {
    await stringSublevel(db, 'search-value').put('Patient/family/gone\x00p1', '1');
    await db.put('root/never-there-either', PRESENT_BYTES);
  }
  await arrayDb.batch(mixedOps(arrayDb), { sync: true });
  await writeBatch(chainedDb, mixedOps(chainedDb), { sync: true });
  const expected = await rawContents(arrayDb);
  t.equal(expected.length, 6, 'five puts kept, one delete applied, one untouched key');
  t.same(await rawContents(chainedDb), expected);
  t.same(await jsonSublevel(chainedDb, 'head').get('Patient/p1'), { versionId: '2', deleted: false });
  t.equal(await stringSublevel(chainedDb, 'search-value').get('Patient/family/gone\x00p1'), undefined, 'the delete applied');
});

t.test('an invalid operation anywhere in the batch writes nothing and rejects', async (t) => {
  const db = await tempDatabase(t);
  await db.put('kept', PRESENT_BYTES);
  const before = await rawContents(db);
  for (const bad of [
    { type: 'put', key: null, value: PRESENT_BYTES },
    { type: 'put', key: 'no-value', value: undefined },
    { type: 'del', key: undefined },
  ]) {
    const ops = [{ type: 'put', key: 'first', value: PRESENT_BYTES }, bad, { type: 'del', key: 'kept' }] as BatchOp[];
    await t.rejects(writeBatch(db, ops, { sync: true }), `rejects ${JSON.stringify(bad)}`);
    t.same(await rawContents(db), before, 'nothing of the batch was written');
  }
  // The database is still usable afterwards: the failed chained batches were closed, not left open.
  await writeBatch(db, [{ type: 'put', key: 'after', value: PRESENT_BYTES }] as BatchOp[]);
  t.equal((await rawContents(db)).length, 2);
});

t.test('an empty batch is a no-op', async (t) => {
  const db = await tempDatabase(t);
  await writeBatch(db, [], { sync: true });
  t.same(await rawContents(db), []);
});
