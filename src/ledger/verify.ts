/**
 * Full verification of a ledger store from read access alone (as Tessera's fsck does for its logs): every entry
 * is re-read in order, parsed strictly (canonical RFC 8785 bytes, the schema, its seq), its prev checked against
 * the previous entry's recomputed leaf hash, and the tree rebuilt leaf by leaf; each hash an append stores is
 * compared with the one in the store. Entries and stored hashes are streamed side by side (both are written in
 * index order, so the stored hashes come out exactly in the order the rebuild produces them): memory stays
 * O(log n) whatever the log's length. The first problem is reported with the entry index it concerns.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { bytesSublevel, isShared, jsonSublevel, pad, stringSublevel, SUBLEVELS, type Database } from '../storage/db.ts';
import { sha256 } from '../storage/sha256.ts';
import { fastEntryPrev, parseEntry, toBase64 } from './entry.ts';
import { EMPTY_ROOT, hashesEqual, leafHash, nodeHash, type Hash } from './merkle.ts';
import { META_SIZE_KEY } from './log.ts';
import { rootFromFrontier, storedHashCount, storedHashIndex, trailingOnes } from './tlog.ts';
import { checkChunk, type ChunkResult, type ChunkTask } from './verify-chunk.ts';

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

/** Entries per read: large enough that the per-call cost of the binding vanishes, small enough to stay O(1) memory. */
const CHUNK = 2048;
/** classic-level's fillCache (not in the abstract-level types): a full scan must not evict the hot tail. */
const SCAN = { fillCache: false } as {};

/**
 * Reads an iterator a chunk ahead: the next nextv runs in LevelDB's thread pool while this thread checks the
 * current chunk, so reading and checking overlap on the two cores instead of taking turns.
 */
class Prefetch<T> {
  readonly #it: { nextv(size: number): Promise<T[]>; close(): Promise<void> };
  #pending: Promise<T[]>;
  constructor(it: { nextv(size: number): Promise<T[]>; close(): Promise<void> }) {
    this.#it = it;
    this.#pending = Prefetch.#read(it);
  }
  /** A read ahead may fail before anyone awaits it (a corrupt table): handled here, thrown again by next(). */
  static #read<T>(it: { nextv(size: number): Promise<T[]> }): Promise<T[]> {
    const pending = it.nextv(CHUNK);
    pending.catch(() => undefined);
    return pending;
  }
  async next(): Promise<T[]> {
    const chunk = await this.#pending;
    this.#pending = chunk.length === 0 ? Promise.resolve([]) : Prefetch.#read(this.#it);
    return chunk;
  }
  async close(): Promise<void> {
    await this.#pending.catch(() => undefined);
    await this.#it.close();
  }
}

export interface VerifyOptions {
  /**
   * Worker threads for the parallel pass. Default: one per core (at most 4) on machines with two cores or more,
   * when the database was opened with `multithreading` (db.ts isShared) and the log holds at least four chunks;
   * 0 = sequential only.
   */
  workers?: number;
  /** Entries per chunk of the parallel pass, a power of two (default 2^15). */
  chunk?: number;
}

/**
 * Full verification. With workers, the log is checked in power-of-two chunks in parallel (verify-worker.ts) and
 * the chunks are joined here: each chunk's first prev against the previous chunk's last leaf, and the hashes that
 * join chunk subtrees (an aligned chunk of 2^k leaves is a complete subtree, RFC 9162's tree of its range). If the
 * parallel pass finds anything wrong, or cannot run, the sequential pass runs and reports the first problem
 * exactly, so the answer is the same either way, only faster for a sound log.
 */
export async function verifyLedger(db: Database, options: VerifyOptions = {}): Promise<VerifyResult> {
  const chunk = options.chunk ?? 2 ** 15;
  if (!Number.isSafeInteger(chunk) || chunk < 1 || (chunk & (chunk - 1)) !== 0) throw new RangeError('chunk must be a power of two');
  const auto = options.workers === undefined;
  // Two workers on two cores: on a quiet 2-vCPU host (session 11) they verified a 1M-entry log at 124k–128k
  // entries/s against 92k–95k for the sequential pass, whose LevelDB read-ahead leaves the second core half idle.
  // (An earlier measurement on a loaded host had seen no gain there.)
  const cores = os.availableParallelism();
  const workers = options.workers ?? (isShared(db) && cores >= 2 ? Math.min(4, cores) : 0);
  if (workers > 0) {
    const result = await verifyInParallel(db, workers, chunk, auto ? 4 * chunk : 1);
    if (result !== undefined) return result;
  }
  return verifySequential(db);
}

