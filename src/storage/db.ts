/**
 * The one LevelDB database of a node. Index, ledger and (with the embedded Helia node) the IPFS blockstore live
 * in sublevels of it, so that one synced batch makes a block, its index entries and its ledger entry durable
 * together (docs/storage.md). Sublevel names are part of the on-disk format: never rename one.
 */
import { Level } from 'level';
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level';

export type Database = Level<string, Uint8Array>;
/** A sublevel with string keys; the value type is fixed by its encoding (`view` for bytes, `json` for records). */
export type Sublevel<V> = AbstractSublevel<Database, string | Uint8Array | Buffer, string, V>;
/** An operation of the node's atomic commit batch (may target any sublevel through `sublevel`). */
export type BatchOp = AbstractBatchOperation<Database, string, any>;

/**
 * The value of a key whose presence is all it says (search-value and AuditEvent index keys): one byte, never an
 * empty value. classic-level 3.0.0 copies each key and value of a write into `new char[n]` and frees only the
 * non-empty ones (binding.cc `DisposeSliceBuffer`), so every zero-length value leaked a heap chunk (~32 bytes):
 * about 100 per Patient create and 5 per audited read, the steady native-heap growth the soak test measured.
 * Readers test presence only, so stores written with empty values read the same.
 */
export const PRESENT_TEXT = '1';
export const PRESENT_BYTES: Uint8Array = new TextEncoder().encode(PRESENT_TEXT);

/** Every sublevel of the database, by name. The layouts are documented in docs/storage.md. */
export const SUBLEVELS = {
  /** IPFS blocks of the embedded Helia node: base32 multihash → block bytes. */
  blocks: 'blocks',
  /** Helia's own datastore records (version marker, keychain) of the embedded node. */
  ipfsDatastore: 'ipfs-datastore',
  /** Current version of each resource: `Type/id` → VersionRecord (JSON). */
  head: 'head',
  /** Every version of each resource: `Type/id/vvvvvvvvvv` → VersionRecord (JSON). */
  version: 'version',
  /** Type-level history: `Type/tttttttttttttttt` → `id/version`. */
  typeHistory: 'type-history',
  /** System-level history: `tttttttttttttttt` → `Type/id/version`. */
  systemHistory: 'system-history',
  /** Key-encryption keys wrapped by the master key: `patient/<id>` | `node` → wrapped key (bytes). */
  kek: 'kek',
  /** Ledger entries: `seq` (16 digits) → canonical entry bytes. */
  ledgerEntry: 'ledger-entry',
  /** Stored Merkle node hashes (Go sumdb/tlog stored-hash index, 16 digits) → 32-byte hash. */
  ledgerHash: 'ledger-hash',
  /** Ledger bookkeeping (tree size, checkpoint verifier keys). */
  ledgerMeta: 'ledger-meta',
  /** Signed checkpoints: `pad(size)` → StoredCheckpoint (JSON). */
  ledgerCheckpoint: 'ledger-checkpoint',
  /** AuditEvent search index over ledger entries (src/ledger/audit-index.ts): `<value>|pad(seq)` → PRESENT. */
  auditPatient: 'audit-patient',
  auditAgent: 'audit-agent',
  auditEntity: 'audit-entity',
  auditSubtype: 'audit-subtype',
  auditTime: 'audit-time',
  /** AuditEvent index bookkeeping: `format` → the AUDIT_INDEX_FORMAT it was built with (ledger/audit-index.ts). */
  auditMeta: 'audit-meta',
  /** Search index (issue 3) lives in its own sublevels beside these. */
  /** Search index, value → resource: `Type/code/<value>\x00<id>` → PRESENT (docs/storage.md). */
  searchValue: 'search-value',
  /** Search index, resource → values: `Type/id` → the resource's entries packed in one string (docs/storage.md). */
  resourceEntries: 'resource-entries',
  /** Search index, resource → its date, number and quantity values only: `Type/id` → packed (docs/storage.md). */
  resourceRanges: 'resource-ranges',
  /** Search index bookkeeping: `format` → the SEARCH_INDEX_FORMAT the index was built with (search/index-format.ts). */
  searchMeta: 'search-meta',
  /** Bulk export jobs (src/fhir/export-jobs.ts): job id → ExportJob (JSON: parameters and point in time, no PHI). */
  exportJob: 'export-job',
  /** Former resource → value layout (`Type/id/code/<value>` → ''), one key per entry: only cleared by reindex. */
  legacyResourceValue: 'resource-value',
} as const;

/**
 * LevelDB's open-table limit unless the caller says otherwise: 64, not LevelDB's 1000. Each open table stays
 * mmapped with its index and filter blocks in memory, so this limit is what bounds a process's memory as the
 * store grows (soak and 10M-entry runs: docs/stress.md, docs/benchmarks-ledger.md).
 */
export const DEFAULT_MAX_OPEN_FILES = 64;

/**
 * LevelDB's write buffer (memtable) unless the caller says otherwise: 32 MiB, not LevelDB's 4 MiB. Every audited
 * request writes ~8 keys to the ledger and its AuditEvent index, spread over several key ranges, so each small
 * level-0 table overlapped most of level 1 and compaction rewrote it again and again. Measured with
 * bench/write-buffer.ts (600k audited appends per store, six stores per size; docs/benchmarks.md, "LevelDB's write
 * buffer"): 65–83 µs of process CPU per append with 32 MiB (mean 71) against 76–90 µs with 4 MiB (mean 84), for
 * ~45 MiB more RSS there (the memtable, and the one being flushed, at their largest); a server's peak RSS rose
 * 50–170 MiB in bench runs, whose throughput did not change beyond the host's drift (run 12).
 */
