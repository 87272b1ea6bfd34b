/**
 * Versions of resources over sealed storage: the version head and history in the index (LevelDB), each version's
 * ciphertext as an IPFS block, and the atomic commit through the ledger (which writes the index changes and the
 * audit entry in one synced batch). Knows nothing of HTTP or of who is asking; callers hold the resource locks.
 * Key layouts: docs/storage.md. Each version's search-index entries are written in the same batch (search/).
 * Ready for conditional interactions and import: `findIds(type, query, { limit })` (search/engine.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import type { FhirError } from '../errors.ts';
import type { Appended, EntityRef } from '../ledger/types.ts';
import type { BatchOp, Database, Sublevel } from '../storage/db.ts';
import { isDecodeError, jsonSublevel, NOT_JSON, pad, parseJsonRecord, stringSublevel, SUBLEVELS } from '../storage/db.ts';
import { decryptError } from '../storage/envelope.ts';
import type { SealedAddress, SealedStore, SealedVersion } from '../storage/types.ts';
import { extractEntries, type IndexEntry, type IndexHash } from './search/extract.ts';
import { indexEntriesOf, type Analyzer } from './analysis/analyze.ts';
import { SearchIndex, type IdSource } from './search/index-store.ts';
import { SearchEngine, type FindOptions } from './search/engine.ts';
import { protectQuery } from './search/audit-query.ts';
import type { Validator } from './validate.ts';

export type WriteMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What the index keeps of one version. Head and version sublevels hold the same record. */
export interface VersionRecord extends Partial<SealedVersion> {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  method: WriteMethod;
  /** Ledger index of the entry that recorded this version: orders type and system history. */
  t: number;
  deleted?: true;
  /** Patient compartment owner (`id`), also the owner of the key that wraps the data key. */
  patient?: string;
}

/** A version prepared for commit: its record, the plaintext it seals and the batch ops that store it. */
export interface PreparedVersion {
  record: VersionRecord;
  /** Canonical JSON of the resource version (absent for deletes). */
  plaintext?: Uint8Array;
  resource?: Resource;
  entity: EntityRef;
  /** Builds the index ops once the ledger has given the entry its index. */
  ops: (appended: Appended) => BatchOp[];
}

interface HistoryPointer {
  resourceType: string;
  id: string;
  versionId: number;
}

export interface HistoryPage {
  records: VersionRecord[];
  /** Cursor for the next (older) page, if there is one. */
  next?: number;
}

export interface RepositoryDeps {
  sealed: SealedStore;
  validator: Validator;
  /** FHIR base URL: absolute references under it are indexed as local references. */
  baseUrl: string | undefined;
  /**
   * Keyed hash (the keyring's content hash, HMAC-SHA-256 under the node's content-hash key): keeps search values
   * out of the ledger.
   */
  contentHash: (bytes: Uint8Array) => string;
  /** The same key's hash of index values (analysis/analyze.ts, indexHasher): none is kept in plaintext. */
  indexHash: IndexHash;
  /** Validation, compartment, index entries and canonical bytes of a resource: inline or on worker threads. */
  analyzer: Analyzer;
}

/** Server-assigned ids remembered as unused (newId). */
const ISSUED_IDS = 10_000;

const utf8 = new TextDecoder();

/** A stored version's plaintext (RFC 8785 canonical JSON, UTF-8) as the resource it holds. */
export function parseStored(plaintext: Uint8Array): Resource {
  return JSON.parse(utf8.decode(plaintext)) as Resource;
}

export const versionKey = (type: string, id: string, versionId: number) => `${type}/${id}/${pad(versionId, 10)}`;

/**
 * A head or version record whose stored value does not decode: the version cannot be read, answered as when its key
 * material is damaged (ERR_DECRYPT, sealed-store.ts: a 500 whose OperationOutcome says no more), the record named in
 * the cause, which only the log sees.
 */
export function damagedRecord(sublevel: string, key: string): FhirError {
  return decryptError(new Error(`${sublevel} ${key}: the stored record is not valid JSON`));
}

/** A head or version record by key; one that does not decode is damagedRecord, naming it. */
function recordAt(level: Sublevel<VersionRecord>, name: string, key: string): VersionRecord | undefined {
  try {
    return level.getSync(key);
  } catch (err) {
    throw isDecodeError(err) ? damagedRecord(name, key) : err;
  }
}