/**
 * The parallel pass alone: the result when the whole log verified, undefined when the sequential pass must decide
 * (a problem anywhere, a log under `minSize`, workers that cannot open the database). With 0 workers the chunks
 * are checked one after the other in this thread, by the same code: tests use that, as a thread start costs
 * seconds on a loaded machine. Exported for tests.
 */
export async function verifyInParallel(db: Database, workers: number, chunk: number, minSize = 1): Promise<VerifyResult | undefined> {
  const entries = bytesSublevel(db, SUBLEVELS.ledgerEntry);
  const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
  const snapshot = db.snapshot();
  let size: unknown;
  let bounds: Array<string | undefined>;
  try {
    size = await jsonSublevel<unknown>(db, SUBLEVELS.ledgerMeta).get(META_SIZE_KEY, { snapshot });
    bounds = await Promise.all([entries, hashes].flatMap((sub) => [false, true].map(async (reverse) => (await sub.keys({ snapshot, reverse, limit: 1 }).all())[0])));
  } finally {
    await snapshot.close();
  }
  if (!Number.isSafeInteger(size) || (size as number) < minSize || (size as number) < 1) return undefined;
  const n = size as number;
  // Workers read ranges inside [0, n): nothing may lie outside them (keys before entry 0, after the last one).
  if (bounds[0] !== pad(0) || bounds[1] !== pad(n - 1) || bounds[2] !== pad(0) || bounds[3] !== pad(storedHashCount(n) - 1)) return undefined;
  const tasks: ChunkTask[] = [];
  for (let start = 0, id = 0; start < n; start += chunk, id++) tasks.push({ id, start, end: Math.min(n, start + chunk) });
  const results = workers === 0 ? await inThisThread(db, tasks) : await runChunks(db.location, Math.min(workers, tasks.length), tasks);
  if (results === undefined) return undefined;
  let frontier: Hash[] = [];
  let prev = toBase64(EMPTY_ROOT);
  for (const r of results) {
    if (r.firstPrev !== prev) return undefined;
    if (r.cross.length === 0) {
      frontier = frontier.concat(r.frontier);
    } else {
      let h = r.frontier[0]!;
      for (const stored of r.cross) {
        const left = frontier.pop();
        if (left === undefined) return undefined;
        h = nodeHash(left, h);
        if (!hashesEqual(stored, h)) return undefined;
      }
      frontier.push(h);
    }
    prev = toBase64(r.lastLeaf);
  }
  return { ok: true, size: n, root: rootFromFrontier(frontier) };
}

async function inThisThread(db: Database, tasks: ChunkTask[]): Promise<Array<Extract<ChunkResult, { ok: true }>> | undefined> {
  const results: Array<Extract<ChunkResult, { ok: true }>> = [];
  for (const task of tasks) {
    const result = await checkChunk(db, task);
    if (!result.ok) return undefined;
    results.push(result);
  }
  return results;
}

/** Hands the chunks to a pool of workers; every chunk's result in order, or undefined at the first failure. */
async function runChunks(location: string, count: number, tasks: ChunkTask[]): Promise<Array<Extract<ChunkResult, { ok: true }>> | undefined> {
  const results: Array<Extract<ChunkResult, { ok: true }>> = [];
  let next = 0;
  let failed = false;
  const pool = Array.from({ length: count }, () => new Worker(new URL('./verify-worker.ts', import.meta.url), { workerData: { location } }));
  const exited = pool.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
  await Promise.all(pool.map((worker) => new Promise<void>((resolve) => {
    const finish = () => {
      worker.postMessage(null);
      resolve();
    };
    const give = () => {
      if (failed || next >= tasks.length) return finish();
      worker.postMessage(tasks[next++]);
    };
    worker.on('message', (message: 'ready' | ChunkResult) => {
      if (message === 'ready') return give();
      if (!message.ok) {
        failed = true;
        return finish();
      }
      results[message.id] = message;
      give();
    });
    worker.on('error', () => {
      // Cannot open the database (not shared) or crashed: the sequential pass decides.
      failed = true;
      resolve();
    });
  })));
  // Each worker closes its handle on the shared database before exiting.
  await Promise.all(exited);
  return failed ? undefined : results;
}

