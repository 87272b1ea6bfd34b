/**
 * LevelDB's own checksums, checked before the store is opened: a flipped byte in a write-ahead-log record or in a
 * table block is reported and stops the server at start, where LevelDB alone would drop the log record (and the
 * commits after it) silently; a log cut off inside its last record (a crash mid-write) is not a problem.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { main as verifyCli } from '../../src/cli/verify.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { badLogRecords, blockEntries, checkLevelDbFiles, crc32c, readBlock, tableDataHandles } from '../../src/storage/leveldb-files.ts';
import { startServer } from '../helpers/server.ts';

t.test('CRC-32C matches the standard check value', async (t) => {
  t.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  t.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
});

const clean = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-leveldb-files-'));
t.teardown(() => fs.rm(clean, { recursive: true, force: true }));
const server = await startServer(t, { DATA_DIR: clean });
for (let i = 0; i < 5; i++) await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: `Files${i}` }] } });
await server.stop();
const env = (dir: string) => loadConfig({ DATA_DIR: dir, MASTER_KEY_PASSPHRASE: 'test passphrase', LOG_LEVEL: 'silent' });

async function copy(t: Test): Promise<{ dir: string; db: string; file(ext: string): Promise<string> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-leveldb-files-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.cp(clean, dir, { recursive: true });
  const db = path.join(dir, 'db');
  return {
    dir,
    db,
    async file(ext) {
      const sizes = await Promise.all((await fs.readdir(db)).filter((n) => n.endsWith(ext)).map(async (n) => ({ n, size: (await fs.stat(path.join(db, n))).size })));
      return path.join(db, sizes.sort((a, b) => b.size - a.size)[0]!.n);
    },
  };
}

t.test('the untouched store has no problem', async (t) => {
  t.same(await checkLevelDbFiles(path.join(clean, 'db'), { tables: true }), []);
  t.same(await checkLevelDbFiles(path.join(clean, 'no-such-dir'), { tables: true }), [], 'a new node has no files yet');
});

t.test('a flipped byte in a write-ahead-log record is reported and stops the server', async (t) => {
  const store = await copy(t);
  const log = await store.file('.log');
  const bytes = await fs.readFile(log);
  t.same(badLogRecords(bytes), []);
  bytes[100] = bytes[100]! ^ 0x20;
  await fs.writeFile(log, bytes);
  const problems = await checkLevelDbFiles(store.db, { tables: false });
  t.equal(problems.length, 1);
  t.equal(problems[0]!.code, 'ERR_STORE_LOG_CORRUPT');
  await t.rejects(buildApp(env(store.dir), { logger: false }), { code: 'ERR_LEDGER_TAMPERED' });
  // The refused start must not have let LevelDB replay the log without the bad record.
  await t.rejects(buildApp(env(store.dir), { logger: false }), { code: 'ERR_LEDGER_TAMPERED' }, 'still refused on the next start');
  const before = await filesOf(store.db);
  for (const run of [1, 2]) {
    const lines: string[] = [];
    t.equal(await verifyCli(['--data-dir', store.dir], (l) => lines.push(l)), 1, `verify run ${run} fails`);
    t.match(lines.join('\n'), /ERR_STORE_LOG_CORRUPT/, `run ${run} names the bad log record`);
  }
  // The offline verifier opens a private copy: the node's files, bad record included, are exactly as they were.
  t.same(await filesOf(store.db), before, 'the verifier changed no file of the node');
  t.same((await fs.readdir(store.dir)).filter((n) => n.startsWith('.verify-copy-')), [], 'and left no copy behind');
});

/** Every file of a LevelDB directory but LevelDB's info log, with its bytes. */
async function filesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await fs.readdir(dir)).sort()) {
    if (name === 'LOG' || name === 'LOG.old' || name === 'LOCK') continue;
    out[name] = (await fs.readFile(path.join(dir, name))).toString('base64');
  }
  return out;
}

t.test('the offline verifier leaves a sound store untouched and refuses a running one', async (t) => {
  const store = await copy(t);
  const before = await filesOf(store.db);
  const lines: string[] = [];
  t.equal(await verifyCli(['--data-dir', store.dir], (l) => lines.push(l)), 0, lines.join('\n'));
  t.same(await filesOf(store.db), before, 'no log replayed into a table, no file added or removed');
  const running = await startServer(t, { DATA_DIR: store.dir });
  const refused: string[] = [];
  t.equal(await verifyCli(['--data-dir', store.dir], (l) => refused.push(l)), 2);
  t.match(refused.join('\n'), /in use by a running server/);
  await running.stop();
});

t.test('a log cut off inside its last record is a crash, not tampering', async (t) => {
  const store = await copy(t);
  const log = await store.file('.log');
  const bytes = await fs.readFile(log);
  await fs.writeFile(log, bytes.subarray(0, bytes.length - 3));
  t.same(await checkLevelDbFiles(store.db, { tables: true }), []);
});

t.test('a flipped byte in a table block is reported; table blocks parse to sorted keys', async (t) => {
  const store = await copy(t);
  // Opening replays the log into a table.
  await (await openDatabase(store.db)).close();
  const table = await store.file('.ldb');
  const bytes = await fs.readFile(table);
  const handles = tableDataHandles(bytes);
  const keys = handles.flatMap((h) => blockEntries(readBlock(bytes, h)).map(([k]) => Buffer.from(k.subarray(0, k.length - 8)).toString('latin1')));
  t.ok(keys.some((k) => k.startsWith('!head!Patient/')), 'the heads are in the table');
  t.same(keys, [...keys].sort(), 'in key order');
  const block = handles[Math.floor(handles.length / 2)]!;
  bytes[block.offset + 1] = bytes[block.offset + 1]! ^ 0x01;
  await fs.writeFile(table, bytes);
  const problems = await checkLevelDbFiles(store.db, { tables: true });
  t.equal(problems[0]?.code, 'ERR_STORE_TABLE_CORRUPT');
  t.same(await checkLevelDbFiles(store.db, { tables: false }), [], 'only the full check reads the tables');
});

t.test('a table cut off before its footer (a kill during a compaction) is left to LevelDB', async (t) => {
  const store = await copy(t);
  await (await openDatabase(store.db)).close();
  const table = await store.file('.ldb');
  const bytes = await fs.readFile(table);
  await fs.writeFile(path.join(store.db, '999999.ldb'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  t.same(await checkLevelDbFiles(store.db, { tables: true }), []);
});

t.test('a live table with a damaged footer: the offline verifier fails plainly, leaving nothing behind', async (t) => {
  const store = await copy(t);
  // Opening replays the log into a table.
  await (await openDatabase(store.db)).close();
  const table = await store.file('.ldb');
  const bytes = await fs.readFile(table);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01; // the footer's magic number
  await fs.writeFile(table, bytes);
  const lines: string[] = [];
  t.equal(await verifyCli(['--data-dir', store.dir], (l) => lines.push(l)), 1);
  t.match(lines.at(-1), /^FAIL ERR_STORE_CORRUPT: LevelDB cannot read the store's files: .*bad magic number/);
  t.same((await fs.readdir(store.dir)).filter((n) => n.startsWith('.verify-copy-')), [], 'the private copy is removed');
});
