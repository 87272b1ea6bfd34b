/**
 * The append-only audit log over the node's LevelDB: hash-chained canonical entries, the RFC 9162 tree stored
 * incrementally (tlog.ts), and group commit. docs/ledger.md describes the key layouts and the failure rule.
 *
 * Group commit: commit() fixes an entry's seq, time and prev the moment it is called (so order and chain are
 * decided at submission), then queues it. One writer drains the queue: everything queued goes into ONE synced
 * batch with its index riders and the new tree size, and each commit resolves only after that batch is durable.
 * If a batch fails, it and everything queued behind it (whose prev hashes chain from it) are rejected and the
 * in-memory tip is reset to the last durable state. The batch is atomic, so nothing partial is ever stored.
 */
import { errors } from '../errors.ts';
import { bytesSublevel, jsonSublevel, pad, SUBLEVELS, writeBatch, type BatchOp, type Database, type Sublevel } from '../storage/db.ts';
import { sealEntry, toBase64, type SealedEntry } from './entry.ts';
import { EMPTY_ROOT, leafHash, type Hash } from './merkle.ts';
import {
  appendLeaf, consistencyProof, frontierIndexes, inclusionProof, storedHashCount, storedHashIndex, treeHash,
  type HashReader, type StoredHash,
} from './tlog.ts';
import type { Appended, CommitRequest, Entry, LedgerWriter } from './types.ts';

export interface LedgerOptions {
  /** Clock for entry times (tests freeze it). */
  now?: () => Date;
  /**
   * Derived index writes computed from each sealed entry (the AuditEvent search index, audit-index.ts), added to
   * the same synced batch as the entry, so the index can never lag behind or run ahead of the log.
   */
  entryOps?: (entry: Entry) => BatchOp[];
}

/** An entry as stored: its index, exact canonical bytes and RFC 9162 leaf hash. */
export interface StoredEntry {
  seq: number;
  bytes: Uint8Array;
  leafHash: Hash;
}

/** Tree state after some prefix of the log: size, last leaf hash (the next prev) and right frontier. */
interface TreeState {
  size: number;
  last: Hash;
  frontier: readonly Hash[];
}

interface Queued {
  ops: BatchOp[];
  appended: Appended[];
  resolve: (appended: Appended[]) => void;
  reject: (error: unknown) => void;
}

export const META_SIZE_KEY = 'size';

export class Ledger implements LedgerWriter {
  readonly #db: Database;
  readonly #entries: Sublevel<Uint8Array>;
  readonly #hashes: Sublevel<Uint8Array>;
  readonly #meta: Sublevel<unknown>;
  readonly #now: () => Date;
  readonly #entryOps: ((entry: Entry) => BatchOp[]) | undefined;
  readonly #listeners: Array<(size: number) => void> = [];
  #durable: TreeState;
  #tip: TreeState;
  #queue: Queued[] = [];
  #writing: Promise<void> | null = null;
  #closed = false;
  /** Stored hashes by stored-hash index (one batched read). */
  readonly readHashes: HashReader;

