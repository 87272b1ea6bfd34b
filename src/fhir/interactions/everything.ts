/**
 * Patient/[id]/$everything (http://hl7.org/fhir/R4/patient-operation-everything.html): the patient, every resource
 * in their compartment (R4 Patient CompartmentDefinition) and the resources those refer to, with `_since`,
 * `_type`, `_count` and cursor paging ordered by type (the Patient first) and id. Audited like a search: one entry,
 * the patient named.
 */
import { errors } from '../../errors.ts';
import { auditEntry, entityOfMatch } from '../audit.ts';
import { patientCompartmentTypes } from '../definitions.ts';
import type { VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { dateCondition } from '../search/conditions.ts';
import { COMMON_PARAMETERS_TYPE, type Filter } from '../search/params.ts';
import { compartmentFilter, runSearch } from '../search/run.ts';
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

  let types = patientCompartmentTypes().filter((t) => (RESOURCE_TYPES as readonly string[]).includes(t));
  const wanted = typesParameter(req.query._type);
  if (wanted) types = types.filter((t) => wanted.includes(t));
  const since = parseInstant(req.query, '_since');
  const parsed = ctx.repo.search.parse(COMMON_PARAMETERS_TYPE, req.query, { maxCount: MAX_COUNT, extra: new Set(['_since', '_type']) });
  parsed.include = [{ type: '*', code: '*', iterate: false }];

  const planned: Array<{ type: string; filters: Filter[] }> = [];
  for (const type of types) {
    const scope = compartmentFilter(type, id);
    if (!scope) continue;
    const filters: Filter[] = [scope];
    if (since) filters.push({ kind: 'match', name: '_since', code: '_lastUpdated', negate: false, conditions: [dateCondition('_lastUpdated', '_since', `ge${since}`)] });
    planned.push({ type, filters });
  }
  // The patient first, as clients reading a summary expect it at the top, then the Patients linked to it; the
  // compartment's other types after them by name.
  const rowRank = (type: string, rid: string) => (type !== 'Patient' ? 2 : rid === id ? 0 : 1);
  const plan = { ...planOf(parsed, planned), rowRank };
  const outcome = await runSearch(ctx.repo, ctx.repo.search, plan);
  // What the matches refer to is included, but not a compartment member of a listed type: that one is a match on
  // its own page, and including it on every page that refers to it repeated an Encounter dozens of times. _type
  // restricts what is returned, included resources too (the Patient itself among them).
  const member = (r: VersionRecord) => r.kek === `patient/${id}` && types.includes(r.resourceType);
  outcome.included = outcome.included.filter((r) => (!wanted || wanted.includes(r.resourceType)) && !member(r));
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
