/**
 * Query planning and execution over the search index. A search reads in proportion to its result: one filter
 * drives (the most selective kind: an id set from a chain or `_has`, then exact matches, then ranges), its scan
 * gives the candidates, and every other filter is a point check per candidate against its `resource-entries` record.
 * Only filters that cannot drive (`:not`, `:missing`, nothing else) fall back to all resources of the type.
 *
 * READY for conditional interactions and import: `Repository.findIds(type, query, { limit })` → ids.
 */
import { errors } from '../../errors.ts';
import type { Repository } from '../repository.ts';
import { exact, type Condition, type Hash } from './conditions.ts';
import type { IndexEntry } from './extract.ts';
import { readsRanges, type ValuesCache } from './index-store.ts';
import { passesOnEntries } from './memory-match.ts';
import { parseSearch, parseSystemSearch, type Filter, type ParseOptions } from './params.ts';

export interface FindOptions {
  limit?: number;
  /** `Prefer: handling=lenient`: ignore unknown parameters instead of rejecting them. */
  lenient?: boolean;
}

/** A filter after chains and `_has` were resolved to the ids they allow. */
type Resolved = Filter | { kind: 'ids'; name: string; ids: Set<string> };

/** Deepest chain / `_has` nesting accepted (each level is a whole search). */
const MAX_DEPTH = 4;
/** Candidates checked concurrently. */
const CHECK_BATCH = 64;

/** Whether a filter is decided on decrypted values: residual, or an index match that only narrows (`lossy`). */
const needsPlain = (f: Resolved) => f.kind === 'residual' || (f.kind === 'match' && f.conditions.some((c) => c.lossy));

export class SearchEngine {
  private readonly repo: Repository;
  readonly baseUrl: string | undefined;
  private readonly hash: Hash;

  constructor(repo: Repository, baseUrl: string | undefined, hash: Hash) {
    this.repo = repo;
    this.baseUrl = baseUrl;
    this.hash = hash;
  }

  parse(resourceType: string, query: Record<string, string[]>, options: Omit<ParseOptions, 'baseUrl' | 'hash'> = {}) {
    return parseSearch(resourceType, query, { ...options, hash: this.hash, ...(this.baseUrl ? { baseUrl: this.baseUrl } : {}) });
  }

  /** A system search: over the `_type` types (undefined: every type), each by its own parameters (params.ts). */
  parseSystem(types: readonly string[] | undefined, query: Record<string, string[]>, options: Omit<ParseOptions, 'baseUrl' | 'hash'> = {}) {
    return parseSystemSearch(types, query, { ...options, hash: this.hash, ...(this.baseUrl ? { baseUrl: this.baseUrl } : {}) });
  }

  async findIds(resourceType: string, query: Record<string, string[]>, options: FindOptions = {}): Promise<string[]> {
    const parsed = this.parse(resourceType, query, { lenient: options.lenient ?? false });
    const ids = [...(await this.matchIds(resourceType, parsed.filters))].sort();
    return options.limit === undefined ? ids : ids.slice(0, options.limit);
  }

  /** Ids of the type's current resources that pass every filter (AND). */
  async matchIds(resourceType: string, filters: Filter[], depth = 0, cache?: ValuesCache): Promise<Set<string>> {
    if (depth > MAX_DEPTH) throw errors.badRequest(`Chained search nested deeper than ${MAX_DEPTH} levels`, undefined, 'ERR_INVALID_CHAIN');
    const resolved: Resolved[] = [];
    for (const f of filters) resolved.push(await this.resolve(resourceType, f, depth));
    const driver = pickDriver(resolved);
    const candidates = driver ? await this.scan(resourceType, driver) : await collect(this.repo.index.allIds(resourceType));
    // point checks first, then what needs the decrypted resource (a lossy driver's candidates too)
    let rest = resolved.filter((f) => f !== driver || needsPlain(f)).sort((a, b) => Number(needsPlain(a)) - Number(needsPlain(b)));
    if (rest.length === 0) return candidates;
    const out = new Set<string>();
    let list = [...candidates];
    // exact filters first, each as one batched read over all candidates; a lossy one only narrows the list here
    const batched = rest.filter(
      (f) => f !== driver && f.kind === 'match' && f.conditions.every((c) => c.exact !== undefined) && !(f.negate && needsPlain(f)),
    ) as Array<Extract<Filter, { kind: 'match' }>>;
    for (const f of batched) {
      const ok = await this.repo.index.matchesExact(resourceType, list, f.conditions);
      list = list.filter((_, i) => ok[i] !== f.negate);
    }
    rest = rest.filter((f) => !batched.includes(f as never) || needsPlain(f));
    if (rest.length === 0) return new Set(list);
    cache ??= new Map();
    if (rest.some((f) => f.kind === 'match' && !f.negate && readsRanges(resourceType, f.conditions))) {
      await this.repo.index.prefetchRanges(resourceType, list, cache);
    }
    for (let i = 0; i < list.length; i += CHECK_BATCH) {
      const chunk = list.slice(i, i + CHECK_BATCH);
      const ok = await Promise.all(chunk.map((id) => this.passes(resourceType, id, rest, cache)));
      chunk.forEach((id, j) => ok[j] && out.add(id));
    }
    return out;
  }

