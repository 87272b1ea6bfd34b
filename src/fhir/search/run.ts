/**
 * Runs a parsed search to one page: matching ids (engine) → current heads, minus resources created after the
 * search's point in time → sort keys from `resource-entries` → the page around the cursor → `_include` /
 * `_revinclude` (with `:iterate`). Reads grow with the number of matches, not with the database; a search in id
 * order with no filter or one exact value reads only its page's rows off the index (idOrderedSource).
 */
import { exact } from './conditions.ts';
import type { SearchEngine } from './engine.ts';
import type { Filter, Include, ParsedSearch, SortKey } from './params.ts';
import { compareRows, decodeCursor, encodeCursor, slicePage, sortKeyOf, type Cursor, type PageSlice, type Row, type RowRank } from './paging.ts';
import { paramsOf } from './registry.ts';
import { r4PatientCompartment } from '../definitions.ts';
import type { Repository, VersionRecord } from '../repository.ts';
import { isRangeCode, type IdSource, type ValuesCache } from './index-store.ts';

export interface SearchPlan {
  /** Per resource type searched, the filters that apply to it (AND). */
  types: Array<{ type: string; filters: Filter[] }>;
  parsed: ParsedSearch;
  count: number;
  /** Order among rows of equal sort keys (default: by type name, then id); $everything puts its patient first. */
  rowRank?: RowRank;
}

export interface SearchOutcome {
  matches: VersionRecord[];
  included: VersionRecord[];
  /** Matches in all (absent when `_total=none` let a search skip counting them). */
  total?: number;
  /** Cursors (`_page` values) of the neighbouring pages and of this one. */
  next?: string;
  previous?: string;
  self?: string;
}

interface RowWithRecord extends Row {
  record: VersionRecord;
}

/** Include rounds for `:iterate` (R4 lets servers bound the recursion). */
const MAX_ITERATE = 4;
/** Most resources a page adds through _include / _revinclude. */
const MAX_INCLUDED = 1000;
/** Resources whose references are read concurrently. */
const CHECK_BATCH = 64;

export async function runSearch(repo: Repository, engine: SearchEngine, plan: SearchPlan): Promise<SearchOutcome> {
  const cursor = plan.parsed.page ? decodeCursor(plan.parsed.page) : undefined;
  const snapshot = cursor?.s ?? (await repo.latestT());
  const sort = plan.parsed.sort;
  const source = idOrderedSource(plan, cursor);
  let page: PageSlice<RowWithRecord>;
  let total: number | undefined;
  if (source) {
    page = await idOrderPage(repo, source, sort, plan.count, cursor, snapshot);
    if (plan.parsed.total !== 'none') total = await repo.countAt(source, snapshot);
  } else {
    const rows = await sortedMatches(repo, engine, plan, snapshot);
    page = slicePage(rows, sort, plan.count, cursor, plan.rowRank);
    total = rows.length;
  }
  const at = (d: Cursor['d'], row: RowWithRecord) => encodeCursor({ s: snapshot, d, k: row.keys, t: row.type, id: row.id });
  const outcome: SearchOutcome = { matches: page.rows.map((r) => r.record), included: [] };
  if (total !== undefined) outcome.total = total;
  const first = page.rows[0];
  const last = page.rows[page.rows.length - 1];
  if (page.hasNext && last) outcome.next = at('a', last);
  if (page.hasPrevious && first) outcome.previous = at('b', first);
  if (cursor) outcome.self = plan.parsed.page!;
  outcome.included = await includes(repo, outcome.matches, plan.parsed.include, plan.parsed.revinclude);
  return outcome;
}

/** Every match of every type, with its sort keys, sorted: what a page is cut from. */
async function sortedMatches(repo: Repository, engine: SearchEngine, plan: SearchPlan, snapshot: number): Promise<RowWithRecord[]> {
  const sort = plan.parsed.sort;
  const rows: RowWithRecord[] = [];
  for (const { type, filters } of plan.types) {
    const cache: ValuesCache = new Map();
    const ids = [...(await engine.matchIds(type, filters, 0, cache))];
    const heads = await repo.headsOf(type, ids);
    const visible = await Promise.all(heads.map((h) => visibleAt(repo, h, snapshot)));
    const kept = heads.filter((h, i): h is VersionRecord => visible[i] === true);
    if (sort.some((key) => key.type !== 'id' && isRangeCode(type, key.code))) {
      await repo.index.prefetchRanges(type, kept.map((h) => h.id), cache);
    }
    const keys = await Promise.all(kept.map((h) => sortKeys(repo, h, sort, cache)));
    kept.forEach((record, i) => rows.push({ id: record.id, type, keys: keys[i]!, record }));
  }
  return rows.sort((a, b) => compareRows(sort, a, b, plan.rowRank));
}

