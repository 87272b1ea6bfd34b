/**
 * The search index's two LevelDB sublevels (docs/storage.md, "search index"), after Blaze's
 * SearchParamValueResource / ResourceSearchParamValue pair:
 *   search-value      `<Type>/<code>/<value>\x00<id>`  → ''   value → resource: range and prefix scans
 *   resource-entries  `<Type>/<id>`                    → packed entries   resource → values: point checks, sort
 *                                                                           keys, `:missing`, removal
 *   resource-ranges   `<Type>/<id>`                    → packed entries   the same, date/number/quantity entries
 *                                                                           only: range tests and sort keys
 * Entry codes of a parameter that repeats another's expression are read under the other's code (indexCodeOf).
 * The resource side is one record per resource rather than one key per entry: a create writes one key there
 * instead of ~100, and every per-resource question is answered by one point read.
 * A range filter or a sort by date checks every candidate's values: a Synthea Observation's whole record is ~5 KB,
 * its date entries ~100 bytes, so those are read from the small `resource-ranges` copy (absent when a resource has
 * no such values, or in a store written before it: then the full record answers).
 * All are derived data: written in the same batch as the version they describe, rebuilt by `npm run reindex`.
 */
import type { BatchOp, Database, Sublevel } from '../../storage/db.ts';
import { PRESENT_TEXT, stringSublevel, SUBLEVELS } from '../../storage/db.ts';
import type { Condition } from './conditions.ts';
import { presenceCodes, type IndexEntry } from './extract.ts';
import { indexCodeOf, paramsOf } from './registry.ts';

const HIGH = '\u{10FFFF}';

/** A `search-value` key: `<Type>/<stored code>/<value>\x00<id>` (docs/storage.md). */
const valueKey = (type: string, code: string, value: string, id: string) => `${type}/${code}/${value}\x00${id}`;

/**
 * Index keys that end in the id they stand for, so key order is id order: all of a type (its `_id` entries), or
 * the resources with one exact value of one parameter (`<Type>/<code>/<value>\x00<id>`).
 */
export interface IdSource {
  type: string;
  /** With `value`: the parameter's code, as a search condition names it. */
  code?: string;
  value?: string;
}

/**
 * A source's key range and the key of each id in it. Ids never contain a character below `-`, so in both layouts
 * key order is id order: `_id` keys are `<id>\x00<id>` (only the entry whose value is the id itself counts),
 * value keys `<value>\x00<id>`.
 */
function keysOf(source: IdSource): { prefix: string; keyOf: (id: string) => string; idOf: (key: string) => string | undefined } {
  if (source.code === undefined || source.value === undefined) {
    const prefix = `${source.type}/_id/`;
    return {
      prefix,
      keyOf: (id) => valueKey(source.type, '_id', id, id),
      idOf: (key) => {
        const sep = key.lastIndexOf('\x00');
        return key.slice(prefix.length, sep) === key.slice(sep + 1) ? key.slice(sep + 1) : undefined;
      },
    };
  }
  const prefix = valueKey(source.type, indexCodeOf(source.type, source.code), source.value, '');
  return { prefix, keyOf: (id) => prefix + id, idOf: (key) => key.slice(prefix.length) };
}

/** Where idsFrom starts and which way it goes. */
export interface IdRange {
  from?: string;
  inclusive?: boolean;
  descending?: boolean;
  snapshot?: object;
  /** Keys read per step (default 1,000): fewer where only the first id is wanted. */
  batch?: number;
}
/**
 * Separators of a packed record: `\x1e<code>\x1f<value>\x1e<code>\x1f<value>\x1e`. Neither can occur in a code
 * or a value (extract.ts replaces every control character in values), so a substring test is a membership test.
 */
const REC = '\x1e';
const SEP = '\x1f';

/** Up to this many exact values per candidate are checked as point reads of their keys (matchesExact). */
const KEY_LOOKUPS_PER_CANDIDATE = 8;
const CONTROL = /[\x00-\x1f]/;

/** Packed records read during one search, by `Type/id`: a record checked by a filter is not read again to sort. */
export type ValuesCache = Map<string, Promise<string | undefined>>;