  private async resolve(resourceType: string, f: Filter, depth: number): Promise<Resolved> {
    if (f.kind === 'chain') {
      const conditions: Condition[] = [];
      for (const target of f.targets) {
        const inner = this.parse(target, f.query);
        for (const id of await this.matchIds(target, inner.filters, depth + 1)) conditions.push(exact(f.code, `${target}/${id}`));
      }
      return { kind: 'match', name: f.name, code: f.code, negate: false, conditions };
    }
    if (f.kind === 'has') {
      const inner = this.parse(f.type, f.query);
      const ids = new Set<string>();
      const prefix = `${resourceType}/`;
      for (const source of await this.matchIds(f.type, inner.filters, depth + 1)) {
        for (const value of await this.repo.index.valuesOf(f.type, source, f.code)) if (value.startsWith(prefix)) ids.add(value.slice(prefix.length));
      }
      return { kind: 'ids', name: f.name, ids };
    }
    return f;
  }

  private async scan(resourceType: string, f: Resolved): Promise<Set<string>> {
    if (f.kind === 'ids') return f.ids;
    const out = new Set<string>();
    if (f.kind !== 'match') return out;
    for (const c of f.conditions) for await (const { id } of this.repo.index.scan(resourceType, c)) out.add(id);
    return out;
  }

  private async passes(resourceType: string, id: string, filters: Resolved[], cache?: ValuesCache): Promise<boolean> {
    let plain: IndexEntry[] | undefined;
    for (const f of filters) {
      let ok: boolean;
      if (needsPlain(f) && (f.kind === 'residual' || f.kind === 'match')) {
        if (!plain) {
          const head = await this.repo.head(resourceType, id);
          const codes = new Set(filters.flatMap((g) => (needsPlain(g) && 'conditions' in g ? g.conditions.map((c) => c.code.split(':')[0]!) : [])));
          plain = head && !head.deleted ? await this.repo.plainEntries(head, codes) : [];
        }
        ok = passesOnEntries(f, plain);
      } else if (f.kind === 'ids') ok = f.ids.has(id);
      else if (f.kind === 'missing') ok = (await this.repo.index.hasAny(resourceType, id, f.code)) !== f.missing;
      else if (f.kind === 'match') ok = (await this.repo.index.matches(resourceType, id, f.conditions, cache)) !== f.negate;
      else ok = false;
      if (!ok) return false;
    }
    return true;
  }
}

/** Cost rank of a filter as a driver (lower is better); undefined when it cannot drive. */
function rank(f: Resolved): number | undefined {
  if (f.kind === 'ids') return 0;
  if (f.kind !== 'match' || f.negate) return undefined;
  if (f.conditions.every((c) => c.exact !== undefined && !c.lossy)) return 1;
  if (f.conditions.every((c) => c.lower !== '')) return 2;
  return 3;
}

function pickDriver(filters: Resolved[]): Resolved | undefined {
  let best: Resolved | undefined;
  let bestRank = Infinity;
  for (const f of filters) {
    const r = rank(f);
    if (r === undefined) continue;
    const size = f.kind === 'ids' ? f.ids.size : 0;
    if (r < bestRank || (r === 0 && best?.kind === 'ids' && size < best.ids.size)) {
      best = f;
      bestRank = r;
    }
  }
  return best;
}

async function collect(it: AsyncIterable<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const id of it) out.add(id);
  return out;
}