export const DEFAULT_WRITE_BUFFER_MIB = 32;

export interface OpenOptions {
  /**
   * classic-level's `multithreading`: worker threads of this process may open the same location too (the full
   * ledger verification spreads its work over them). Off by default: a second open in the same process should
   * keep failing with LEVEL_LOCKED unless a caller asks for sharing.
   */
  multithreading?: boolean;
  /**
   * LevelDB's max_open_files (default DEFAULT_MAX_OPEN_FILES; classic-level's own is 1000). Every open table
   * file is also mmapped by LevelDB's POSIX env (up to 1000 of them), and the pages a read touches count in the
   * process's RSS until the table is closed: this bounds that part of the RSS at about (maxOpenFiles - 10) × 2 MiB
   * (docs/storage.md).
   */
  maxOpenFiles?: number;
  /** LevelDB's write_buffer_size in MiB (default DEFAULT_WRITE_BUFFER_MIB; the server passes `LEVELDB_WRITE_BUFFER_MIB`). */
  writeBufferMiB?: number;
}

const shared = new WeakSet<Database>();

export async function openDatabase(location: string, options: OpenOptions = {}): Promise<Database> {
  const db = new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open({
    ...(options.multithreading ? { multithreading: true } : {}),
    maxOpenFiles: options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES,
    writeBufferSize: (options.writeBufferMiB ?? DEFAULT_WRITE_BUFFER_MIB) * 1024 * 1024,
  } as {});
  if (options.multithreading) shared.add(db);
  return db;
}

/**
 * Whether opening failed because another process holds the database (LevelDB admits one process at a time: a
 * running server, an import, a reindex). The CLIs say so plainly instead of "Database failed to open".
 */
export function isLockedError(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'LEVEL_LOCKED') return true;
    if (typeof (e as Error).message === 'string' && /\block\b.*(held|unavailable)|Resource temporarily unavailable/i.test((e as Error).message)) return true;
  }
  return false;
}

/** Whether worker threads may open this database's location (openDatabase with `multithreading`). */
export function isShared(db: Database): boolean {
  return shared.has(db);
}

export function bytesSublevel(db: Database, name: string): Sublevel<Uint8Array> {
  return db.sublevel<string, Uint8Array>(name, { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as Sublevel<Uint8Array>;
}

export function jsonSublevel<V>(db: Database, name: string): Sublevel<V> {
  return db.sublevel<string, V>(name, { keyEncoding: 'utf8', valueEncoding: 'json' }) as unknown as Sublevel<V>;
}

export function stringSublevel(db: Database, name: string): Sublevel<string> {
  return db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' }) as unknown as Sublevel<string>;
}

/** What parseJsonRecord returns for a stored value that is not valid JSON (a damaged record). */
export const NOT_JSON: unique symbol = Symbol('not JSON');

/**
 * A JSON sublevel's value parsed here rather than by its encoding: `NOT_JSON` when it is not valid JSON, where the
 * encoding would throw abstract-level's "Could not decode value" (or, in an iterator or getMany, end the whole read),
 * naming no record. Read the sublevel as strings (stringSublevel: same name, same keys) and parse each value with
 * this, to say which record is damaged.
 */
export function parseJsonRecord(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/**
 * What is wrong with a parsed stored value that should be a JSON object (a version or head record, a history
 * pointer), or undefined when nothing is. The record checks report it; the other checks skip such a record.
 */
export function jsonRecordProblem(value: unknown): string | undefined {
  if (value === NOT_JSON) return 'is not valid JSON';
  return value === null || typeof value !== 'object' || Array.isArray(value) ? 'is not a JSON object' : undefined;
}

/** Whether an error is abstract-level's failure to decode a stored value (a JSON record that does not parse). */
export function isDecodeError(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 'LEVEL_DECODE_ERROR';
}

/**
 * Writes `ops` as one atomic LevelDB batch, the way every commit of the node is written. It goes through a
 * chained batch rather than `db.batch(ops)`: classic-level's array form reads each operation's `type`, `key` and
 * `value` back out of the JS object in native code (about a dozen N-API calls per operation), the chained form is
 * handed key and value directly. Measured on the main thread (the cost a request's batch pays before the write is
 * queued): 2.4–3.6 µs per operation for the array form, 1.6–1.9 µs chained — about 0.17 ms of a Patient create's
 * ~110 operations. Same WriteBatch, same single write, same `sync`.
 */
export async function writeBatch(db: Database, ops: readonly BatchOp[], options: { sync?: boolean } = {}): Promise<void> {
  const batch = db.batch();
  try {
    for (const op of ops) {
      if (op.sublevel === undefined) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      } else if (op.type === 'put') batch.put(op.key, op.value, { sublevel: op.sublevel });
      else batch.del(op.key, { sublevel: op.sublevel });
    }
  } catch (error) {
    await batch.close();
    throw error;
  }
  await batch.write(options);
}

/** Zero-padded decimal, so that lexicographic key order is numeric order (16 digits covers 2^53). */
export function pad(n: number, width = 16): string {
  return n.toString().padStart(width, '0');
}