/** Parameter types whose values are range-encoded: what range filters test and `_sort` reads besides strings and tokens. */
const RANGE_TYPES = new Set(['date', 'number', 'quantity']);
/** Per type, per entry code: asked for each of a resource's ~100 entries on every write, so no key is built per call. */
const rangeCodes = new Map<string, Map<string, boolean>>();

/** Whether an entry code (`date`, `date:hi`, …) holds a date, number or quantity parameter's values. */
export function isRangeCode(type: string, code: string): boolean {
  let codes = rangeCodes.get(type);
  if (codes === undefined) rangeCodes.set(type, (codes = new Map()));
  let found = codes.get(code);
  if (found === undefined) {
    const colon = code.indexOf(':');
    found = RANGE_TYPES.has(paramsOf(type).get(colon < 0 ? code : code.slice(0, colon))?.type ?? '');
    codes.set(code, found);
  }
  return found;
}

/** Whether a filter's conditions are all answered by range records (a date, number or quantity parameter). */
export function readsRanges(type: string, conditions: Condition[]): boolean {
  return conditions.length > 0 && conditions.every((c) => isRangeCode(type, indexCodeOf(type, c.code)));
}

/** The range entries of a resource, packed, or undefined when it has none. */
function packRanges(type: string, entries: IndexEntry[]): string | undefined {
  const ranges = entries.filter((e) => isRangeCode(type, e.code));
  return ranges.length ? packEntries(ranges) : undefined;
}

export function packEntries(entries: IndexEntry[]): string {
  let out = REC;
  for (const e of entries) out += `${e.code}${SEP}${e.value}${REC}`;
  return out;
}

export function unpackEntries(packed: string | undefined): IndexEntry[] {
  if (!packed) return [];
  const out: IndexEntry[] = [];
  let start = 1;
  while (start < packed.length) {
    const end = packed.indexOf(REC, start);
    const sep = packed.indexOf(SEP, start);
    out.push({ code: packed.slice(start, sep), value: packed.slice(sep + 1, end) });
    start = end + 1;
  }
  return out;
}

/** Every value a packed record holds under one entry code. */
export function packedValues(packed: string | undefined, code: string): string[] {
  if (!packed) return [];
  const needle = `${REC}${code}${SEP}`;
  const out: string[] = [];
  for (let i = packed.indexOf(needle); i >= 0; ) {
    const start = i + needle.length;
    const end = packed.indexOf(REC, start);
    out.push(packed.slice(start, end));
    i = packed.indexOf(needle, end);
  }
  return out;
}

/** A searched value holding a separator is in no record (stored values never do): it must not match across entries. */
const packedHas = (packed: string | undefined, code: string, value: string) =>
  packed !== undefined && !value.includes(REC) && !value.includes(SEP) && packed.includes(`${REC}${code}${SEP}${value}${REC}`);

export class SearchIndex {
  readonly valueIndex: Sublevel<string>;
  readonly resourceIndex: Sublevel<string>;
  readonly rangeIndex: Sublevel<string>;
  /** The layout before packed records; never written, cleared by reindex. */
  readonly legacyResourceIndex: Sublevel<string>;

  constructor(db: Database) {
    this.valueIndex = stringSublevel(db, SUBLEVELS.searchValue);
    this.resourceIndex = stringSublevel(db, SUBLEVELS.resourceEntries);
    this.rangeIndex = stringSublevel(db, SUBLEVELS.resourceRanges);
    this.legacyResourceIndex = stringSublevel(db, SUBLEVELS.legacyResourceValue);
  }

  private record(type: string, id: string, cache?: ValuesCache): Promise<string | undefined> {
    if (!cache) return this.resourceIndex.get(`${type}/${id}`);
    const key = `${type}/${id}`;
    let found = cache.get(key);
    if (!found) cache.set(key, (found = this.resourceIndex.get(key)));
    return found;
  }

  /** The record that holds a code's values: the small range record for range codes, when the resource has one. */
  private async recordFor(type: string, id: string, code: string, cache?: ValuesCache): Promise<string | undefined> {
    if (!isRangeCode(type, code)) return this.record(type, id, cache);
    const key = `~${type}/${id}`;
    let found = cache?.get(key);
    if (!found) {
      found = this.rangeIndex.get(`${type}/${id}`);
      cache?.set(key, found);
    }
    return (await found) ?? this.record(type, id, cache);
  }

