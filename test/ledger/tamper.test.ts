/**
 * Tamper detection while the node is stopped: a byte flipped in an entry, a stored hash, a resource's IPFS block,
 * a checkpoint's block or a checkpoint record is found by `npm run verify -- --data-dir` (with the first bad
 * index where there is one) and by the server at start, which refuses to serve unless LEDGER_ALLOW_TAMPERED=1
 * (then it serves, and says so in the ledger).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { CID } from 'multiformats/cid';
import { buildApp } from '../../src/app.ts';
import { main as verifyCli } from '../../src/cli/verify.ts';
import { loadConfig } from '../../src/config.ts';
import { checkpointSublevel } from '../../src/ledger/checkpoint.ts';
import { parseEntry } from '../../src/ledger/entry.ts';
import { storedHashIndex } from '../../src/ledger/tlog.ts';
import { bytesSublevel, jsonSublevel, openDatabase, pad, SUBLEVELS, type Database } from '../../src/storage/db.ts';
import { blockKey } from '../../src/storage/helia-blocks.ts';
import { startServer } from '../helpers/server.ts';

const clean = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-tamper-'));
t.teardown(() => fs.rm(clean, { recursive: true, force: true }));
const server = await startServer(t, { DATA_DIR: clean, LEDGER_CHECKPOINT_INTERVAL_MS: '20' });
const port = new URL(server.baseUrl).port;
for (let i = 0; i < 6; i++) {
  const created = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: `T${i}` }] } });
  await server.fhir(`Patient/${created.body.id}`);
}
await server.stop();

const env = (dir: string, extra: Record<string, string> = {}) =>
  loadConfig({ DATA_DIR: dir, PORT: port, MASTER_KEY_PASSPHRASE: 'test passphrase', LOG_LEVEL: 'silent', ...extra });

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

async function tampered(t: Test, change: (db: Database) => Promise<void>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-tampered-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.cp(clean, dir, { recursive: true });
  const db = await openDatabase(path.join(dir, 'db'));
  try {
    await change(db);
  } finally {
    await db.close();
  }
  return dir;
}

t.test('the untouched store verifies offline and starts', async (t) => {
  const lines: string[] = [];
  t.equal(await verifyCli(['--data-dir', clean], (l) => lines.push(l)), 0, lines.join('\n'));
  const app = await buildApp(env(clean), { logger: false });
  await app.close();
});

t.test('a --data-dir with no store is refused, and nothing is created there', async (t) => {
  const missing = path.join(os.tmpdir(), `sealed-no-store-${process.pid}`, 'data');
  const lines: string[] = [];
  t.equal(await verifyCli(['--data-dir', missing], (l) => lines.push(l)), 2, 'a usage error, not an empty log that verifies');
  t.match(lines.join('\n'), /holds no node store \(no db\/CURRENT\)/);
  t.notOk(await fs.stat(missing).catch(() => undefined), 'no directory created');
});

const cases: Array<{ name: string; change: (db: Database) => Promise<void>; expect: RegExp }> = [
  {
    name: 'a byte of entry 3',
    change: async (db) => {
      const entries = bytesSublevel(db, SUBLEVELS.ledgerEntry);
      const bytes = (await entries.get(pad(3)))!;
      const at = Buffer.from(bytes).indexOf('"status":') + 10;
      await entries.put(pad(3), flip(bytes, at));
    },
    expect: /first bad index 3 \(ERR_LEDGER_ENTRY_MISMATCH\)/,
  },
  {
    name: 'a stored node hash',
    change: async (db) => {
      const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
      const key = pad(storedHashIndex(1, 2));
      await hashes.put(key, flip((await hashes.get(key))!, 0));
    },
    expect: /first bad index 5 \(ERR_LEDGER_HASH_MISMATCH\)/,
  },
  {
    name: "a resource version's IPFS block",
    change: async (db) => {
      const [record] = await jsonSublevel<{ cid: string }>(db, SUBLEVELS.version).values({ limit: 1 }).all();
      const blocks = bytesSublevel(db, SUBLEVELS.blocks);
      const key = blockKey(CID.parse(record!.cid));
      await blocks.put(key, flip((await blocks.get(key))!, 5));
    },
    expect: /ERR_BLOCK_CORRUPT/,
  },
  {
    name: "a checkpoint's IPFS block",
    change: async (db) => {
      const [record] = await checkpointSublevel(db).values({ limit: 1 }).all();
      const blocks = bytesSublevel(db, SUBLEVELS.blocks);
      const key = blockKey(CID.parse(record!.cid));
      await blocks.put(key, flip((await blocks.get(key))!, 12));
    },
    expect: /ERR_CHECKPOINT_BLOCK/,
  },
  {
    name: 'a checkpoint record',
    change: async (db) => {
      const store = checkpointSublevel(db);
      const [record] = await store.values({ reverse: true, limit: 1 }).all();
      const note = Buffer.from(record!.note, 'utf8');
      await store.put(pad(record!.size), { ...record!, note: Buffer.from(flip(note, note.indexOf('\n') + 1)).toString('utf8') });
    },
    expect: /ERR_CHECKPOINT_SIGNATURE|ERR_NOTE_MALFORMED/,
  },
];

for (const c of cases) {
  t.test(`${c.name}: found offline and at start`, async (t) => {
    const dir = await tampered(t, c.change);
    const lines: string[] = [];
    t.equal(await verifyCli(['--data-dir', dir], (l) => lines.push(l)), 1, 'the CLI fails');
    t.match(lines.join('\n'), c.expect, lines.join('\n'));
    await t.rejects(buildApp(env(dir), { logger: false }), { code: 'ERR_LEDGER_TAMPERED' }, 'the server refuses to start');
    if (c !== cases[0]) return; // the override path is the same for every kind: once is enough
    const app = await buildApp(env(dir, { LEDGER_ALLOW_TAMPERED: '1' }), { logger: false });
    const size = app.ledger.size();
    const [last] = await app.ledger.getEntries(size - 1, size);
    t.match(parseEntry(last!.bytes), { interaction: 'tamper-override', status: 500, purpose: 'LEDGER_ALLOW_TAMPERED' }, 'the override is in the ledger');
    await app.close();
  });
}