export class Repository {
  private readonly db: Database;
  private readonly heads: Sublevel<VersionRecord>;
  private readonly versions: Sublevel<VersionRecord>;
  private readonly typeHistory: Sublevel<HistoryPointer>;
  private readonly systemHistory: Sublevel<HistoryPointer>;

  private readonly deps: RepositoryDeps;
  /** The search index (search-value / resource-entries sublevels), maintained in every version's batch. */
  readonly index: SearchIndex;
  readonly search: SearchEngine;
  /** Index entries of versions prepared but not yet committed (a transaction writing one resource twice). */
  private readonly pendingEntries = new WeakMap<VersionRecord, IndexEntry[]>();

  constructor(db: Database, deps: RepositoryDeps) {
    this.db = db;
    this.deps = deps;
    this.index = new SearchIndex(db);
    this.search = new SearchEngine(this, deps.baseUrl, this.indexHash);
    this.heads = jsonSublevel(db, SUBLEVELS.head);
    this.versions = jsonSublevel(db, SUBLEVELS.version);
    this.typeHistory = jsonSublevel(db, SUBLEVELS.typeHistory);
    this.systemHistory = jsonSublevel(db, SUBLEVELS.systemHistory);
  }

  get validator(): Validator {
    return this.deps.validator;
  }

  // Point lookups use LevelDB's synchronous get: a head record is small and usually in LevelDB's cache, and the
  // thread-pool round trip of an async get cost more than the lookup itself on the hot read path.
  async head(resourceType: string, id: string): Promise<VersionRecord | undefined> {
    return recordAt(this.heads, SUBLEVELS.head, `${resourceType}/${id}`);
  }

  async version(resourceType: string, id: string, versionId: number): Promise<VersionRecord | undefined> {
    return recordAt(this.versions, SUBLEVELS.version, versionKey(resourceType, id, versionId));
  }

  /** Decrypts a stored version (block fetched from IPFS and verified against its CID first). */
  async open(record: VersionRecord): Promise<Uint8Array> {
    return this.deps.sealed.open(sealedAddress(record));
  }

  /** Decrypts a stored version and parses it. */
  async openResource(record: VersionRecord): Promise<Resource> {
    return parseStored(await this.open(record));
  }

  /** Decrypts several stored versions, in order, their blocks fetched together (a search or history page). */
  async openMany(records: VersionRecord[]): Promise<Uint8Array[]> {
    return this.deps.sealed.openMany(records.map(sealedAddress));
  }

  /**
   * Ids of the current, non-deleted resources of a type matching a FHIR search query (`_id`, every parameter type,
   * modifiers, prefixes, chains, `_has`); 400 FhirError on unknown parameters or malformed values. Result
   * parameters (`_sort`, `_count`, …) other than `limit` are not applied here. For conditional interactions.
   */
  async findIds(resourceType: string, query: Record<string, string[]>, options?: FindOptions): Promise<string[]> {
    return this.search.findIds(resourceType, query, options);
  }

  /** The index entries a version will have, and the ops that replace the previous version's entries with them. */
  private async searchOps(resourceType: string, id: string, previous: VersionRecord | undefined, after: IndexEntry[]): Promise<BatchOp[]> {
    let before: IndexEntry[] = [];
    if (previous && !previous.deleted) before = this.pendingEntries.get(previous) ?? (await this.index.entriesOf(resourceType, id));
    return this.index.ops(resourceType, id, before, after);
  }

  /** Index values that could identify a person are stored as this keyed hash (docs/storage.md, search index). */
  get indexHash(): IndexHash {
    return this.deps.indexHash;
  }

  /**
   * Plaintext index entries of a stored version (decrypted): for `:contains`, `:text`, prefixes the index only
   * narrows, and sorting by text. `codes`: only these parameters' entries (the others are not evaluated).
   */
  async plainEntries(record: VersionRecord, codes?: ReadonlySet<string>): Promise<IndexEntry[]> {
    const resource = await this.openResource(record);
    return extractEntries(resource, { ...(this.deps.baseUrl ? { baseUrl: this.deps.baseUrl } : {}), ...(codes ? { codes } : {}) });
  }