  /**
   * Reads the range records of many resources in one `getMany` into the search's cache, before a range filter or
   * a sort reads them one by one: one call into LevelDB instead of a promise and a thread-pool task per record.
   */
  async prefetchRanges(type: string, ids: string[], cache: ValuesCache): Promise<void> {
    const todo = ids.filter((id) => !cache.has(`~${type}/${id}`));
    if (todo.length < 2) return;
    const found = await this.rangeIndex.getMany(todo.map((id) => `${type}/${id}`));
    todo.forEach((id, i) => cache.set(`~${type}/${id}`, Promise.resolve(found[i])));
  }

  /** The entries stored for one resource (its current version's). */
  async entriesOf(type: string, id: string): Promise<IndexEntry[]> {
    return unpackEntries(await this.record(type, id));
  }

  /** Batch ops that turn the stored entries `before` of a resource into `after` (only the difference is written). */
  ops(type: string, id: string, before: IndexEntry[], after: IndexEntry[]): BatchOp[] {
    const ops: BatchOp[] = [];
    const record = `${type}/${id}`;
    if (before.length === 0) {
      // a create: nothing to compare (the common case, kept free of the sets below)
      for (const e of after) ops.push({ type: 'put', sublevel: this.valueIndex, key: valueKey(type, e.code, e.value, id), value: PRESENT_TEXT } as BatchOp);
      if (after.length) ops.push({ type: 'put', sublevel: this.resourceIndex, key: record, value: packEntries(after) } as BatchOp);
      const ranges = packRanges(type, after);
      if (ranges) ops.push({ type: 'put', sublevel: this.rangeIndex, key: record, value: ranges } as BatchOp);
      return ops;
    }
    const key = (e: IndexEntry) => `${e.code}/${e.value}`;
    const old = new Set(before.map(key));
    const now = new Set(after.map(key));
    let changed = before.length !== after.length;
    for (const e of before) {
      if (now.has(key(e))) continue;
      changed = true;
      ops.push({ type: 'del', sublevel: this.valueIndex, key: valueKey(type, e.code, e.value, id) } as BatchOp);
    }
    for (const e of after) {
      if (old.has(key(e))) continue;
      changed = true;
      ops.push({ type: 'put', sublevel: this.valueIndex, key: valueKey(type, e.code, e.value, id), value: PRESENT_TEXT } as BatchOp);
    }
    if (!changed) return ops;
    if (after.length === 0) ops.push({ type: 'del', sublevel: this.resourceIndex, key: record } as BatchOp);
    else ops.push({ type: 'put', sublevel: this.resourceIndex, key: record, value: packEntries(after) } as BatchOp);
    const ranges = packRanges(type, after);
    if (ranges) ops.push({ type: 'put', sublevel: this.rangeIndex, key: record, value: ranges } as BatchOp);
    else ops.push({ type: 'del', sublevel: this.rangeIndex, key: record } as BatchOp);
    return ops;
  }

  /** Ids of resources of `type` with a value satisfying `c`, in value order (an id may repeat). */
  async *scan(type: string, c: Condition): AsyncGenerator<{ id: string; value: string }> {
    const prefix = `${type}/${indexCodeOf(type, c.code)}/`;
    for await (const key of this.valueIndex.keys({ gte: prefix + c.lower, lt: prefix + c.upper })) {
      const sep = key.lastIndexOf('\x00');
      const value = key.slice(prefix.length, sep);
      if (c.test(value)) yield { id: key.slice(sep + 1), value };
    }
  }

  /** Every value one resource has for an entry code. */
  async valuesOf(type: string, id: string, code: string, cache?: ValuesCache): Promise<string[]> {
    const stored = indexCodeOf(type, code);
    return packedValues(await this.recordFor(type, id, stored, cache), stored);
  }

  /** Whether one resource satisfies one of the conditions (one point read). */
  async matches(type: string, id: string, conditions: Condition[], cache?: ValuesCache): Promise<boolean> {
    const packed = await (readsRanges(type, conditions) ? this.recordFor(type, id, indexCodeOf(type, conditions[0]!.code), cache) : this.record(type, id, cache));
    if (packed === undefined) return false;
    for (const c of conditions) {
      const code = indexCodeOf(type, c.code);
      if (c.exact !== undefined) {
        if (packedHas(packed, code, c.exact)) return true;
      } else if (packedValues(packed, code).some((v) => c.test(v))) return true;
    }
    return false;
  }

