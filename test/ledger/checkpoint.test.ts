/**
 * Checkpoints over a real LevelDB and Helia block store: the N-entries / T-ms policy, the block chain, the final
 * checkpoint on close, and the rule that an inconsistent tree is never signed. fsck finds altered checkpoints.
 */
import t, { type Test } from 'tap';
import { CID } from 'multiformats/cid';
import { Checkpointer, checkpointBlock, type StoredCheckpoint } from '../../src/ledger/checkpoint.ts';
import { fromBase64 } from '../../src/ledger/entry.ts';
import { fsck } from '../../src/ledger/fsck.ts';
import { Ledger } from '../../src/ledger/log.ts';
import { verifyConsistency } from '../../src/ledger/merkle.ts';
import { openCheckpoint, parseVerifierKey, signerFromSeed, verifierKeyString } from '../../src/ledger/note.ts';
import { storedHashIndex } from '../../src/ledger/tlog.ts';
import { bytesSublevel, jsonSublevel, pad, SUBLEVELS } from '../../src/storage/db.ts';
import { blockKey, createHeliaBlockStore } from '../../src/storage/helia-blocks.ts';
import { draft, tempDb } from './fixtures/helpers.ts';

const ORIGIN = 'test.example/ledger';
const signer = signerFromSeed(ORIGIN, new Uint8Array(32).fill(9));
const verifier = parseVerifierKey(verifierKeyString(ORIGIN, signer.publicKey));

async function setup(t: Test, everyEntries: number, everyMs: number) {
  const tmp = await tempDb(t);
  const ledger = await Ledger.open(tmp.db);
  const blocks = await createHeliaBlockStore({ db: tmp.db });
  const errors: unknown[] = [];
  const cp = await Checkpointer.open({ db: tmp.db, ledger, blocks, signer, origin: ORIGIN, everyEntries, everyMs, onError: (e) => errors.push(e) });
  t.teardown(() => blocks.close());
  return { tmp, ledger, blocks, cp, errors };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('signed every N entries and on close; each consistent with the one before; blocks chained', async (t) => {
  const { ledger, cp, blocks, errors } = await setup(t, 10, 60_000);
  for (let i = 0; i < 25; i++) await ledger.commit({ entries: [draft(i)] });
  await wait(50);
  const before = await cp.list();
  t.ok(before.length >= 2, `${before.length} checkpoints after 25 entries with N = 10`);
  await cp.close();
  const all = await cp.list();
  t.equal(all.at(-1)!.size, 25, 'close signs everything durable');
  let prev: StoredCheckpoint | undefined;
  for (const record of all) {
    const opened = openCheckpoint(record.note, verifier);
    t.equal(opened.size, record.size);
    t.same(Buffer.from(opened.root), Buffer.from(await ledger.rootAt(record.size)), `root of ${record.size}`);
    if (prev) {
      t.ok(record.size - prev.size >= 10 || record === all.at(-1), `no checkpoint before 10 new entries (${prev.size} → ${record.size})`);
      const proof = await ledger.consistencyProof(prev.size, record.size);
      t.ok(verifyConsistency(prev.size, record.size, proof, fromBase64(prev.root), opened.root));
    }
    t.equal(record.prev, prev?.cid ?? null, 'links the previous block');
    const bytes = await blocks.get(CID.parse(record.cid));
    t.same(Buffer.from(bytes), Buffer.from(checkpointBlock(record.note, record.prev)));
    t.same(JSON.parse(Buffer.from(bytes).toString('utf8')), { note: record.note, prev: record.prev });
    prev = record;
  }
  t.same(errors, []);
});

t.test('signed T ms after the first unsigned entry; never for a log that did not grow', async (t) => {
  const { ledger, cp } = await setup(t, 1000, 20);
  await ledger.commit({ entries: [draft(0), draft(1), draft(2)] });
  await wait(150);
  t.equal(cp.latest()?.size, 3);
  const again = await cp.checkpoint();
  t.equal(again, cp.latest(), 'no new checkpoint without new entries');
  t.equal((await cp.list()).length, 1);
});

t.test('a tree inconsistent with the last checkpoint is never signed', async (t) => {
  const { tmp, ledger, cp } = await setup(t, 1_000_000, 60_000);
  for (let i = 0; i < 6; i++) await ledger.commit({ entries: [draft(i)] });
  const first = await cp.checkpoint();
  t.equal(first?.size, 6);
  // Someone rewrites the stored hash of the subtree of entries 0..3 (inside the signed tree) while the node runs.
  await bytesSublevel(tmp.db, SUBLEVELS.ledgerHash).put(pad(storedHashIndex(2, 0)), new Uint8Array(32).fill(7));
  await ledger.commit({ entries: [draft(6)] });
  await t.rejects(cp.checkpoint(), { code: 'ERR_CHECKPOINT_INCONSISTENT' });
  await ledger.commit({ entries: [draft(7)] });
  await t.rejects(cp.checkpoint(), { code: 'ERR_CHECKPOINT_INCONSISTENT' }, 'and stays stopped');
  t.same((await cp.list()).map((c) => c.size), [6], 'nothing else was signed');
});

t.test('fsck: altered checkpoint records and blocks are found', async (t) => {
  const { tmp, ledger, cp, blocks } = await setup(t, 1_000_000, 60_000);
  for (let i = 0; i < 4; i++) await ledger.commit({ entries: [draft(i)] });
  await cp.checkpoint();
  await ledger.commit({ entries: [draft(4)] });
  const second = (await cp.checkpoint())!;
  t.same((await fsck(tmp.db, { verifiers: [verifier] })).problems, [], 'a clean store passes');
  t.equal((await fsck(tmp.db)).ok, true, 'with the keys the store recorded, too');

  const store = jsonSublevel<StoredCheckpoint>(tmp.db, SUBLEVELS.ledgerCheckpoint);
  const original = (await store.get(pad(4)))!;
  await store.put(pad(4), { ...original, note: original.note.replace('\n4\n', '\n3\n') });
  t.match((await fsck(tmp.db, { verifiers: [verifier] })).problems, [{ code: 'ERR_CHECKPOINT_SIGNATURE', at: '4' }]);
  await store.put(pad(4), original);

  const key = blockKey(CID.parse(second.cid));
  const raw = bytesSublevel(tmp.db, SUBLEVELS.blocks);
  const bytes = Buffer.from((await raw.get(key))!);
  bytes[10] ^= 1;
  await raw.put(key, bytes);
  const codes = (await fsck(tmp.db, { verifiers: [verifier] })).problems.map((p) => p.code).sort();
  t.same(codes, ['ERR_BLOCK_CORRUPT', 'ERR_CHECKPOINT_BLOCK']);
  void blocks;
});
