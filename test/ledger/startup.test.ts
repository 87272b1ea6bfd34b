/**
 * The `tail` start-up check: the last checkpoint's signature and root against the stored tree, and every entry
 * after it re-hashed and chained; `full` finds what `tail` cannot see (an old entry altered).
 */
import t, { type Test } from 'tap';
import { Checkpointer } from '../../src/ledger/checkpoint.ts';
import { Ledger } from '../../src/ledger/log.ts';
import { parseVerifierKey, signerFromSeed, verifierKeyString } from '../../src/ledger/note.ts';
import { verifyOnStart } from '../../src/ledger/startup.ts';
import { storedHashIndex } from '../../src/ledger/tlog.ts';
import { bytesSublevel, pad, SUBLEVELS } from '../../src/storage/db.ts';
import { createHeliaBlockStore } from '../../src/storage/helia-blocks.ts';
import { draft, tempDb } from './fixtures/helpers.ts';

const signer = signerFromSeed('startup.example/ledger', new Uint8Array(32).fill(4));
const verifier = parseVerifierKey(verifierKeyString(signer.name, signer.publicKey));
const other = signerFromSeed('startup.example/ledger', new Uint8Array(32).fill(5));

/** A store with a checkpoint at 8 and entries 8..11 after it, re-opened as at a restart. */
async function store(t: Test) {
  const tmp = await tempDb(t);
  let ledger = await Ledger.open(tmp.db);
  const blocks = await createHeliaBlockStore({ db: tmp.db });
  const cp = await Checkpointer.open({ db: tmp.db, ledger, blocks, signer, origin: signer.name, everyEntries: 1e9, everyMs: 1e6, onError: () => undefined });
  for (let i = 0; i < 8; i++) await ledger.commit({ entries: [draft(i)] });
  await cp.checkpoint();
  for (let i = 8; i < 12; i++) await ledger.commit({ entries: [draft(i)] });
  await ledger.close();
  await blocks.close();
  ledger = await Ledger.open(tmp.db);
  const check = (mode: 'tail' | 'full', verifiers = [verifier]) => verifyOnStart(tmp.db, ledger, { mode, localBlocks: true, verifiers });
  return { tmp, check };
}

const flip = (bytes: Uint8Array, at: number) => {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 1;
  return copy;
};

t.test('a clean store passes both checks; an unknown key fails', async (t) => {
  const { check } = await store(t);
  t.same(await check('tail'), []);
  t.same(await check('full'), []);
  t.match(await check('tail', [parseVerifierKey(verifierKeyString(other.name, other.publicKey))]), [{ code: 'ERR_CHECKPOINT_SIGNATURE' }]);
});

t.test('tail: an entry after the checkpoint altered', async (t) => {
  const { tmp, check } = await store(t);
  const entries = bytesSublevel(tmp.db, SUBLEVELS.ledgerEntry);
  await entries.put(pad(10), flip((await entries.get(pad(10)))!, 30));
  t.match(await check('tail'), [{ index: 10 }]);
});

t.test('tail: a stored hash inside the signed tree altered', async (t) => {
  const { tmp, check } = await store(t);
  const hashes = bytesSublevel(tmp.db, SUBLEVELS.ledgerHash);
  // The tree of 8 entries is one complete subtree: its root is stored hash (level 3, n 0).
  const key = pad(storedHashIndex(3, 0));
  await hashes.put(key, flip((await hashes.get(key))!, 0));
  t.match(await check('tail'), [{ code: 'ERR_CHECKPOINT_ROOT' }]);
});

t.test('an old entry altered: only the full check sees it', async (t) => {
  const { tmp, check } = await store(t);
  const entries = bytesSublevel(tmp.db, SUBLEVELS.ledgerEntry);
  await entries.put(pad(2), flip((await entries.get(pad(2)))!, 30));
  t.same(await check('tail'), [], 'the tail is intact');
  t.match(await check('full'), [{ index: 2 }]);
});

t.test('the AuditEvent index is backfilled for entries written before it existed', async (t) => {
  const { AuditIndex } = await import('../../src/ledger/audit-index.ts');
  const tmp = await tempDb(t);
  const old = await Ledger.open(tmp.db);
  for (let i = 0; i < 5; i++) await old.commit({ entries: [draft(i)] });
  await old.close();
  const index = new AuditIndex(tmp.db);
  const ledger = await Ledger.open(tmp.db, { entryOps: index.ops });
  for (let i = 5; i < 8; i++) await ledger.commit({ entries: [draft(i)] });
  const seqs = async () => {
    const out: number[] = [];
    for await (const seq of index.seqs('subtype', { eq: 'read' })) out.push(seq);
    return out;
  };
  t.same(await seqs(), [7, 5], 'only the new entries are indexed at first');
  t.equal(await index.backfill(ledger, 2), 5);
  t.same(await seqs(), [7, 5, 4, 2, 1]);
  t.equal(await index.backfill(ledger), 0, 'nothing to do the second time');
});
