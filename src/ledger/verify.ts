/**
 * Full verification of a ledger store from read access alone (as Tessera's fsck does for its logs): every entry
 * is re-read in order, parsed strictly (canonical RFC 8785 bytes, the schema, its seq), its prev checked against
 * the previous entry's recomputed leaf hash, and the tree rebuilt leaf by leaf; each hash an append stores is
 * compared with the one in the store. Entries and stored hashes are streamed side by side (both are written in
 * index order, so the stored hashes come out exactly in the order the rebuild produces them): memory stays
 * O(log n) whatever the log's length. The first problem is reported with the entry index it concerns.
 */
import { bytesSublevel, jsonSublevel, pad, SUBLEVELS, type Database } from '../storage/db.ts';
import { parseEntry, toBase64 } from './entry.ts';
import { hashesEqual, leafHash, type Hash } from './merkle.ts';
import { META_SIZE_KEY } from './log.ts';
import { appendLeaf, rootFromFrontier, splitStoredHashIndex, storedHashIndex } from './tlog.ts';

export type VerifyResult =
  | { ok: true; size: number; root: Hash }
  | {
      ok: false;
      /** ERR_LEDGER_ENTRY_INVALID | _GAP | _CHAIN | _ENTRY_MISMATCH | _HASH_MISMATCH | _LEAF_MISMATCH | _HASH_MISSING | _HASH_EXTRA | _SIZE */
      code: string;
      /** Index of the entry the problem was found at (for a stored hash: the append that wrote it). */
      index: number;
      message: string;
      /** The stored-hash index concerned, for hash problems. */
      storedHashIndex?: number;
    };

const CHUNK = 1024;
/** classic-level's fillCache (not in the abstract-level types): a full scan must not evict the hot tail. */
const SCAN = { fillCache: false } as {};

export async function verifyLedger(db: Database): Promise<VerifyResult> {
  const entries = bytesSublevel(db, SUBLEVELS.ledgerEntry);
  const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
  const fail = (code: string, index: number, message: string, storedHashIndex?: number): VerifyResult =>
    ({ ok: false, code, index, message, ...(storedHashIndex === undefined ? {} : { storedHashIndex }) });
  // One snapshot for every read, so a server appending meanwhile cannot make the size and the scans disagree.
  const snapshot = db.snapshot();
  const entryIt = entries.iterator({ ...SCAN, snapshot });
  const hashIt = hashes.iterator({ ...SCAN, snapshot });
  try {
    const size = (await jsonSublevel<unknown>(db, SUBLEVELS.ledgerMeta).get(META_SIZE_KEY, { snapshot })) ?? 0;
    const frontier: Hash[] = [];
    let hashBuf: Array<[string, Uint8Array]> = [];
    let hashAt = 0;
    let seq = 0;
    let prev = toBase64(rootFromFrontier([]));
    for (let chunk = await entryIt.nextv(CHUNK); chunk.length > 0; chunk = await entryIt.nextv(CHUNK)) {
      for (const [key, bytes] of chunk) {
        if (key !== pad(seq)) return fail('ERR_LEDGER_GAP', seq, `entry ${seq} is missing (next key is ${key})`);
        let prevField: string;
        try {
          prevField = parseEntry(bytes, seq).prev;
        } catch (error) {
          return fail('ERR_LEDGER_ENTRY_INVALID', seq, (error as Error).message);
        }
        if (prevField !== prev) return fail('ERR_LEDGER_CHAIN', seq, `entry ${seq} prev does not match entry ${seq - 1}`);
        const leaf = leafHash(bytes);
        for (const [index, hash] of appendLeaf(frontier, seq, leaf)) {
          if (hashAt === hashBuf.length) {
            hashBuf = await hashIt.nextv(CHUNK);
            hashAt = 0;
          }
          const stored = hashBuf[hashAt++];
          if (stored === undefined || stored[0] !== pad(index)) {
            return fail('ERR_LEDGER_HASH_MISSING', seq, `stored hash ${index} (of entry ${seq}) is missing`, index);
          }
          if (hashesEqual(stored[1], hash)) continue;
          if (index === storedHashIndex(0, seq)) return classifyLeaf((key) => entries.get(key, { snapshot }), seq, stored[1], leaf, fail);
          const { level } = splitStoredHashIndex(index);
          return fail('ERR_LEDGER_HASH_MISMATCH', seq, `stored hash ${index} (level ${level}, completed by entry ${seq}) differs from the recomputed one`, index);
        }
        prev = toBase64(leaf);
        seq++;
      }
    }
    const extra = hashAt < hashBuf.length ? hashBuf[hashAt] : (await hashIt.nextv(1))[0];
    if (extra !== undefined) return fail('ERR_LEDGER_HASH_EXTRA', seq, `stored hash ${Number(extra[0])} is beyond the log`, Number(extra[0]));
    if (size !== seq) return fail('ERR_LEDGER_SIZE', seq, `stored size ${String(size)} but the log holds ${seq} entries`);
    return { ok: true, size: seq, root: rootFromFrontier(frontier) };
  } finally {
    await Promise.all([entryIt.close(), hashIt.close()]);
    await snapshot.close();
  }
}

/**
 * An entry's recomputed leaf hash differs from the stored one: one of the two was altered. The next entry's prev
 * tells which (it still holds the original leaf hash), unless this is the last entry or the next is damaged too.
 */
async function classifyLeaf(
  get: (key: string) => Promise<Uint8Array | undefined>,
  seq: number,
  stored: Uint8Array,
  recomputed: Hash,
  fail: (code: string, index: number, message: string, storedHashIndex?: number) => VerifyResult,
): Promise<VerifyResult> {
  const index = storedHashIndex(0, seq);
  let nextPrev: string | undefined;
  const next = await get(pad(seq + 1));
  try {
    nextPrev = next === undefined ? undefined : parseEntry(next, seq + 1).prev;
  } catch {
    nextPrev = undefined;
  }
  if (nextPrev === toBase64(stored)) {
    return fail('ERR_LEDGER_ENTRY_MISMATCH', seq, `entry ${seq} was altered: its bytes no longer match its stored leaf hash nor the next entry's prev`, index);
  }
  if (nextPrev === toBase64(recomputed)) {
    return fail('ERR_LEDGER_HASH_MISMATCH', seq, `stored leaf hash ${index} of entry ${seq} was altered`, index);
  }
  return fail('ERR_LEDGER_LEAF_MISMATCH', seq, `entry ${seq} does not match its stored leaf hash ${index}`, index);
}
