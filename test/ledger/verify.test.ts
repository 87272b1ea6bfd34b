import t from 'tap';
import { canonicalBytes } from '../../src/ledger/canonical.ts';
import { parseEntry } from '../../src/ledger/entry.ts';
import { Ledger } from '../../src/ledger/log.ts';
import { storedHashCount, storedHashIndex } from '../../src/ledger/tlog.ts';
import { verifyInParallel, verifyLedger } from '../../src/ledger/verify.ts';
import { bytesSublevel, jsonSublevel, pad, SUBLEVELS } from '../../src/storage/db.ts';
import { draft, tempDb } from './fixtures/helpers.ts';
import { hex } from './fixtures/reference.ts';

const SIZE = 40;

t.test('verifyLedger finds every kind of damage and names the entry', async (t) => {
  // Shared, so that the parallel pass (worker threads on the same database) can be checked on the same damage.
  const tmp = await tempDb(t, { multithreading: true });
  const ledger = await Ledger.open(tmp.db);
  for (let i = 0; i < SIZE; i += 4) await Promise.all([0, 1, 2, 3].map((j) => ledger.commit({ entries: [draft(i + j)] })));
  const root = await ledger.rootAt(SIZE);
  await ledger.close();
  const entries = bytesSublevel(tmp.db, SUBLEVELS.ledgerEntry);
  const hashes = bytesSublevel(tmp.db, SUBLEVELS.ledgerHash);
  const meta = jsonSublevel<unknown>(tmp.db, SUBLEVELS.ledgerMeta);

  const clean = await verifyLedger(tmp.db);
  t.same(clean.ok && { size: clean.size, root: hex(clean.root) }, { size: SIZE, root: hex(root) }, 'an untouched log verifies');
  // Chunks of 1 .. 64 leaves: aligned chunks join at every level, a partial last chunk, a single chunk.
  for (const chunk of [1, 2, 4, 8, 16, 64]) {
    const parallel = await verifyInParallel(tmp.db, 0, chunk);
    t.same(parallel?.ok && { size: parallel.size, root: hex(parallel.root) }, { size: SIZE, root: hex(root) }, `the chunked pass in chunks of ${chunk} gives the same root`);
  }
  // Once with real worker threads on the shared database (each thread start is slow on a loaded machine).
  const threaded = await verifyInParallel(tmp.db, 2, 8);
  t.same(threaded?.ok && { size: threaded.size, root: hex(threaded.root) }, { size: SIZE, root: hex(root) }, 'the same with two worker threads');

  /** Applies one tamper through the level API, verifies, and restores the original value. */
  async function tampered(name: string, apply: () => Promise<() => Promise<void>>, want: { code: string; index: number; storedHashIndex?: number }) {
    const restore = await apply();
    const result = await verifyLedger(tmp.db);
    t.match(result, { ok: false, ...want }, name);
    // The chunks checked in this thread: the same code the workers run, without a thread start per case.
    t.equal(await verifyInParallel(tmp.db, 0, 8), undefined, `${name}: the chunked pass notices and leaves the verdict to the sequential one`);
    await restore();
    t.ok((await verifyLedger(tmp.db)).ok, `${name}: restored`);
  }
  const edit = (sub: typeof entries, key: string, change: (v: Uint8Array) => Uint8Array | undefined) => async () => {
    const original = (await sub.get(key))!;
    const changed = change(new Uint8Array(original));
    if (changed === undefined) await sub.del(key);
    else await sub.put(key, changed);
    return () => sub.put(key, original);
  };
  const flipChar = (from: string, to: string) => (v: Uint8Array) => {
    const text = Buffer.from(v).toString('utf8');
    if (!text.includes(from)) throw new Error(`no ${from} in entry`);
    return new TextEncoder().encode(text.replace(from, to));
  };

  await tampered('a letter changed inside entry 17', edit(entries, pad(17), flipChar('Patient/p17', 'Patient/q17')), {
    code: 'ERR_LEDGER_ENTRY_MISMATCH', index: 17, storedHashIndex: storedHashIndex(0, 17),
  });
  await tampered('a byte flipped that breaks the JSON of entry 5', edit(entries, pad(5), (v) => { v[0] ^= 0x01; return v; }), {
    code: 'ERR_LEDGER_ENTRY_INVALID', index: 5,
  });
  await tampered('whitespace added to entry 9', edit(entries, pad(9), (v) => Buffer.concat([v, Buffer.from(' ')])), {
    code: 'ERR_LEDGER_ENTRY_INVALID', index: 9,
  });
  await tampered('the last entry altered', edit(entries, pad(SIZE - 1), flipChar(`Patient/p${SIZE - 1}`, `Patient/x${SIZE - 1}`)), {
    code: 'ERR_LEDGER_LEAF_MISMATCH', index: SIZE - 1,
  });
  await tampered('entry 12 deleted', edit(entries, pad(12), () => undefined), { code: 'ERR_LEDGER_GAP', index: 12 });
  await tampered('entry 21 re-chained and re-canonicalized', edit(entries, pad(21), (v) => {
    const entry = parseEntry(v);
    return canonicalBytes({ ...entry, prev: Buffer.alloc(32, 7).toString('base64') });
  }), { code: 'ERR_LEDGER_CHAIN', index: 21 });
  await tampered('entry 30 moved to seq 31', edit(entries, pad(30), (v) => canonicalBytes({ ...parseEntry(v), seq: 31 })), {
    code: 'ERR_LEDGER_ENTRY_INVALID', index: 30,
  });

  const flipBit = (v: Uint8Array) => { v[5] ^= 0x10; return v; };
  await tampered('a bit flipped in the stored leaf hash of entry 8', edit(hashes, pad(storedHashIndex(0, 8)), flipBit), {
    code: 'ERR_LEDGER_HASH_MISMATCH', index: 8, storedHashIndex: storedHashIndex(0, 8),
  });
  // Level 3, subtree 1 covers leaves 8..15: written by the append of leaf 15.
  await tampered('a bit flipped in a level-3 node hash', edit(hashes, pad(storedHashIndex(3, 1)), flipBit), {
    code: 'ERR_LEDGER_HASH_MISMATCH', index: 15, storedHashIndex: storedHashIndex(3, 1),
  });
  // Level 4, subtree 0 covers leaves 0..15: in chunks of 8 it joins two chunks, a check the main thread makes.
  await tampered('a bit flipped in a node hash that joins chunks', edit(hashes, pad(storedHashIndex(4, 0)), flipBit), {
    code: 'ERR_LEDGER_HASH_MISMATCH', index: 15, storedHashIndex: storedHashIndex(4, 0),
  });
  await tampered('the first entry of a chunk re-chained', edit(entries, pad(24), (v) => {
    const entry = parseEntry(v);
    return canonicalBytes({ ...entry, prev: Buffer.alloc(32, 9).toString('base64') });
  }), { code: 'ERR_LEDGER_CHAIN', index: 24 });
  await tampered('a stored hash deleted', edit(hashes, pad(storedHashIndex(1, 4)), () => undefined), {
    code: 'ERR_LEDGER_HASH_MISSING', index: 9, storedHashIndex: storedHashIndex(1, 4),
  });
  const beyond = pad(storedHashCount(SIZE));
  await tampered('a stored hash beyond the log', async () => {
    await hashes.put(beyond, new Uint8Array(32));
    return () => hashes.del(beyond);
  }, { code: 'ERR_LEDGER_HASH_EXTRA', index: SIZE });
  await tampered('a stored size that disagrees', async () => {
    await meta.put('size', SIZE + 1);
    return () => meta.put('size', SIZE);
  }, { code: 'ERR_LEDGER_SIZE', index: SIZE });
});

t.test('an empty store verifies with the empty root', async (t) => {
  const tmp = await tempDb(t);
  const result = await verifyLedger(tmp.db);
  t.same(result.ok && [result.size, hex(result.root)], [0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']);
});

t.test('entries the fast path declines (escapes, non-ASCII) verify through the exact path, in chunks too', async (t) => {
  const tmp = await tempDb(t, { multithreading: true });
  const ledger = await Ledger.open(tmp.db);
  for (let i = 0; i < 24; i++) {
    const odd = i % 5 === 0 ? { query: `name=Jos\u00e9&note="quoted"\\${i}` } : {};
    await ledger.commit({ entries: [draft(i, odd)] });
  }
  const root = await ledger.rootAt(24);
  await ledger.close();
  const sequential = await verifyLedger(tmp.db);
  t.same(sequential.ok && hex(sequential.root), hex(root), 'sequential');
  const parallel = await verifyInParallel(tmp.db, 0, 4);
  t.same(parallel?.ok && hex(parallel.root), hex(root), 'chunked');
});