/**
 * Where a search's page can be read straight off the index in id order: a search of one type, in id order (no
 * sort, `_sort=_id` or `-_id`), with no filter (`GET Observation`: the type's `_id` entries) or with one exact
 * value the index decides alone (`Observation?status=final`: that value's keys). The page then costs its own rows
 * instead of every match (measured at 100k resources: ~1 s a page the general way, docs/benchmarks-search.md),
 * with the same rows, order and cursors as the general way.
 */
function idOrderedSource(plan: SearchPlan, cursor: Cursor | undefined): IdSource | undefined {
  const only = plan.types.length === 1 ? plan.types[0]! : undefined;
  if (!only) return undefined;
  const sort = plan.parsed.sort;
  if (sort.length > 1 || sort.some((key) => key.type !== 'id')) return undefined;
  if (cursor && (cursor.t !== only.type || cursor.k.length !== sort.length)) return undefined;
  if (only.filters.length === 0) return { type: only.type };
  const [filter] = only.filters;
  if (only.filters.length > 1 || filter!.kind !== 'match' || filter!.negate || filter!.conditions.length !== 1) return undefined;
  const [condition] = filter!.conditions;
  if (condition!.exact === undefined || condition!.lossy) return undefined;
  return { type: only.type, code: condition!.code, value: condition!.exact };
}

/** slicePage's page over a source's resources in id order, read from the index around the cursor. */
async function idOrderPage(
  repo: Repository, source: IdSource, sort: SortKey[], count: number, cursor: Cursor | undefined, snapshot: number,
): Promise<PageSlice<RowWithRecord>> {
  const type = source.type;
  const descending = sort[0]?.descending === true;
  // Ids from the cursor on, towards the end of the order (onward) or towards its start.
  const ids = (onward: boolean, inclusive: boolean) =>
    repo.index.idsFrom(source, { ...(cursor ? { from: cursor.id } : {}), inclusive, descending: onward === descending });
  const row = (record: VersionRecord): RowWithRecord => ({ id: record.id, type, keys: sort.length ? [record.id] : [], record });
  if (cursor?.d === 'b') {
    // the rows strictly before the cursor's, nearest first; any row from the cursor's on means a next page
    const before = await visibleFrom(repo, type, ids(false, false), count + 1, snapshot);
    return {
      rows: before.slice(0, count).reverse().map(row),
      hasPrevious: before.length > count,
      hasNext: (await visibleFrom(repo, type, ids(true, true), 1, snapshot)).length > 0,
    };
  }
  const after = await visibleFrom(repo, type, ids(true, false), count + 1, snapshot);
  return {
    rows: after.slice(0, count).map(row),
    hasPrevious: cursor !== undefined && (await visibleFrom(repo, type, ids(false, true), 1, snapshot)).length > 0,
    hasNext: after.length > count,
  };
}

/** The first `n` current resources among `ids` (in their order) that existed at the point in time. */
async function visibleFrom(repo: Repository, type: string, ids: AsyncGenerator<string>, n: number, snapshot: number): Promise<VersionRecord[]> {
  const out: VersionRecord[] = [];
  try {
    let done = false;
    while (out.length < n && !done) {
      const chunk: string[] = [];
      // most ids are visible, so a chunk is what is still missing (ids created after the point in time are skipped)
      while (chunk.length < Math.min(n - out.length, 256)) {
        const next = await ids.next();
        if (next.done) {
          done = true;
          break;
        }
        chunk.push(next.value);
      }
      for (const head of await repo.headsOf(type, chunk)) {
        if (await visibleAt(repo, head, snapshot)) out.push(head!);
      }
    }
  } finally {
    await ids.return(undefined);
  }
  return out.slice(0, n);
}

/**
 * Whether a search at the point in time shows this head: the resource is current (not deleted) and was already
 * there (its first version is not newer).
 */
async function visibleAt(repo: Repository, head: VersionRecord | undefined, snapshot: number): Promise<boolean> {
  if (!head || head.deleted) return false;
  if (head.t <= snapshot) return true;
  if (head.versionId === 1) return false;
  const first = await repo.version(head.resourceType, head.id, 1);
  return first !== undefined && first.t <= snapshot;
}

/** Sort keys from the index; strings and tokens are sealed there, so those come from the decrypted resource. */
async function sortKeys(repo: Repository, record: VersionRecord, sort: SortKey[], cache: ValuesCache): Promise<Array<string | null>> {
  const out: Array<string | null> = [];
  let plain: Array<{ code: string; value: string }> | undefined;
  for (const key of sort) {
    if (key.type === 'id') out.push(record.id);
    else if (key.type === 'string' || key.type === 'token') {
      plain ??= await repo.plainEntries(record);
      out.push(sortKeyOf(key, plain.filter((e) => e.code === key.code).map((e) => e.value)));
    } else {
      // descending dates sort by their ends: the `:hi` entries, which a ge/gt/eb filter has usually read already
      const code = key.type === 'date' && key.descending ? `${key.code}:hi` : key.code;
      out.push(sortKeyOf(key, await repo.index.valuesOf(record.resourceType, record.id, code, cache)));
    }
  }
  return out;
}

