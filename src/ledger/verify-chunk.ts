/**
 * One chunk of the parallel full verification (verify.ts), checked on its own: each entry's key, form, seq and
 * chain inside the chunk, the chunk's subtree rebuilt leaf by leaf and every stored hash the chunk's appends wrote
 * that lies inside it. What crosses chunks (the first entry's prev, the hashes the chunk's last append completes
 * with earlier chunks) goes back to the caller, which joins the chunks in order. Any problem is reported as a bare
 * "not ok": the caller then runs the sequential verifier, which names the first problem exactly. Runs in a worker
 * thread (verify-worker.ts) or, for tests, in the calling thread.
 */
import { bytesSublevel, pad, stringSublevel, SUBLEVELS, type Database } from '../storage/db.ts';
import { sha256 } from '../storage/sha256.ts';
import { fastEntryPrev, parseEntry, toBase64 } from './entry.ts';
import { hashesEqual, leafHash, nodeHash, type Hash } from './merkle.ts';
import { storedHashCount, trailingOnes } from './tlog.ts';

export interface ChunkTask {
  id: number;
  start: number;
  end: number;
}

export type ChunkResult =
  | {
      id: number;
      ok: true;
      /** The `prev` field of entry `start`. */
      firstPrev: string;
      lastLeaf: Hash;
      /** The complete subtrees tiling [start, end), largest first. */
      frontier: Hash[];
      /** Stored hashes the last append completes with subtrees left of `start`, lowest level first. */
      cross: Hash[];
    }
  | { id: number; ok: false; reason: string };

const CHUNK = 2048;
const SCAN = { fillCache: false } as {};

export async function checkChunk(db: Database, { id, start, end }: ChunkTask): Promise<ChunkResult> {
  const entries = stringSublevel(db, SUBLEVELS.ledgerEntry);
  const entryBytes = bytesSublevel(db, SUBLEVELS.ledgerEntry);
  const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
  const bad = (reason: string): ChunkResult => ({ id, ok: false, reason });
  const entryIt = entries.iterator({ ...SCAN, gte: pad(start), lt: pad(end) });
  const hashIt = hashes.iterator({ ...SCAN, gte: pad(storedHashCount(start)), lt: pad(storedHashCount(end)) });
  let pending = entryIt.nextv(CHUNK);
  try {
    const frontier: Hash[] = [];
    const cross: Hash[] = [];
    let firstPrev = '';
    let prev = '';
    let last: Hash | undefined;
    let hashBuf: Array<[string, Uint8Array]> = [];
    let hashAt = 0;
    let nextIndex = storedHashCount(start);
    let seq = start;
    for (let chunk = await pending; chunk.length > 0; chunk = await pending) {
      pending = entryIt.nextv(CHUNK);
      for (const [key, text] of chunk) {
        if (key !== pad(seq)) return bad(`entry ${seq}: key ${key}`);
        let leaf: Hash;
        let prevField = fastEntryPrev(text, seq);
        if (prevField !== undefined) {
          leaf = sha256('\0' + text);
        } else {
          const bytes = await entryBytes.get(key);
          if (bytes === undefined) return bad(`entry ${seq} vanished`);
          try {
            prevField = parseEntry(bytes, seq).prev;
          } catch {
            return bad(`entry ${seq} invalid`);
          }
          leaf = leafHash(bytes);
        }
        if (seq === start) firstPrev = prevField;
        else if (prevField !== prev) return bad(`entry ${seq}: chain`);
        let h = leaf;
        const completes = trailingOnes(seq);
        for (let level = 0; level <= completes; level++) {
          if (level > 0) {
            const left = frontier.pop();
            if (left === undefined) {
              // Completes a subtree reaching left of this chunk: only the main thread has the hashes for it.
              if (hashAt === hashBuf.length) {
                hashBuf = await hashIt.nextv(CHUNK);
                hashAt = 0;
              }
              const stored = hashBuf[hashAt++];
              if (stored === undefined || stored[0] !== pad(nextIndex++)) return bad(`stored hash ${nextIndex - 1} missing`);
              cross.push(stored[1]);
              continue;
            }
            h = nodeHash(left, h);
          }
          if (hashAt === hashBuf.length) {
            hashBuf = await hashIt.nextv(CHUNK);
            hashAt = 0;
          }
          const stored = hashBuf[hashAt++];
          const index = nextIndex++;
          if (stored === undefined || stored[0] !== pad(index) || !hashesEqual(stored[1], h)) return bad(`stored hash ${index}`);
        }
        // After a crossing, the local frontier is empty and h is this chunk's root.
        frontier.push(h);
        last = leaf;
        prev = toBase64(leaf);
        seq++;
      }
    }
    if (seq !== end || last === undefined) return bad(`entry ${seq} is missing`);
    const extra = hashAt < hashBuf.length ? hashBuf[hashAt] : (await hashIt.nextv(1))[0];
    if (extra !== undefined) return bad(`stored hash ${extra[0]} unexpected`);
    return { id, ok: true, firstPrev, lastLeaf: last, frontier, cross };
  } finally {
    await pending.catch(() => undefined);
    await Promise.all([entryIt.close(), hashIt.close()]);
  }
}
