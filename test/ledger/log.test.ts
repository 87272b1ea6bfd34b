import t from 'tap';
import { GENESIS_PREV, parseEntry, toBase64 } from '../../src/ledger/entry.ts';
import { verifyConsistency, verifyInclusion, type Hash } from '../../src/ledger/merkle.ts';
import { Ledger } from '../../src/ledger/log.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import type { Appended } from '../../src/ledger/types.ts';
import { bytesSublevel, jsonSublevel, pad, stringSublevel, SUBLEVELS, type BatchOp, type Database } from '../../src/storage/db.ts';
import { draft, fixedClock, tempDb } from './fixtures/helpers.ts';
import { hex, refRoot } from './fixtures/reference.ts';

/**
 * Counts (and optionally holds back) the database's batch writes. The node writes through a chained batch
 * (writeBatch in db.ts); the spy collects its operations and writes them with the array form once the gate
 * opens, so that a write can be held in flight and an invalid operation fails at write time, as LevelDB's would.
 */
function spyBatches(db: Database) {
  const original = db.batch.bind(db) as (ops: BatchOp[], options: object) => Promise<void>;
  const spy = { calls: 0, sizes: [] as number[], gate: Promise.resolve() as Promise<unknown> };
  (db as unknown as { batch: unknown }).batch = () => {
    const ops: BatchOp[] = [];
    const chained = {
      put: (key: unknown, value: unknown, options?: { sublevel?: unknown }) => {
        ops.push({ type: 'put', key, value, ...options } as BatchOp);
        return chained;
      },
      del: (key: unknown, options?: { sublevel?: unknown }) => {
        ops.push({ type: 'del', key, ...options } as BatchOp);
        return chained;
      },
      close: async () => undefined,
      write: async (options: object) => {
        spy.calls++;
        spy.sizes.push(ops.length);
        await spy.gate;
        return original(ops, options);
      },
    };
    return chained;
  };
  return spy;
}

async function allLeaves(ledger: Ledger): Promise<Hash[]> {
  return (await ledger.getEntries(0, ledger.size())).map((e) => e.leafHash);
}

t.test('sequential commits chain, number and hash their entries', async (t) => {
  const tmp = await tempDb(t);
  const ledger = await Ledger.open(tmp.db, { now: fixedClock });
  t.equal(ledger.size(), 0);
  const appended: Appended[] = [];
  for (let i = 0; i < 10; i++) appended.push(...(await ledger.commit({ entries: [draft(i)] })));
  t.same(appended.map((a) => a.seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.equal(ledger.size(), 10);
  const stored = await ledger.getEntries(0, 10);
  let prev = GENESIS_PREV;
  stored.forEach((e, i) => {
    const entry = parseEntry(e.bytes, i);
    t.equal(entry.prev, prev, `prev of ${i}`);
    t.equal(entry.time, '2025-06-01T12:00:00.000Z');
    t.equal(toBase64(e.leafHash), appended[i]!.leafHash, `leaf hash of ${i}`);
    prev = toBase64(e.leafHash);
  });
  t.equal(hex(await ledger.rootAt(10)), hex(refRoot(stored.map((e) => e.leafHash))));
  t.equal(await jsonSublevel(tmp.db, SUBLEVELS.ledgerMeta).get('size'), 10, 'durable size written with the batch');
  await ledger.close();
});

t.test('group commit: 250 concurrent commits share few synced batches, in submission order', async (t) => {
  const tmp = await tempDb(t);
  const spy = spyBatches(tmp.db);
  const ledger = await Ledger.open(tmp.db);
  const riders = stringSublevel(tmp.db, 'test-rider');
  const submitted: number[] = [];
  const commits = Array.from({ length: 250 }, (_, i) => {
    const entries = Array.from({ length: 1 + (i % 3) }, (_, j) => draft(i * 10 + j));
    let calledWith: Appended[] | undefined;
    const promise = ledger.commit({
      entries,
      ops: (appended) => {
        calledWith = appended;
        return appended.map((a) => ({ type: 'put', sublevel: riders, key: pad(a.seq), value: `commit-${i}` }) as BatchOp);
      },
    });
    t.ok(calledWith, `ops of commit ${i} ran synchronously`);
    submitted.push(...calledWith!.map((a) => a.seq));
    return promise;
  });
  const results = await Promise.all(commits);
  const seqs = results.flat().map((a) => a.seq);
  t.same(seqs, submitted, 'resolved with the seqs fixed at submission');
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => i), 'contiguous from 0');
  t.ok(spy.calls < 250 / 4, `${spy.calls} batches for 250 commits`);
  t.ok(Math.max(...spy.sizes) > 20, 'a batch carries many commits');
  const riderValues = await riders.values().all();
  t.equal(riderValues.length, seqs.length, 'every rider landed');
  t.equal(await riders.get(pad(seqs.length - 1)), 'commit-249');
  t.equal(hex(await ledger.rootAt(ledger.size())), hex(refRoot(await allLeaves(ledger))));
  const verified = await verifyLedger(tmp.db);
  t.ok(verified.ok, 'the store verifies');
  await ledger.close();
});