  /** The query as the ledger records it: parameter names in clear, values as keyed hashes (docs/ledger.md). */
  auditQuery(query: Record<string, string[]>): string {
    return protectQuery(query, this.deps.contentHash);
  }

  /** Index entries of a resource as stored: extracted, then sealed (used by prepare and by reindex). */
  entriesFor(resource: Resource): IndexEntry[] {
    return indexEntriesOf(this.deps, resource);
  }

  /** Current heads of many resources of one type, in the order asked (undefined where unknown). */
  async headsOf(resourceType: string, ids: string[]): Promise<Array<VersionRecord | undefined>> {
    if (ids.length === 0) return [];
    const keys = ids.map((id) => `${resourceType}/${id}`);
    try {
      return await this.heads.getMany(keys);
    } catch (err) {
      if (!isDecodeError(err)) throw err;
      // abstract-level names no key: read them again as strings to say which record is damaged
      const texts = await stringSublevel(this.db, SUBLEVELS.head).getMany(keys);
      const at = texts.findIndex((text) => parseJsonRecord(text) === NOT_JSON);
      throw damagedRecord(SUBLEVELS.head, at < 0 ? `(one of ${keys.length} keys from ${keys[0]})` : keys[at]!);
    }
  }

  /**
   * How many of a source's resources (all of a type, or those with one exact value) are current and existed at
   * ledger index `at` (a search's point in time), without reading them: the source's index keys, less those of
   * resources first created after `at`, all read from one LevelDB snapshot.
   */
  async countAt(source: IdSource, at: number): Promise<number> {
    const type = source.type;
    const snapshot = this.db.snapshot();
    try {
      let total = await this.index.countIds(source, snapshot);
      const created = new Set<string>();
      for await (const pointer of this.typeHistory.values({ gt: `${type}/${pad(at)}`, lt: `${type}/\xff`, snapshot })) {
        if (pointer.versionId === 1) created.add(pointer.id);
      }
      if (created.size > 0) {
        const ids = [...created];
        const [heads, held] = await Promise.all([
          this.heads.getMany(ids.map((id) => `${type}/${id}`), { snapshot }),
          this.index.holdsIds(source, ids, snapshot),
        ]);
        heads.forEach((head, i) => {
          if (held[i] && head && !head.deleted) total--;
        });
      }
      return total;
    } finally {
      await snapshot.close();
    }
  }

  /** Every version head (including deletions), in key order: what reindex walks. */
  allHeads(): AsyncIterable<VersionRecord> {
    return this.heads.values();
  }

  /**
   * A type's resources as they stood at ledger index `at` (a bulk export's point in time), all read from one
   * LevelDB snapshot, each in its version of that moment (so a later update does not show). First the current
   * resources in id order (the type's `_id` entries), then those deleted since `at`, which those entries no longer
   * list: found among the type's versions written after `at` (type history), so that pass holds only the ids
   * changed since. Memory stays bounded by a chunk plus those ids, whatever the type's size.
   * With `ids`: only those resources (current or deleted since), in the order given.
   */
  async *versionsAt(type: string, at: number, ids?: readonly string[]): AsyncGenerator<VersionRecord> {
    const snapshot = this.db.snapshot();
    try {
      // The version current at `at`, stepping back from the head (none: created since, or a deletion then).
      const asOf = async (head: VersionRecord): Promise<VersionRecord | undefined> => {
        let record: VersionRecord | undefined = head;
        for (let v = head.versionId - 1; record && record.t > at; v--) {
          record = v >= 1 ? await this.versions.get(versionKey(type, head.id, v), { snapshot }) : undefined;
        }
        return record && !record.deleted ? record : undefined;
      };
      // deleted: only heads that are deletions (true) or that are not (false); undefined: either
      const resolve = async (ids: readonly string[], deleted?: boolean): Promise<VersionRecord[]> => {
        const heads = await this.heads.getMany(ids.map((id) => `${type}/${id}`), { snapshot });
        const out: VersionRecord[] = [];
        for (const head of heads) {
          if (!head || (deleted !== undefined && (head.deleted === true) !== deleted)) continue;
          const record = await asOf(head);
          if (record) out.push(record);
        }
        return out;
      };
      if (ids) {
        for (let i = 0; i < ids.length; i += 256) yield* await resolve(ids.slice(i, i + 256));
        return;
      }
      let chunk: string[] = [];
      for await (const id of this.index.idsFrom({ type }, { snapshot })) {
        chunk.push(id);
        if (chunk.length === 256) {
          yield* await resolve(chunk, false);
          chunk = [];
        }
      }
      if (chunk.length) yield* await resolve(chunk, false);
      const changed = [...(await this.changedSince(type, at, snapshot))];
      for (let i = 0; i < changed.length; i += 256) yield* await resolve(changed.slice(i, i + 256), true);
    } finally {
      await snapshot.close();
    }
  }

