/**
 * Signed checkpoints of the ledger (C2SP tlog-checkpoint in a signed note, note.ts), produced once N entries
 * have accumulated or T ms after the first unsigned entry, whichever comes first, and on close.
 *
 * Never two inconsistent checkpoints: signing is serialized; a checkpoint is only signed over the DURABLE size,
 * only when it is larger than the last signed size, and only after a consistency proof from the last checkpoint
 * (read from stored hashes) has verified against both roots. If that check ever fails the checkpointer stops
 * signing for good (until an operator looks): a tampered hash store must never be signed over.
 *
 * Each checkpoint is stored twice in one synced batch: a record in the `ledger-checkpoint` sublevel (history,
 * keyed by size) and an IPFS block `{"note": …, "prev": <CID of the previous checkpoint's block or null>}`
 * (RFC 8785 JSON, raw codec), so the blocks form a hash-linked chain from the newest back to the first.
 */
import { errors } from '../errors.ts';
import { jsonSublevel, pad, SUBLEVELS, writeBatch, type BatchOp, type Database, type Sublevel } from '../storage/db.ts';
import type { BlockStore } from '../storage/types.ts';
import { canonicalBytes } from './canonical.ts';
import { fromBase64, toBase64 } from './entry.ts';
import type { Ledger } from './log.ts';
import { verifyConsistency } from './merkle.ts';
import { checkpointBody, signNote, verifierKeyString, type NoteSigner } from './note.ts';

export interface StoredCheckpoint {
  size: number;
  /** base64 root. */
  root: string;
  /** The signed note, exactly as served. */
  note: string;
  /** CID of this checkpoint's IPFS block. */
  cid: string;
  /** CID of the previous checkpoint's block (null for the first). */
  prev: string | null;
  time: string;
}

export interface CheckpointPolicy {
  /** Sign once this many entries are unsigned. */
  everyEntries: number;
  /** ... or this many ms after the first unsigned entry became durable. */
  everyMs: number;
}

export interface CheckpointerOptions extends CheckpointPolicy {
  db: Database;
  ledger: Ledger;
  blocks: BlockStore;
  signer: NoteSigner;
  /** C2SP origin line (also the key name). */
  origin: string;
  /** Where failures of background signing are reported. */
  onError: (error: unknown) => void;
  now?: () => Date;
}

export const META_VERIFIER_KEYS = 'verifier-keys';

/** The checkpoint block's bytes: canonical JSON of the note and the previous block's CID. */
export function checkpointBlock(note: string, prev: string | null): Uint8Array {
  return canonicalBytes({ note, prev });
}

export function checkpointSublevel(db: Database): Sublevel<StoredCheckpoint> {
  return jsonSublevel<StoredCheckpoint>(db, SUBLEVELS.ledgerCheckpoint);
}

export class Checkpointer {
  readonly #o: CheckpointerOptions;
  readonly #store: Sublevel<StoredCheckpoint>;
  readonly verifierKey: string;
  #latest: StoredCheckpoint | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #halted: Error | undefined;
  #closed = false;

  private constructor(options: CheckpointerOptions, latest: StoredCheckpoint | undefined) {
    this.#o = options;
    this.#store = checkpointSublevel(options.db);
    this.#latest = latest;
    this.verifierKey = verifierKeyString(options.signer.name, options.signer.publicKey);
  }

  /** Loads the latest checkpoint, records the verifier key (offline verifiers read it) and starts following the log. */
  static async open(options: CheckpointerOptions): Promise<Checkpointer> {
    const store = checkpointSublevel(options.db);
    const [latest] = await store.values({ reverse: true, limit: 1 }).all();
    const cp = new Checkpointer(options, latest);
    const meta = jsonSublevel<string[]>(options.db, SUBLEVELS.ledgerMeta);
    const keys = (await meta.get(META_VERIFIER_KEYS)) ?? [];
    if (!keys.includes(cp.verifierKey)) await meta.put(META_VERIFIER_KEYS, [...keys, cp.verifierKey], { sync: true } as {});
    options.ledger.onDurable((size) => cp.#onDurable(size));
    if (options.ledger.size() > (latest?.size ?? 0)) cp.#onDurable(options.ledger.size());
    return cp;
  }

  latest(): StoredCheckpoint | undefined {
    return this.#latest;
  }

  /** Checkpoints with size in [from, to], oldest first, at most `limit`. */
  async list(from = 0, to = Number.MAX_SAFE_INTEGER, limit = 1000): Promise<StoredCheckpoint[]> {
    return this.#store.values({ gte: pad(from), lte: pad(to), limit }).all();
  }

  /** The checkpoint of exactly `size` entries, if one was signed. */
  async at(size: number): Promise<StoredCheckpoint | undefined> {
    return this.#store.get(pad(size));
  }

  #onDurable(size: number): void {
    if (this.#closed || this.#halted) return;
    const unsigned = size - (this.#latest?.size ?? 0);
    if (unsigned <= 0) return;
    if (unsigned >= this.#o.everyEntries) {
      this.#clearTimer();
      this.#background(true);
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#background(false);
      }, this.#o.everyMs);
      this.#timer.unref();
    }
  }

  /**
   * A policy-driven checkpoint. `byCount` ones re-check the count when their turn comes: one queued while another
   * was being signed may no longer be due (the other may have covered most of its entries).
   */
  #background(byCount: boolean): void {
    const run = this.#chain.then(() => {
      const unsigned = this.#o.ledger.size() - (this.#latest?.size ?? 0);
      if (byCount && unsigned < this.#o.everyEntries) return this.#latest;
      return this.#sign();
    });
    this.#chain = run.catch(() => undefined);
    run.catch((err) => this.#o.onError(err));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Signs a checkpoint over the current durable size if the log grew; resolves to the latest checkpoint. */
  checkpoint(): Promise<StoredCheckpoint | undefined> {
    const run = this.#chain.then(() => this.#sign());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #sign(): Promise<StoredCheckpoint | undefined> {
    if (this.#halted) throw this.#halted;
    const { ledger, signer, origin, blocks, db } = this.#o;
    const prev = this.#latest;
    const size = ledger.size();
    if (size === 0 || (prev && size <= prev.size)) return prev;
    const root = await ledger.rootAt(size);
    if (prev) {
      const proof = await ledger.consistencyProof(prev.size, size);
      if (!verifyConsistency(prev.size, size, proof, fromBase64(prev.root), root)) {
        this.#halted = errors.internal(
          `Refusing to sign: the tree of size ${size} is not consistent with checkpoint ${prev.size}`,
          'ERR_CHECKPOINT_INCONSISTENT',
        );
        throw this.#halted;
      }
    }
    const note = signNote(checkpointBody({ origin, size, root }), signer);
    const staged = await blocks.stage(checkpointBlock(note, prev?.cid ?? null));
    const record: StoredCheckpoint = {
      size,
      root: toBase64(root),
      note,
      cid: staged.cid.toString(),
      prev: prev?.cid ?? null,
      time: (this.#o.now?.() ?? new Date()).toISOString(),
    };
    const ops: BatchOp[] = [...staged.ops, { type: 'put', sublevel: this.#store, key: pad(size), value: record }];
    await writeBatch(db, ops, { sync: true });
    this.#latest = record;
    // Entries that became durable while this one was signed may already be due for the next (or need a timer).
    if (!this.#closed) {
      this.#clearTimer();
      this.#onDurable(ledger.size());
    }
    return record;
  }

  /** Stops following the log and signs a last checkpoint over everything durable. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    if (!this.#halted) await this.checkpoint().catch((err) => this.#o.onError(err));
    await this.#chain;
  }
}