t.test('a rider callback that throws rejects only its commit; the tip is untouched', async (t) => {
  const tmp = await tempDb(t);
  const ledger = await Ledger.open(tmp.db);
  await ledger.commit({ entries: [draft(0)] });
  await t.rejects(ledger.commit({ entries: [draft(1)], ops: () => { throw new Error('index build failed'); } }), { message: 'index build failed' });
  await t.rejects(ledger.commit({ entries: [] }), { code: 'ERR_LEDGER_DRAFT_INVALID' });
  await t.rejects(ledger.commit({ entries: [{ ...draft(2), status: 7 }] }), { code: 'ERR_LEDGER_DRAFT_INVALID' });
  const [next] = await ledger.commit({ entries: [draft(3)] });
  t.equal(next!.seq, 1, 'seq 1 was not consumed');
  t.ok((await verifyLedger(tmp.db)).ok);
  await ledger.close();
});

t.test('a failing batch rejects its commits and everything queued after it; nothing partial is stored', async (t) => {
  const tmp = await tempDb(t);
  const ledger = await Ledger.open(tmp.db);
  await ledger.commit({ entries: [draft(0), draft(1)] });
  const rootBefore = await ledger.rootAt(2);
  const spy = spyBatches(tmp.db);
  let release!: () => void;
  spy.gate = new Promise<void>((resolve) => (release = resolve));
  const rider = stringSublevel(tmp.db, 'test-rider');
  // First batch: a good commit and one whose rider LevelDB refuses (a null key).
  const a = ledger.commit({ entries: [draft(2)], ops: () => [{ type: 'put', sublevel: rider, key: 'a', value: 'x' } as BatchOp] });
  const b = ledger.commit({ entries: [draft(3)], ops: () => [{ type: 'put', key: null, value: 'x' } as unknown as BatchOp] });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(spy.calls, 1, 'the first batch is in flight');
  // Queued behind it, chained onto its entries.
  const c = ledger.commit({ entries: [draft(4)] });
  const d = ledger.commit({ entries: [draft(5), draft(6)] });
  release();
  for (const [name, p] of [['a', a], ['b', b], ['c', c], ['d', d]] as const) {
    await t.rejects(p, { code: 'ERR_LEDGER_WRITE', status: 503 }, `commit ${name} rejected`);
  }
  t.equal(ledger.size(), 2);
  t.equal(await rider.get('a'), undefined, 'the good rider of the failed batch was not written');
  t.same(await bytesSublevel(tmp.db, SUBLEVELS.ledgerEntry).keys().all(), [pad(0), pad(1)]);
  const [e] = await ledger.commit({ entries: [draft(7)] });
  t.equal(e!.seq, 2, 'the next commit continues from the durable state');
  const entries = await ledger.getEntries(0, 3);
  t.equal(parseEntry(entries[2]!.bytes).prev, toBase64(entries[1]!.leafHash), 'and chains from the last durable entry');
  await ledger.close();
  const reopened = await Ledger.open(await tmp.reopen());
  t.equal(reopened.size(), 3);
  t.ok(verifyConsistency(2, 3, await reopened.consistencyProof(2, 3), rootBefore, await reopened.rootAt(3)));
  t.ok((await verifyLedger(tmp.db)).ok);
  t.equal((await reopened.commit({ entries: [draft(8)] }))[0]!.seq, 3, 'commits work after reopen');
  await reopened.close();
});

t.test('closing the database under the ledger fails its commits; the store reopens consistent', async (t) => {
  const tmp = await tempDb(t);
  const ledger = await Ledger.open(tmp.db);
  await ledger.commit({ entries: [draft(0)] });
  const pending = Promise.allSettled(Array.from({ length: 20 }, (_, i) => ledger.commit({ entries: [draft(i + 1)] })));
  await tmp.db.close();
  const late = ledger.commit({ entries: [draft(99)] });
  const outcomes = [...(await pending), ...(await Promise.allSettled([late]))];
  const fulfilled = outcomes.filter((o) => o.status === 'fulfilled').length;
  const rejected = outcomes.filter((o) => o.status === 'rejected');
  t.ok(rejected.length > 0, 'commits after the close are rejected');
  t.ok(rejected.every((o) => (o as PromiseRejectedResult).reason.code === 'ERR_LEDGER_WRITE'));
  const reopened = await Ledger.open(await tmp.reopen());
  t.equal(reopened.size(), 1 + fulfilled, 'exactly the acknowledged entries are durable');
  t.ok((await verifyLedger(tmp.db)).ok);
  t.equal((await reopened.commit({ entries: [draft(100)] }))[0]!.seq, 1 + fulfilled);
  await reopened.close();
});

