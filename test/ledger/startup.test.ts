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
import { AUDIT_INDEX_FORMAT, AuditIndex, auditIndexValues } from '../../src/ledger/audit-index.ts';
import type { Entry } from '../../src/ledger/types.ts';
import { bytesSublevel, jsonSublevel, pad, PRESENT_BYTES, stringSublevel, SUBLEVELS, type BatchOp, type Database } from '../../src/storage/db.ts';
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

t.test('the AuditEvent index is built for entries written before it existed', async (t) => {
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
  t.same(await index.state(), { state: 'unmarked' });
  t.equal(await index.upgrade({ chunk: 2 }), 8, 'no format recorded: rebuilt from every entry');
  t.same(await seqs(), [7, 5, 4, 2, 1]);
  t.same(await index.state(), { state: 'format', format: AUDIT_INDEX_FORMAT });
  t.same(await index.check(), []);
  t.equal(await index.upgrade(), 0, 'nothing to do the second time');
});

/** Writes the index as the servers before the format marker did: format 1 rules, no marker. */
function formatOneOps(db: Database) {
  const names = { patient: SUBLEVELS.auditPatient, agent: SUBLEVELS.auditAgent, entity: SUBLEVELS.auditEntity, subtype: SUBLEVELS.auditSubtype, time: SUBLEVELS.auditTime };
  return (entry: Entry): BatchOp[] => {
    const values = auditIndexValues(entry, 1);
    return (Object.keys(names) as Array<keyof typeof names>).flatMap((key) =>
      values[key].map((value): BatchOp => ({ type: 'put', key: `${stringSublevel(db, names[key]).prefix}${value}|${pad(entry.seq)}`, value: PRESENT_BYTES })));
  };
}

t.test('an index an older server built (format 1) is checked by its own rules, then rebuilt so entity=Type finds instances', async (t) => {
  const tmp = await tempDb(t);
  const old = await Ledger.open(tmp.db, { entryOps: formatOneOps(tmp.db) });
  for (let i = 0; i < 6; i++) await old.commit({ entries: [draft(i)] });
  await old.commit({ entries: [draft(6, { interaction: 'search-type', entity: [{ reference: 'Patient' }], query: 'name=h%3Ax' })] });
  await old.close();
  const index = new AuditIndex(tmp.db);
  const entity = async (value: string) => {
    const out: number[] = [];
    for await (const seq of index.seqs('entity', { eq: value })) out.push(seq);
    return out;
  };
  t.same(await index.check(), [], 'exact under the rules it was written by');
  t.same(await entity('Patient'), [6], 'format 1: only the type-level search');
  const ledger = await Ledger.open(tmp.db, { entryOps: index.ops });
  t.equal(await index.upgrade({ chunk: 3 }), 7);
  t.same(await entity('Patient'), [6, 5, 4, 3, 2, 1, 0], 'format 2: every event that touched a Patient, newest first');
  t.same(await entity('Patient/p3'), [3]);
  t.same(await index.check(), []);
  await ledger.commit({ entries: [draft(7)] });
  t.same(await entity('Patient'), [7, 6, 5, 4, 3, 2, 1, 0], 'new entries are indexed with their types');
  t.same(await index.check(), []);

  // check stays exact under format 2: a type key missing is found.
  await stringSublevel(tmp.db, SUBLEVELS.auditEntity).del(`Patient|${pad(3)}`);
  t.match(await index.check(), [{ code: 'ERR_AUDIT_INDEX_MISSING', index: 3 }, { code: 'ERR_AUDIT_INDEX_EXTRA' }]);

  // An interrupted rebuild is not held against the entries, and is done again from scratch.
  const meta = jsonSublevel<unknown>(tmp.db, SUBLEVELS.auditMeta);
  await meta.put('format', 'rebuilding');
  await stringSublevel(tmp.db, SUBLEVELS.auditPatient).put(`Patient/planted|${pad(1)}`, '1');
  t.same(await index.check(), []);
  t.equal(await index.upgrade(), 8);
  t.same(await index.check(), [], 'the missing key is back and the planted one gone');

  // A format this program does not know is reported, and the server rebuilds it to its own.
  await meta.put('format', AUDIT_INDEX_FORMAT + 1);
  t.match(await index.check(), [{ code: 'ERR_AUDIT_INDEX_FORMAT' }]);
  t.equal(await index.upgrade(), 8);
  t.same(await index.check(), []);
});

t.test('a log indexed from its first entry records the format with it', async (t) => {
  const tmp = await tempDb(t);
  const index = new AuditIndex(tmp.db);
  t.equal(await index.upgrade(), 0, 'an empty log: nothing to rebuild');
  t.same(await index.state(), { state: 'format', format: AUDIT_INDEX_FORMAT });
  const other = await tempDb(t);
  const fresh = new AuditIndex(other.db);
  const ledger = await Ledger.open(other.db, { entryOps: fresh.ops });
  await ledger.commit({ entries: [draft(0)] });
  t.same(await fresh.state(), { state: 'format', format: AUDIT_INDEX_FORMAT });
  t.equal(await fresh.upgrade(), 0);
  t.same(await fresh.check(), []);
});