async function verifySequential(db: Database): Promise<VerifyResult> {
  // Entries are read as strings: fastEntryPrev checks the common (printable ASCII) form without building bytes,
  // and only an entry it cannot vouch for is read again as raw bytes for the exact check.
  const entries = stringSublevel(db, SUBLEVELS.ledgerEntry);
  const entryBytes = bytesSublevel(db, SUBLEVELS.ledgerEntry);
  const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
  const fail = (code: string, index: number, message: string, storedHashIndex?: number): VerifyResult =>
    ({ ok: false, code, index, message, ...(storedHashIndex === undefined ? {} : { storedHashIndex }) });
  // One snapshot for every read, so a server appending meanwhile cannot make the size and the scans disagree.
  const snapshot = db.snapshot();
  const entryIt = new Prefetch(entries.iterator({ ...SCAN, snapshot }));
  const hashIt = new Prefetch(hashes.iterator({ ...SCAN, snapshot }));
  try {
    const size = (await jsonSublevel<unknown>(db, SUBLEVELS.ledgerMeta).get(META_SIZE_KEY, { snapshot })) ?? 0;
    const frontier: Hash[] = [];
    let hashBuf: Array<[string, Uint8Array]> = [];
    let hashAt = 0;
    /** The stored-hash index the next stored hash must have: an append's hashes follow the previous append's. */
    let nextIndex = 0;
    let seq = 0;
    let prev = toBase64(rootFromFrontier([]));
    for (let chunk = await entryIt.next(); chunk.length > 0; chunk = await entryIt.next()) {
      for (const [key, text] of chunk) {
        if (key !== pad(seq)) return fail('ERR_LEDGER_GAP', seq, `entry ${seq} is missing (next key is ${key})`);
        let leaf: Hash;
        let prevField = fastEntryPrev(text, seq);
        if (prevField !== undefined) {
          // Printable ASCII: the string's UTF-8 encoding is exactly the stored bytes.
          leaf = sha256('\0' + text);
        } else {
          const bytes = (await entryBytes.get(key, { snapshot }))!;
          try {
            prevField = parseEntry(bytes, seq).prev;
          } catch (error) {
            return fail('ERR_LEDGER_ENTRY_INVALID', seq, (error as Error).message);
          }
          leaf = leafHash(bytes);
        }
        if (prevField !== prev) return fail('ERR_LEDGER_CHAIN', seq, `entry ${seq} prev does not match entry ${seq - 1}`);
        // The hashes the append of `seq` stored: its leaf, then one node per trailing one bit of seq.
        let h = leaf;
        const completes = trailingOnes(seq);
        for (let level = 0; level <= completes; level++) {
          if (level > 0) h = nodeHash(frontier.pop()!, h);
          const index = nextIndex++;
          if (hashAt === hashBuf.length) {
            hashBuf = await hashIt.next();
            hashAt = 0;
          }
          const stored = hashBuf[hashAt++];
          if (stored === undefined || stored[0] !== pad(index)) {
            return fail('ERR_LEDGER_HASH_MISSING', seq, `stored hash ${index} (of entry ${seq}) is missing`, index);
          }
          if (hashesEqual(stored[1], h)) continue;
          if (level === 0) return classifyLeaf((key) => entryBytes.get(key, { snapshot }), seq, stored[1], leaf, fail);
          return fail('ERR_LEDGER_HASH_MISMATCH', seq, `stored hash ${index} (level ${level}, completed by entry ${seq}) differs from the recomputed one`, index);
        }
        frontier.push(h);
        prev = toBase64(leaf);
        seq++;
      }
    }
    const extra = hashAt < hashBuf.length ? hashBuf[hashAt] : (await hashIt.next())[0];
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