  private constructor(db: Database, state: TreeState, options: LedgerOptions) {
    this.#db = db;
    this.#entries = bytesSublevel(db, SUBLEVELS.ledgerEntry);
    this.#hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
    this.readHashes = hashReader(this.#hashes);
    this.#meta = jsonSublevel(db, SUBLEVELS.ledgerMeta);
    this.#now = options.now ?? (() => new Date());
    this.#entryOps = options.entryOps;
    this.#durable = state;
    this.#tip = state;
  }

  /**
   * Recovers the durable state: the size written with the last batch, then the last leaf hash and the right
   * frontier from O(log n) stored hashes. Refuses (ERR_LEDGER_CORRUPT) a store whose last entry or last stored
   * hash does not sit where that size says; content is checked by verifyLedger, not here.
   */
  static async open(db: Database, options: LedgerOptions = {}): Promise<Ledger> {
    const meta = jsonSublevel<unknown>(db, SUBLEVELS.ledgerMeta);
    const size = (await meta.get(META_SIZE_KEY)) ?? 0;
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw corrupt(`stored ledger size ${String(size)} is invalid`);
    const n = size as number;
    const [lastEntry] = await bytesSublevel(db, SUBLEVELS.ledgerEntry).keys({ reverse: true, limit: 1 }).all();
    if (lastEntry !== (n === 0 ? undefined : pad(n - 1))) throw corrupt(`size ${n} but last entry key is ${lastEntry}`);
    const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
    const [lastHash] = await hashes.keys({ reverse: true, limit: 1 }).all();
    if (lastHash !== (n === 0 ? undefined : pad(storedHashCount(n) - 1))) throw corrupt(`size ${n} but last stored hash key is ${lastHash}`);
    if (n === 0) return new Ledger(db, { size: 0, last: EMPTY_ROOT, frontier: [] }, options);
    const read = hashReader(hashes);
    const indexes = frontierIndexes(n);
    const values = await read([...indexes, storedHashIndex(0, n - 1)]);
    return new Ledger(db, { size: n, last: values.pop()!, frontier: values }, options);
  }

  commit(request: CommitRequest): Promise<Appended[]> {
    if (this.#closed) return Promise.reject(errors.unavailable('The ledger is closed', 'ERR_LEDGER_CLOSED'));
    let queued: Omit<Queued, 'resolve' | 'reject'>;
    try {
      queued = this.#prepare(request);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<Appended[]>((resolve, reject) => {
      this.#queue.push({ ...queued, resolve, reject });
      this.#writing ??= this.#drain();
    });
  }

  /** Seals the entries on the tip, runs the rider callback, and only then advances the tip (all or nothing). */
  #prepare(request: CommitRequest): Omit<Queued, 'resolve' | 'reject'> {
    if (!Array.isArray(request.entries) || request.entries.length === 0) {
      throw errors.internal('A ledger commit needs at least one entry', 'ERR_LEDGER_DRAFT_INVALID');
    }
    const time = this.#now().toISOString();
    const frontier = [...this.#tip.frontier];
    let { size, last } = this.#tip;
    const sealed: SealedEntry[] = [];
    const stored: StoredHash[] = [];
    for (const draft of request.entries) {
      const entry = sealEntry(draft, size, time, toBase64(last));
      sealed.push(entry);
      stored.push(...appendLeaf(frontier, size, entry.leafHash));
      last = entry.leafHash;
      size++;
    }
    const appended = sealed.map((s) => ({ seq: s.entry.seq, leafHash: toBase64(s.leafHash), time }));
    const riders = request.ops ? request.ops(appended.map((a) => ({ ...a }))) : [];
    if (!Array.isArray(riders)) throw errors.internal('CommitRequest.ops must return an array', 'ERR_LEDGER_DRAFT_INVALID');
    // Riders first: should one ever touch a ledger key, the ledger's own writes later in the batch win.
    const ops: BatchOp[] = [...riders];
    if (this.#entryOps) for (const s of sealed) ops.push(...this.#entryOps(s.entry));
    // Root-level keys with the sublevel's prefix: the same bytes on disk as `sublevel:` ops, at half the cost per op.
    const entryPrefix = this.#entries.prefix;
    const hashPrefix = this.#hashes.prefix;
    for (const s of sealed) ops.push({ type: 'put', key: entryPrefix + pad(s.entry.seq), value: s.bytes });
    for (const [index, hash] of stored) ops.push({ type: 'put', key: hashPrefix + pad(index), value: hash });
    this.#tip = { size, last, frontier };
    return { ops, appended };
  }

  async #drain(): Promise<void> {
    // Let the commits submitted in the same turn join the first batch.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      const tip = this.#tip;
      const ops = batch.flatMap((q) => q.ops);
      ops.push({ type: 'put', sublevel: this.#meta, key: META_SIZE_KEY, value: tip.size });
      try {
        await writeBatch(this.#db, ops, { sync: true });
      } catch (cause) {
        // Synchronously, so that no commit can be chained onto the failed entries after this point.
        const rejected = [...batch, ...this.#queue];
        this.#queue = [];
        this.#tip = this.#durable;
        for (const q of rejected) {
          q.reject(errors.unavailable('The ledger write failed; nothing was stored', 'ERR_LEDGER_WRITE', cause));
        }
        continue;
      }
      this.#durable = tip;
      for (const q of batch) q.resolve(q.appended);
      for (const listener of this.#listeners) listener(tip.size);
    }
    this.#writing = null;
  }

  /** Called (synchronously, must not throw) after each batch is durable, with the new durable size. */
  onDurable(listener: (size: number) => void): void {
    this.#listeners.push(listener);
  }

  /** The durable tree size: everything below it is readable and provable. */
  size(): number {
    return this.#durable.size;
  }

  /** Entries [start, end) with their exact bytes and leaf hashes. */
  async getEntries(start: number, end: number): Promise<StoredEntry[]> {
    this.#checkRange(start, end);
    const out: StoredEntry[] = [];
    for await (const [key, bytes] of this.#entries.iterator({ gte: pad(start), lt: pad(end) })) {
      const seq = start + out.length;
      if (key !== pad(seq)) throw corrupt(`entry ${seq} is missing`);
      out.push({ seq, bytes, leafHash: leafHash(bytes) });
    }
    if (out.length !== end - start) throw corrupt(`entry ${start + out.length} is missing`);
    return out;
  }


  /** MTH of the first `size` entries, from stored hashes. */
  async rootAt(size: number): Promise<Hash> {
    this.#checkRange(0, size);
    return treeHash(size, this.readHashes);
  }

  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    this.#checkRange(0, size);
    return inclusionProof(index, size, this.readHashes);
  }

  async consistencyProof(size1: number, size2: number): Promise<Hash[]> {
    this.#checkRange(0, size2);
    return consistencyProof(size1, size2, this.readHashes);
  }

  /** Refuses new commits and waits until everything already submitted is durable (or rejected). */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#writing !== null) await this.#writing;
  }

  #checkRange(start: number, end: number): void {
    const size = this.#durable.size;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end > size) {
      throw errors.badRequest(`Range [${start}, ${end}) is outside the log of size ${size}`, undefined, 'ERR_LEDGER_RANGE');
    }
  }
}

function hashReader(hashes: Sublevel<Uint8Array>): HashReader {
  return async (indexes) => {
    const values = await hashes.getMany(indexes.map((i) => pad(i)));
    return values.map((value, i) => {
      if (value === undefined) throw corrupt(`stored hash ${indexes[i]} is missing`);
      return value;
    });
  };
}

function corrupt(detail: string) {
  return errors.internal(`Ledger store is inconsistent: ${detail}`, 'ERR_LEDGER_CORRUPT');
}
