/**
 * What the server checks before it serves: at least the log's tail against its last signed checkpoint (the
 * checkpoint's signature, its root against the stored hashes, and every entry after it re-hashed and chained);
 * by default (`full`) the whole store as `npm run verify -- --data-dir` does. The caller decides what a failure
 * means (refuse to start, or serve with a loud warning and a `tamper-override` entry).
 */
import type { Database } from '../storage/db.ts';
import { checkpointSublevel } from './checkpoint.ts';
import { parseEntry, toBase64 } from './entry.ts';
import { fsck, type Problem } from './fsck.ts';
import type { Ledger } from './log.ts';
import { hashesEqual } from './merkle.ts';
import { openCheckpoint, type NoteVerifier } from './note.ts';
import { storedHashIndex } from './tlog.ts';

export interface StartupCheck {
  mode: 'full' | 'ledger' | 'tail';
  /** False when blocks live on a Kubo node (no block of this database to check). */
  localBlocks: boolean;
  verifiers: NoteVerifier[];
}

export async function verifyOnStart(db: Database, ledger: Ledger, check: StartupCheck): Promise<Problem[]> {
  if (check.mode !== 'tail') {
    const blocks = !check.localBlocks ? 'none' : check.mode === 'full' ? 'all' : 'checkpoints';
    return (await fsck(db, { verifiers: check.verifiers, blocks })).problems;
  }
  return verifyTail(db, ledger, check.verifiers);
}

const CHUNK = 1024;

async function verifyTail(db: Database, ledger: Ledger, verifiers: NoteVerifier[]): Promise<Problem[]> {
  const [record] = await checkpointSublevel(db).values({ reverse: true, limit: 1 }).all();
  const size = ledger.size();
  let from = 0;
  if (record) {
    let cp;
    for (const v of verifiers) {
      try {
        cp = openCheckpoint(record.note, v);
        break;
      } catch {
        // try the next key
      }
    }
    if (!cp) return [{ code: 'ERR_CHECKPOINT_SIGNATURE', at: String(record.size), message: `checkpoint ${record.size}: no trusted key verifies it` }];
    if (cp.size > size) return [{ code: 'ERR_LEDGER_SIZE', index: size, message: `checkpoint ${cp.size} is beyond the log of size ${size}` }];
    if (!hashesEqual(await ledger.rootAt(cp.size), cp.root)) {
      return [{ code: 'ERR_CHECKPOINT_ROOT', at: String(cp.size), message: `the stored tree of size ${cp.size} does not have the signed root` }];
    }
    from = Math.max(0, cp.size - 1);
  }
  for (let start = from; start < size; start += CHUNK) {
    const end = Math.min(size, start + CHUNK);
    const entries = await ledger.getEntries(start, end);
    const stored = await ledger.readHashes(entries.map((e) => storedHashIndex(0, e.seq)));
    const prevs = start === 0 ? [] : await ledger.readHashes([storedHashIndex(0, start - 1)]);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      let prev: string;
      try {
        prev = parseEntry(e.bytes, e.seq).prev;
      } catch (err) {
        return [{ code: 'ERR_LEDGER_ENTRY_INVALID', index: e.seq, message: (err as Error).message }];
      }
      if (!hashesEqual(stored[i]!, e.leafHash)) return [{ code: 'ERR_LEDGER_LEAF_MISMATCH', index: e.seq, message: `entry ${e.seq} does not match its stored leaf hash` }];
      const expected = i > 0 ? toBase64(entries[i - 1]!.leafHash) : start > 0 ? toBase64(prevs[0]!) : prev;
      if (prev !== expected) return [{ code: 'ERR_LEDGER_CHAIN', index: e.seq, message: `entry ${e.seq} prev does not match entry ${e.seq - 1}` }];
    }
  }
  return [];
}