  /**
   * For many resources at once: which have one of the exact values (one batched read). A few values are looked up
   * as their `search-value` keys (`<Type>/<code>/<value>\x00<id>`): point reads that LevelDB's Bloom filters
   * mostly answer without reading a block. Many values (a resolved chain's hundreds of references) are looked for
   * in the candidates' packed records instead, read once each, whatever the number of values.
   */
  async matchesExact(type: string, ids: string[], conditions: Condition[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const wanted = conditions.map((c) => ({ code: indexCodeOf(type, c.code), value: c.exact! }));
    if (wanted.length <= KEY_LOOKUPS_PER_CANDIDATE) {
      // stored values hold no control characters (extract.ts), so a searched one that does matches nothing
      const values = wanted.filter(({ value }) => !CONTROL.test(value));
      if (values.length === 0) return ids.map(() => false);
      const keys: string[] = [];
      for (const id of ids) for (const { code, value } of values) keys.push(valueKey(type, code, value, id));
      const found = await this.valueIndex.getMany(keys);
      return ids.map((_, i) => {
        for (let j = 0; j < values.length; j++) if (found[i * values.length + j] !== undefined) return true;
        return false;
      });
    }
    const found = await this.resourceIndex.getMany(ids.map((id) => `${type}/${id}`));
    return found.map((packed) => wanted.some(({ code, value }) => packedHas(packed, code, value)));
  }

  /** Whether a resource has any value for a parameter (`:missing`): a reference's `:identifier` entries count too. */
  async hasAny(type: string, id: string, code: string): Promise<boolean> {
    const packed = await this.record(type, id);
    return packed !== undefined && presenceCodes(code).some((c) => packed.includes(`${REC}${indexCodeOf(type, c)}${SEP}`));
  }

  /** Ids of every indexed resource of a type, in id order (each has an `_id` entry). */
  allIds(type: string): AsyncGenerator<string> {
    return this.idsFrom({ type });
  }

  /**
   * A source's ids in id order, or reversed, from just after (or at, `inclusive`) the id `from`; `snapshot`: as of
   * an explicit LevelDB snapshot.
   */
  async *idsFrom(source: IdSource, options: IdRange = {}): AsyncGenerator<string> {
    for await (const ids of this.#idBatches(source, options)) yield* ids;
  }

  /** How many ids a source holds (keys only, no records read). */
  async countIds(source: IdSource, snapshot?: object): Promise<number> {
    let n = 0;
    for await (const ids of this.#idBatches(source, snapshot ? { snapshot } : {})) n += ids.length;
    return n;
  }

  /** Which of `ids` a source holds (one batched read). */
  async holdsIds(source: IdSource, ids: string[], snapshot?: object): Promise<boolean[]> {
    const keys = keysOf(source);
    const found = await this.valueIndex.getMany(ids.map(keys.keyOf), (snapshot ? { snapshot } : {}) as never);
    return found.map((value) => value !== undefined);
  }

  /** Read a thousand keys at a time (`nextv`): half the time of one iterator step per key over a type's 37k keys. */
  async *#idBatches(source: IdSource, options: IdRange): AsyncGenerator<string[]> {
    const { prefix, keyOf, idOf } = keysOf(source);
    const range: { gt?: string; gte?: string; lt?: string; lte?: string; reverse: boolean; snapshot?: object } = { reverse: options.descending === true };
    if (options.snapshot) range.snapshot = options.snapshot;
    const bound = options.from === undefined ? undefined : keyOf(options.from);
    if (bound === undefined || options.descending) range.gte = prefix;
    else if (options.inclusive) range.gte = bound;
    else range.gt = bound;
    if (bound === undefined || !options.descending) range.lt = prefix + HIGH;
    else if (options.inclusive) range.lte = bound;
    else range.lt = bound;
    const keys = this.valueIndex.keys(range as never);
    try {
      for (;;) {
        const batch = await keys.nextv(options.batch ?? 1000);
        if (batch.length === 0) return;
        const ids: string[] = [];
        for (const key of batch) {
          const id = idOf(key);
          if (id !== undefined) ids.push(id);
        }
        if (ids.length > 0) yield ids;
      }
    } finally {
      await keys.close();
    }
  }
}
