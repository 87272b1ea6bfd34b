/**
 * The search index's two LevelDB sublevels (docs/storage.md, "search index"), after Blaze's
 * SearchParamValueResource / ResourceSearchParamValue pair:
 *   search-value    `<Type>/<code>/<value>\x00<id>`  → ''   value → resource: range and prefix scans
 *   resource-value  `<Type>/<id>/<code>/<value>`     → ''   resource → value: point checks, sort keys, removal
 * Both are derived data: written in the same batch as the version they describe, rebuilt by `npm run reindex`.
 */
import type { BatchOp, Database, Sublevel } from '../../storage/db.ts';
import { stringSublevel, SUBLEVELS } from '../../storage/db.ts';
import type { Condition } from './conditions.ts';
import type { IndexEntry } from './extract.ts';

const HIGH = '\u{10FFFF}';

/** Values read during one search, by `Type/id/code`: a value checked by a filter is not read again to sort. */
export type ValuesCache = Map<string, Promise<string[]>>;

export class SearchIndex {
  readonly valueIndex: Sublevel<string>;
  readonly resourceIndex: Sublevel<string>;

  constructor(db: Database) {
    this.valueIndex = stringSublevel(db, SUBLEVELS.searchValue);
    this.resourceIndex = stringSublevel(db, SUBLEVELS.resourceValue);
  }

  /** The entries stored for one resource (its current version's). */
  async entriesOf(type: string, id: string): Promise<IndexEntry[]> {
    const prefix = `${type}/${id}/`;
    const out: IndexEntry[] = [];
    for await (const key of this.resourceIndex.keys({ gte: prefix, lt: prefix + HIGH })) {
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      out.push({ code: rest.slice(0, slash), value: rest.slice(slash + 1) });
    }
    return out;
  }

  /** Batch ops that turn the stored entries `before` of a resource into `after` (only the difference is written). */
  ops(type: string, id: string, before: IndexEntry[], after: IndexEntry[]): BatchOp[] {
    const key = (e: IndexEntry) => `${e.code}/${e.value}`;
    const old = new Set(before.map(key));
    const now = new Set(after.map(key));
    const ops: BatchOp[] = [];
    for (const e of before) {
      if (now.has(key(e))) continue;
      ops.push({ type: 'del', sublevel: this.valueIndex, key: `${type}/${e.code}/${e.value}\x00${id}` } as BatchOp);
      ops.push({ type: 'del', sublevel: this.resourceIndex, key: `${type}/${id}/${e.code}/${e.value}` } as BatchOp);
    }
    for (const e of after) {
      if (old.has(key(e))) continue;
      ops.push({ type: 'put', sublevel: this.valueIndex, key: `${type}/${e.code}/${e.value}\x00${id}`, value: '' } as BatchOp);
      ops.push({ type: 'put', sublevel: this.resourceIndex, key: `${type}/${id}/${e.code}/${e.value}`, value: '' } as BatchOp);
    }
    return ops;
  }

  /** Ids of resources of `type` with a value satisfying `c`, in value order (an id may repeat). */
  async *scan(type: string, c: Condition): AsyncGenerator<{ id: string; value: string }> {
    const prefix = `${type}/${c.code}/`;
    for await (const key of this.valueIndex.keys({ gte: prefix + c.lower, lt: prefix + c.upper })) {
      const sep = key.lastIndexOf('\x00');
      const value = key.slice(prefix.length, sep);
      if (c.test(value)) yield { id: key.slice(sep + 1), value };
    }
  }

  /** Every value one resource has for an entry code. */
  async valuesOf(type: string, id: string, code: string, cache?: ValuesCache): Promise<string[]> {
    if (cache) {
      const key = `${type}/${id}/${code}`;
      let found = cache.get(key);
      if (!found) cache.set(key, (found = this.valuesOf(type, id, code)));
      return found;
    }
    const prefix = `${type}/${id}/${code}/`;
    const out: string[] = [];
    for await (const key of this.resourceIndex.keys({ gte: prefix, lt: prefix + HIGH })) out.push(key.slice(prefix.length));
    return out;
  }

  /** Whether one resource satisfies one of the conditions (a point read for exact ones, else a short scan). */
  async matches(type: string, id: string, conditions: Condition[], cache?: ValuesCache): Promise<boolean> {
    const exacts = conditions.filter((c) => c.exact !== undefined);
    if (exacts.length) {
      const found = await this.resourceIndex.getMany(exacts.map((c) => `${type}/${id}/${c.code}/${c.exact}`));
      if (found.some((v) => v !== undefined)) return true;
    }
    const ranges = conditions.filter((c) => c.exact === undefined);
    const byCode = new Map<string, Condition[]>();
    for (const c of ranges) byCode.set(c.code, [...(byCode.get(c.code) ?? []), c]);
    for (const [code, cs] of byCode) {
      for (const value of await this.valuesOf(type, id, code, cache)) if (cs.some((c) => c.test(value))) return true;
    }
    return false;
  }

  /** For many resources at once: which have one of the exact values (one batched read). */
  async matchesExact(type: string, ids: string[], conditions: Condition[]): Promise<boolean[]> {
    const keys = ids.flatMap((id) => conditions.map((c) => `${type}/${id}/${c.code}/${c.exact}`));
    const found = keys.length ? await this.resourceIndex.getMany(keys) : [];
    return ids.map((_, i) => found.slice(i * conditions.length, (i + 1) * conditions.length).some((v) => v !== undefined));
  }

  /** Whether a resource has any value for a parameter (`:missing`). */
  async hasAny(type: string, id: string, code: string): Promise<boolean> {
    const prefix = `${type}/${id}/${code}/`;
    for await (const _ of this.resourceIndex.keys({ gte: prefix, lt: prefix + HIGH, limit: 1 })) return true;
    return false;
  }

  /** Ids of every indexed resource of a type, in id order (each has an `_id` entry). */
  async *allIds(type: string): AsyncGenerator<string> {
    const prefix = `${type}/_id/`;
    for await (const key of this.valueIndex.keys({ gte: prefix, lt: prefix + HIGH })) {
      const sep = key.lastIndexOf('\x00');
      if (key.slice(prefix.length, sep) === key.slice(sep + 1)) yield key.slice(sep + 1);
    }
  }
}