  /** Ids of a type's resources with a version written after ledger index `at` (type history): changed since. */
  async changedSince(type: string, at: number, snapshot?: ReturnType<Database['snapshot']>): Promise<Set<string>> {
    const changed = new Set<string>();
    for await (const pointer of this.typeHistory.values({ gt: `${type}/${pad(at)}`, lt: `${type}/\xff`, ...(snapshot ? { snapshot } : {}) })) changed.add(pointer.id);
    return changed;
  }

  /** Ledger index of the newest committed version (-1 for an empty node): a search's point in time. */
  async latestT(): Promise<number> {
    for await (const key of this.systemHistory.keys({ reverse: true, limit: 1 })) return Number(key);
    return -1;
  }

  /**
   * A new server-assigned id (random UUID). Remembered until its resource is prepared: nothing can be stored under
   * it, so a Patient created with it skips the lookup of its (certainly missing) key-encryption key.
   */
  newId(): string {
    const id = randomUUID();
    // ids given out but never used (a failed transaction) must not pile up; a forgotten one only costs the lookup
    if (this.issued.size >= ISSUED_IDS) this.issued.clear();
    this.issued.add(id);
    return id;
  }
  private readonly issued = new Set<string>();

  /**
   * Validates, stamps meta, seals and stages a new version (or a deletion marker when `resource` is undefined).
   * `previous` is the current head, read by the caller under the resource lock.
   */
  async prepare(args: {
    resourceType: string;
    id: string;
    resource: Resource | undefined;
    method: WriteMethod;
    previous: VersionRecord | undefined;
    allowConditionalReferences?: boolean;
  }): Promise<PreparedVersion> {
    const { resourceType, id, method, previous } = args;
    const versionId = (previous?.versionId ?? 0) + 1;
    const lastUpdated = new Date().toISOString();
    const reference = `${resourceType}/${id}`;
    if (args.resource === undefined) {
      const record: VersionRecord = { resourceType, id, versionId, lastUpdated, method, t: -1, deleted: true };
      if (previous?.patient) record.patient = previous.patient;
      const entity: EntityRef = { reference, version: String(versionId) };
      if (record.patient) entity.patient = `Patient/${record.patient}`;
      const searchOps = await this.searchOps(resourceType, id, previous, []);
      this.pendingEntries.set(record, []);
      return { record, entity, ops: (appended) => [...this.indexOps(record, appended), ...searchOps] };
    }

    const resource = { ...args.resource, id } as Resource;
    resource.meta = { ...(resource.meta ?? {}), versionId: String(versionId), lastUpdated };
    const { plaintext, patient, entries } = await this.deps.analyzer.analyze(resource, {
      expectedType: resourceType,
      expectedId: id,
      allowConditionalReferences: args.allowConditionalReferences ?? false,
    });
    // one use only: once this version is staged, its KEK is pending or stored and must be looked up again
    const freshKek = this.issued.delete(id) && resourceType === 'Patient' && patient === id;
    const searchOps = await this.searchOps(resourceType, id, previous, entries);
    const { sealed, ops: blockOps } = await this.deps.sealed.seal({
      resourceType,
      id,
      versionId: String(versionId),
      plaintext,
      kek: patient ? `patient/${patient}` : 'node',
      freshKek,
      lastUpdated,
      method,
    });
    const record: VersionRecord = { resourceType, id, versionId, lastUpdated, method, t: -1, ...sealed };
    if (patient) record.patient = patient;
    const entity: EntityRef = { reference, version: String(versionId), cid: sealed.cid, hmac: sealed.hmac };
    if (patient) entity.patient = `Patient/${patient}`;
    this.pendingEntries.set(record, entries);
    return { record, plaintext, resource, entity, ops: (appended) => [...blockOps, ...this.indexOps(record, appended), ...searchOps] };
  }

