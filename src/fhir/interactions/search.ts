/**
 * search (http://hl7.org/fhir/R4/http.html#search, http://hl7.org/fhir/R4/search.html) at type, system and
 * compartment level, by GET or POST `_search`. One ledger entry per search holds the query (values as keyed
 * hashes) and the patients whose resources it returned, never the results (IHE BALP Query pattern).
 */
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry, entityOfMatch } from '../audit.ts';
import { parseStored, type VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { presentValues, withoutEmptyValues, type Filter, type ParsedSearch } from '../search/params.ts';
import { compartmentFilter, runSearch, type SearchOutcome, type SearchPlan } from '../search/run.ts';
import { subset } from '../search/summary.ts';
import { RESOURCE_TYPES } from '../validate.ts';

export const DEFAULT_COUNT = 50;
export const MAX_COUNT = 1000;

export async function search(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  // POST _search parameters come as a form, which the HTTP layer joins to the query; a JSON body would otherwise be
  // ignored without a word, and the client would take an unfiltered answer for its search.
  if (req.body !== undefined) {
    throw errors.unsupportedMediaType('POST _search takes its parameters in the URL or as an application/x-www-form-urlencoded body, not as JSON');
  }
  const lenient = /handling\s*=\s*lenient/i.test(req.headers.prefer ?? '');
  const engine = ctx.repo.search;
  let plan: SearchPlan;
  let selfPath: string;
  if (match.interaction === 'search-system') {
    const types = typesParameter(req.query._type);
    const { parsed, types: planned } = engine.parseSystem(types, req.query, { lenient, maxCount: MAX_COUNT });
    // without _type, every type is sorted together: only by what every resource has a value for
    for (const key of types ? [] : parsed.sort) {
      if (key.code !== '_id' && key.code !== '_lastUpdated') {
        throw errors.badRequest(`_sort '${key.code}' is not available at system level without _type`, ['_sort'], 'ERR_SEARCH_VALUE');
      }
    }
    plan = planOf(parsed, planned);
    selfPath = '';
  } else if (match.interaction === 'search-compartment') {
    const type = match.resourceType!;
    const scope = compartmentFilter(type, match.id!);
    if (!scope) throw errors.badRequest(`${type} is not in the Patient compartment`, undefined, 'ERR_NOT_IN_COMPARTMENT');
    const parsed = engine.parse(type, req.query, { lenient, maxCount: MAX_COUNT });
    plan = planOf(parsed, [{ type, filters: [scope, ...parsed.filters] }]);
    selfPath = `Patient/${match.id}/${type}`;
  } else {
    const type = match.resourceType!;
    const parsed = engine.parse(type, req.query, { lenient, maxCount: MAX_COUNT });
    plan = planOf(parsed, [{ type, filters: parsed.filters }]);
    selfPath = type;
  }

  const outcome = await runSearch(ctx.repo, engine, plan);
  const bundle = await searchBundle(ctx, plan.parsed, outcome, (page) => pageUrl(ctx.baseUrl, selfPath, usedQuery(req.query, plan.parsed), page));
  await ctx.work.record(
    auditEntry(ctx, match, 200, {
      entity: entityOfMatch(match.interaction === 'search-system' ? { interaction: match.interaction } : match),
      query: ctx.repo.auditQuery(req.query),
      ...patientsOf([...outcome.matches, ...outcome.included]),
    }),
  );
  return { status: 200, body: bundle };
}

export function planOf(parsed: ParsedSearch, types: Array<{ type: string; filters: Filter[] }>): SearchPlan {
  const count = parsed.summary === 'count' ? 0 : (parsed.count ?? DEFAULT_COUNT);
  return { types, parsed, count };
}

/**
 * The query as the search used it, for its self and paging links (search.html#selflink: the parameters actually used
 * to process it): without empty values and without the parameters lenient handling ignored.
 */
export function usedQuery(query: Record<string, string[]>, parsed: ParsedSearch): Record<string, string[]> {
  const used = withoutEmptyValues(query);
  for (const name of parsed.ignored) delete used[name];
  return used;
}

/**
 * `_type` (comma-separated, repeatable): the types named, each a resource type (400 otherwise); undefined if absent
 * or empty (an empty parameter is ignored, as any other: params.ts).
 */
export function typesParameter(values: string[] | undefined): string[] | undefined {
  const present = presentValues(values);
  if (!present) return undefined;
  const types = present.flatMap((v) => v.split(',')).map((t) => t.trim());
  for (const t of types) if (!(RESOURCE_TYPES as readonly string[]).includes(t)) throw errors.badRequest(`_type: '${t.slice(0, 64)}' is not a resource type`, ['_type'], 'ERR_SEARCH_VALUE');
  return types;
}

export function patientsOf(records: VersionRecord[]): { patients?: string[] } {
  const patients = [...new Set(records.flatMap((r) => (r.patient ? [`Patient/${r.patient}`] : [])))].sort();
  return patients.length ? { patients } : {};
}

/** The searchset Bundle: matches, then included resources, then (lenient) the ignored parameters. */
export async function searchBundle(
  ctx: InteractionContext,
  parsed: ParsedSearch,
  outcome: SearchOutcome,
  url: (page: string | undefined) => string,
): Promise<Bundle> {
  const entry: BundleEntry[] = [];
  const records = [...outcome.matches, ...outcome.included];
  (await ctx.repo.openMany(records)).forEach((plaintext, i) => {
    const record = records[i]!;
    const resource = parseStored(plaintext) as unknown as Record<string, unknown>;
    entry.push({
      fullUrl: `${ctx.baseUrl}/${record.resourceType}/${record.id}`,
      resource: subset(resource, parsed.summary, parsed.elements) as unknown as Resource,
      search: { mode: i < outcome.matches.length ? 'match' : 'include' },
    });
  });
  if (parsed.ignored.length) {
    const oo: OperationOutcome = {
      resourceType: 'OperationOutcome',
      issue: parsed.ignored.map((name) => ({
        severity: 'warning',
        code: 'not-supported',
        diagnostics: `Search parameter '${name}' is not supported and was ignored (Prefer: handling=lenient)`,
        expression: [name],
      })),
    };
    entry.push({ resource: oo, search: { mode: 'outcome' } });
  }
  const link: BundleLink[] = [{ relation: 'self', url: url(outcome.self) }];
  if (outcome.next) link.push({ relation: 'next', url: url(outcome.next) });
  if (outcome.previous) link.push({ relation: 'previous', url: url(outcome.previous) });
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link };
  if (parsed.total !== 'none' && outcome.total !== undefined) bundle.total = outcome.total;
  if (entry.length) bundle.entry = entry;
  return bundle;
}

/** A GET URL that repeats the query (without a previous cursor) and adds the page cursor. */
export function pageUrl(baseUrl: string, path: string, query: Record<string, string[]>, page: string | undefined): string {
  const params = new URLSearchParams();
  for (const [name, values] of Object.entries(query)) if (name !== '_page') for (const v of values) params.append(name, v);
  if (page) params.set('_page', page);
  const qs = params.toString();
  return `${baseUrl}${path ? `/${path}` : ''}${qs ? `?${qs}` : ''}`;
}
