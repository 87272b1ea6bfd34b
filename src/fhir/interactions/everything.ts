/**
 * Patient/[id]/$everything (http://hl7.org/fhir/R4/patient-operation-everything.html): the patient, every resource
 * in their compartment (R4 Patient CompartmentDefinition) and the resources those refer to, with `_since`,
 * `_type` (which limits the whole answer, referred resources too: typedPlan), `_count` and cursor paging ordered by
 * type (the patient first) and id. Audited like a search: one entry, the patient named.
 */
import { errors } from '../../errors.ts';
import { auditEntry, entityOfMatch } from '../audit.ts';
import { patientCompartmentTypes } from '../definitions.ts';
import type { VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { dateCondition, exact } from '../search/conditions.ts';
import { COMMON_PARAMETERS_TYPE, type Filter } from '../search/params.ts';
import { compartmentFilter, referencedIds, runSearch } from '../search/run.ts';
import { RESOURCE_TYPES } from '../validate.ts';
import { MAX_COUNT, pageUrl, patientsOf, planOf, searchBundle, typesParameter } from './search.ts';
import { parseInstant } from './parameters.ts';

const EVERYTHING_PARAMETERS = new Set(['_since', '_type', '_count', '_page', '_format', '_pretty']);

export async function everything(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const id = match.id!;
  for (const name of Object.keys(req.query)) {
    if (!EVERYTHING_PARAMETERS.has(name)) throw errors.badRequest(`Parameter '${name.slice(0, 64)}' is not supported by $everything`, [name], 'ERR_UNKNOWN_PARAMETER');
  }
  const head = await ctx.repo.head('Patient', id);
  if (!head) throw errors.notFound(`Patient/${id} is not known`);
  if (head.deleted) throw errors.gone(`Patient/${id} was deleted`);

  const types = patientCompartmentTypes().filter((t) => (RESOURCE_TYPES as readonly string[]).includes(t));
  const wanted = typesParameter(req.query._type);
  const since = parseInstant(req.query, '_since');
  const parsed = ctx.repo.search.parse(COMMON_PARAMETERS_TYPE, req.query, { maxCount: MAX_COUNT, extra: new Set(['_since', '_type']) });

  // Each compartment type's search: the resources in the patient's compartment (as a compartment search finds
  // them), updated since `_since`.
  const compartment: Array<{ type: string; filters: Filter[] }> = [];
  for (const type of types) {
    const scope = compartmentFilter(type, id);
    if (!scope) continue;
    const filters: Filter[] = [scope];
    if (since) filters.push({ kind: 'match', name: '_since', code: '_lastUpdated', negate: false, conditions: [dateCondition('_lastUpdated', '_since', `ge${since}`)] });
    compartment.push({ type, filters });
  }
  // A resource the compartment refers to is not added for a reference when it is the patient's own compartment
  // resource (keyed under the patient): that one is returned as itself, if it passes _since. Including it on every
  // page that refers to it repeated an Encounter dozens of times.
  const own = (r: VersionRecord) => r.kek === `patient/${id}` && types.includes(r.resourceType);
  let planned = compartment;
  if (wanted) planned = await typedPlan(ctx, compartment, new Set(wanted), own);
  else parsed.include = [{ type: '*', code: '*', iterate: false }];
  // The patient first, as clients reading a summary expect it at the top, then other Patients (linked to it, or
  // referred to); the compartment's other types after them by name.
  const rowRank = (type: string, rid: string) => (type !== 'Patient' ? 2 : rid === id ? 0 : 1);
  const plan = { ...planOf(parsed, planned), rowRank };
  const outcome = await runSearch(ctx.repo, ctx.repo.search, plan);
  outcome.included = outcome.included.filter((r) => !own(r));
  const bundle = await searchBundle(ctx, parsed, outcome, (page) => pageUrl(ctx.baseUrl, `Patient/${id}/$everything`, req.query, page));
  await ctx.work.record(
    auditEntry(ctx, match, 200, {
      entity: entityOfMatch(match),
      query: ctx.repo.auditQuery(req.query),
      ...patientsOf([...outcome.matches, ...outcome.included, head]),
    }),
  );
  return { status: 200, body: bundle };
}

/**
 * With `_type`, the answer is the one without it limited to the types listed (the patient itself only if Patient
 * is among them, as HAPI answers): the compartment's resources of those types, and the resources of those types
 * that any compartment resource refers to, whatever the referrer's type. Both are matches, paged and counted
 * together: a Practitioner referred to only by an Encounter has no page of the Encounter to be included on when
 * `_type=Practitioner`. The referred ones are searched by `_id`, the compartment's own by their compartment search.
 */
async function typedPlan(
  ctx: InteractionContext,
  compartment: Array<{ type: string; filters: Filter[] }>,
  wanted: ReadonlySet<string>,
  own: (r: VersionRecord) => boolean,
): Promise<Array<{ type: string; filters: Filter[] }>> {
  const planned: Array<{ type: string; filters: Filter[] }> = [];
  const sources: VersionRecord[] = [];
  const members = new Map<string, Set<string>>();
  for (const { type, filters } of compartment) {
    const ids = await ctx.repo.search.matchIds(type, filters);
    members.set(type, ids);
    if (wanted.has(type)) planned.push({ type, filters });
    for (const head of await ctx.repo.headsOf(type, [...ids])) if (head && !head.deleted) sources.push(head);
  }
  for (const [type, ids] of await referencedIds(ctx.repo, sources, wanted)) {
    const candidates = [...ids].filter((rid) => !members.get(type)?.has(rid)).sort();
    const heads = await ctx.repo.headsOf(type, candidates);
    const referred = candidates.filter((_, i) => heads[i] && !heads[i]!.deleted && !own(heads[i]!));
    if (referred.length === 0) continue;
    planned.push({ type, filters: [{ kind: 'match', name: '_type', code: '_id', negate: false, conditions: referred.map((rid) => exact('_id', rid)) }] });
  }
  return planned;
}