async function includes(repo: Repository, matches: VersionRecord[], include: Include[], revinclude: Include[]): Promise<VersionRecord[]> {
  if (include.length === 0 && revinclude.length === 0) return [];
  const seen = new Set(matches.map((r) => `${r.resourceType}/${r.id}`));
  const out: VersionRecord[] = [];
  let sources = matches;
  for (let round = 0; round <= MAX_ITERATE && sources.length && out.length < MAX_INCLUDED; round++) {
    const active = (specs: Include[]) => (round === 0 ? specs : specs.filter((s) => s.iterate));
    const refs = new Map<string, Set<string>>();
    const want = (type: string, id: string) => {
      if (seen.has(`${type}/${id}`)) return;
      seen.add(`${type}/${id}`);
      if (!refs.has(type)) refs.set(type, new Set());
      refs.get(type)!.add(id);
    };
    for (const source of sources) {
      for (const spec of active(include)) {
        if (spec.type !== '*' && spec.type !== source.resourceType) continue;
        for (const [type, id] of await referencesOf(repo, source, spec.code)) if (!spec.target || spec.target === type) want(type, id);
      }
      for (const spec of active(revinclude)) {
        // a source type is always named (params.ts refuses `*`): each reference parameter is one index scan
        if (spec.target && spec.target !== source.resourceType) continue;
        const codes = spec.code === '*' ? referencesTo(spec.type, source.resourceType) : paramsOf(spec.type).has(spec.code) ? [spec.code] : [];
        for (const code of codes) {
          for await (const { id } of repo.index.scan(spec.type, exact(code, `${source.resourceType}/${source.id}`))) want(spec.type, id);
        }
      }
    }
    const found: VersionRecord[] = [];
    for (const [type, ids] of refs) {
      for (const head of await repo.headsOf(type, [...ids])) if (head && !head.deleted) found.push(head);
    }
    out.push(...found.slice(0, MAX_INCLUDED - out.length));
    sources = found;
  }
  return out;
}

/**
 * The local references (type, id) one resource holds under a reference parameter, or under each of its type's
 * (`*`; with `targets`, only those that can point at one of these types), read off its index entries: what
 * `_include` follows.
 */
async function referencesOf(repo: Repository, source: VersionRecord, code: string, targets?: ReadonlySet<string>): Promise<Array<[string, string]>> {
  const codes =
    code === '*'
      ? [...paramsOf(source.resourceType).values()]
          .filter((p) => p.type === 'reference' && (!targets || !p.target || p.target.some((t) => targets.has(t))))
          .map((p) => p.code)
      : [code];
  const cache: ValuesCache = new Map();
  const out: Array<[string, string]> = [];
  for (const c of codes) {
    for (const value of await repo.index.valuesOf(source.resourceType, source.id, c, cache)) {
      const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(value);
      if (m) out.push([m[1]!, m[2]!]);
    }
  }
  return out;
}

/**
 * The ids of the resources of the `targets` types that any of `sources` refers to, by type: what `_include=*` on
 * all of them would add, without its cap (a source among them too). Deleted or unknown targets are kept; the
 * caller's search decides what exists.
 */
export async function referencedIds(repo: Repository, sources: VersionRecord[], targets: ReadonlySet<string>): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (let i = 0; i < sources.length; i += CHECK_BATCH) {
    const found = await Promise.all(sources.slice(i, i + CHECK_BATCH).map((source) => referencesOf(repo, source, '*', targets)));
    for (const [type, id] of found.flat()) {
      if (!targets.has(type)) continue;
      if (!out.has(type)) out.set(type, new Set());
      out.get(type)!.add(id);
    }
  }
  return out;
}

/**
 * The reference parameters of `type` that can point at a `target` resource (`_revinclude=Observation:*`): the index
 * holds a local reference only under parameters that admit its type (extract.ts), and a parameter stored under
 * another's code (registry.ts, indexCode) would repeat that one's scan.
 */
function referencesTo(type: string, target: string): string[] {
  return [...paramsOf(type).values()]
    .filter((p) => p.type === 'reference' && p.indexCode === undefined && (!p.target || p.target.includes(target)))
    .map((p) => p.code);
}

/**
 * The filter that keeps a type's search inside one patient's compartment
 * (http://hl7.org/fhir/R4/compartmentdefinition-patient.html): any of the type's compartment parameters refers
 * to the patient (and for Patient itself, the patient is its own compartment). Undefined: the type is not in it.
 */
export function compartmentFilter(type: string, patientId: string): Filter | undefined {
  const def = r4PatientCompartment().find((r) => r.code === type);
  const codes = (def?.param ?? []).filter((c) => paramsOf(type).has(c));
  const conditions = codes.map((code) => exact(code, `Patient/${patientId}`));
  if (type === 'Patient') conditions.push(exact('_id', patientId));
  if (conditions.length === 0) return undefined;
  return { kind: 'match', name: 'compartment', code: conditions[0]!.code, negate: false, conditions };
}