  private indexOps(record: VersionRecord, appended: Appended): BatchOp[] {
    record.t = appended.seq;
    const pointer: HistoryPointer = { resourceType: record.resourceType, id: record.id, versionId: record.versionId };
    return [
      { type: 'put', sublevel: this.heads, key: `${record.resourceType}/${record.id}`, value: record },
      { type: 'put', sublevel: this.versions, key: versionKey(record.resourceType, record.id, record.versionId), value: record },
      { type: 'put', sublevel: this.typeHistory, key: `${record.resourceType}/${pad(appended.seq)}`, value: pointer },
      { type: 'put', sublevel: this.systemHistory, key: pad(appended.seq), value: pointer },
    ] as BatchOp[];
  }

  /**
   * Whether each version brought its resource into existence, which is what its write answered 201 for: a create
   * (POST), or a PUT of an id never written before (version 1) or whose previous version is a deletion.
   */
  async createdBy(records: VersionRecord[]): Promise<boolean[]> {
    const revived = records.filter((r) => r.method === 'PUT' && r.versionId > 1);
    const previous = revived.length ? await this.versions.getMany(revived.map((r) => versionKey(r.resourceType, r.id, r.versionId - 1))) : [];
    const afterDeletion = new Set(revived.filter((_, i) => previous[i]?.deleted === true));
    return records.map((r) => !r.deleted && (r.method === 'POST' || (r.method === 'PUT' && (r.versionId === 1 || afterDeletion.has(r)))));
  }

  /** Versions of one resource, newest first. `before` is the version number to continue below. */
  async historyInstance(resourceType: string, id: string, page: { count: number; before?: number; since?: string }): Promise<HistoryPage> {
    const prefix = `${resourceType}/${id}/`;
    const upper = page.before === undefined ? `${prefix}\xff` : versionKey(resourceType, id, page.before);
    const records: VersionRecord[] = [];
    for await (const record of this.versions.values({ gte: prefix, lt: upper, reverse: true, limit: page.count + 1 })) {
      if (page.since && record.lastUpdated < page.since) break;
      records.push(record);
    }
    return pageOf(records, page.count, (r) => r.versionId);
  }

  /** Versions of all resources of a type (or of all types), newest first. `before` is a ledger index cursor. */
  async history(resourceType: string | undefined, page: { count: number; before?: number; since?: string }): Promise<HistoryPage> {
    const store = resourceType ? this.typeHistory : this.systemHistory;
    const prefix = resourceType ? `${resourceType}/` : '';
    const upper = page.before === undefined ? `${prefix}\xff` : `${prefix}${pad(page.before)}`;
    const pointers: HistoryPointer[] = [];
    for await (const pointer of store.values({ gte: prefix, lt: upper, reverse: true, limit: page.count + 1 })) pointers.push(pointer);
    const found = await this.versions.getMany(pointers.map((p) => versionKey(p.resourceType, p.id, p.versionId)));
    const records: VersionRecord[] = [];
    for (const record of found) {
      if (!record) continue;
      if (page.since && record.lastUpdated < page.since) break;
      records.push(record);
    }
    return pageOf(records, page.count, (r) => r.t);
  }
}

function pageOf(records: VersionRecord[], count: number, cursorOf: (r: VersionRecord) => number): HistoryPage {
  if (records.length <= count) return { records };
  const shown = records.slice(0, count);
  return { records: shown, next: cursorOf(shown[shown.length - 1]!) };
}

/** What the sealed store needs to open a version; a deletion or a record without its key material has no content. */
function sealedAddress(record: VersionRecord): SealedAddress {
  if (record.deleted || !record.cid || !record.kek || !record.wrappedKey || !record.hmac) {
    throw new Error(`version ${record.resourceType}/${record.id}/${record.versionId} has no content`);
  }
  return {
    resourceType: record.resourceType,
    id: record.id,
    versionId: String(record.versionId),
    cid: record.cid,
    kek: record.kek,
    wrappedKey: record.wrappedKey,
    hmac: record.hmac,
    lastUpdated: record.lastUpdated,
    method: record.method,
  };
}