t.test('a restart recovers size and frontier; roots and proofs continue correctly', async (t) => {
  const tmp = await tempDb(t);
  let ledger = await Ledger.open(tmp.db);
  for (let i = 0; i < 37; i += 3) await ledger.commit({ entries: [draft(i), draft(i + 1), draft(i + 2)].slice(0, Math.min(3, 37 - i)) });
  t.equal(ledger.size(), 37);
  const root37 = await ledger.rootAt(37);
  await ledger.close();
  ledger = await Ledger.open(await tmp.reopen());
  t.equal(ledger.size(), 37, 'size recovered');
  t.equal(hex(await ledger.rootAt(37)), hex(root37));
  await Promise.all(Array.from({ length: 27 }, (_, i) => ledger.commit({ entries: [draft(100 + i)] })));
  t.equal(ledger.size(), 64);
  const leaves = await allLeaves(ledger);
  const entries = await ledger.getEntries(36, 38);
  t.equal(parseEntry(entries[1]!.bytes).prev, toBase64(entries[0]!.leafHash), 'the chain continues across the restart');
  const roots = await Promise.all(Array.from({ length: 65 }, (_, n) => ledger.rootAt(n)));
  const bad: string[] = [];
  roots.forEach((root, n) => hex(root) !== hex(refRoot(leaves.slice(0, n))) && bad.push(`root ${n}`));
  for (const size of [1, 2, 37, 38, 50, 64]) {
    for (let index = 0; index < size; index++) {
      const proof = await ledger.inclusionProof(index, size);
      if (!verifyInclusion(leaves[index]!, index, size, proof, roots[size]!)) bad.push(`inclusion ${index}/${size}`);
    }
    for (let size1 = 0; size1 <= size; size1++) {
      const proof = await ledger.consistencyProof(size1, size);
      if (!verifyConsistency(size1, size, proof, roots[size1]!, roots[size]!)) bad.push(`consistency ${size1}/${size}`);
    }
  }
  t.same(bad, []);
  await ledger.close();
});

t.test('read API ranges, close, and a store that does not add up', async (t) => {
  const tmp = await tempDb(t);
  const ledger = await Ledger.open(tmp.db);
  await ledger.commit({ entries: [draft(0), draft(1), draft(2)] });
  t.same((await ledger.getEntries(1, 3)).map((e) => e.seq), [1, 2]);
  t.same(await ledger.getEntries(3, 3), []);
  for (const [start, end] of [[0, 4], [2, 1], [-1, 2], [0.5, 2]] as const) {
    await t.rejects(ledger.getEntries(start, end), { code: 'ERR_LEDGER_RANGE' }, `[${start}, ${end})`);
  }
  await t.rejects(ledger.rootAt(4), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(ledger.inclusionProof(0, 4), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(ledger.consistencyProof(1, 4), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(ledger.inclusionProof(3, 3), { code: 'ERR_LEDGER_RANGE' });
  const inFlight = ledger.commit({ entries: [draft(3)] });
  await ledger.close();
  t.equal(ledger.size(), 4, 'close waited for the queue');
  await inFlight;
  await t.rejects(ledger.commit({ entries: [draft(4)] }), { code: 'ERR_LEDGER_CLOSED' });

  await bytesSublevel(tmp.db, SUBLEVELS.ledgerEntry).del(pad(3));
  await t.rejects(Ledger.open(tmp.db), { code: 'ERR_LEDGER_CORRUPT' }, 'a missing last entry');
  await jsonSublevel(tmp.db, SUBLEVELS.ledgerMeta).put('size', 3);
  await t.rejects(Ledger.open(tmp.db), { code: 'ERR_LEDGER_CORRUPT' }, 'stored hashes beyond the size');
  await jsonSublevel(tmp.db, SUBLEVELS.ledgerMeta).put('size', 'three');
  await t.rejects(Ledger.open(tmp.db), { code: 'ERR_LEDGER_CORRUPT' }, 'a size that is not a number');
});
