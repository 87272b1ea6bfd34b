/**
 * update (http://hl7.org/fhir/R4/http.html#update): PUT [base]/[type]/[id]. Creates the resource when the id is
 * new (update-as-create, 201) and honours If-Match (412 on a stale version).
 * Conditional update (http://hl7.org/fhir/R4/http.html#cond-update): PUT [base]/[type]?[search]. No match creates
 * the resource (with the body's id when it has one that is not taken, else a new id), one match updates it, several
 * matches fail with 412.
 */
import type { Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry } from '../audit.ts';
import { conditionalOutcome, criteriaOf, resolveCondition } from '../conditional.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { checkIfMatch, resourceBody, writtenResponse } from './write-common.ts';

export async function update(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const resourceType = match.resourceType!;
  const body = resourceBody(req);
  const id = match.id ?? (await conditionalTarget(req, resourceType, body, ctx));
  const audited = match.id === undefined ? { query: ctx.repo.auditQuery(req.query) } : {};
  if (body.id === undefined && match.id !== undefined) {
    throw errors.badRequest(`The resource in an update must carry its id ('${id}')`, [`${resourceType}.id`], 'ERR_ID_MISSING');
  }
  if (body.id !== undefined && body.id !== id) {
    throw errors.badRequest(`The resource id '${String(body.id).slice(0, 64)}' does not match the id ${match.id ? 'in the URL' : 'of the resource the condition matched'} ('${id}')`, [`${resourceType}.id`], 'ERR_ID_MISMATCH');
  }
  const key = `${resourceType}/${id}`;
  await ctx.work.lock([key]);
  const previous = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  checkIfMatch(req, previous, key);
  const prepared = await ctx.repo.prepare({
    resourceType,
    id,
    resource: body,
    method: 'PUT',
    previous,
  });
  const status = !previous || previous.deleted ? 201 : 200;
  await ctx.work.record(auditEntry(ctx, match, status, { entity: [prepared.entity], ...audited }), [prepared]);
  return writtenResponse(ctx.baseUrl, prepared, status);
}

/** The id a conditional update writes: the one match, or for no match the body's id (if free) or a new one. */
async function conditionalTarget(req: FhirRequest, resourceType: string, body: Resource, ctx: InteractionContext): Promise<string> {
  const condition = criteriaOf(req.query, `Conditional update of ${resourceType}`);
  const ids = await resolveCondition(ctx, resourceType, condition, req.resolvedIds);
  const outcome = conditionalOutcome('update', ids, `The condition of this update of ${resourceType}`);
  if (outcome.action === 'match') return outcome.id;
  if (body.id === undefined) return req.assignedId ?? ctx.repo.newId();
  if (typeof body.id !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(body.id)) {
    throw errors.badRequest(`Invalid id '${String(body.id).slice(0, 80)}': must match [A-Za-z0-9\\-.]{1,64}`, [`${resourceType}.id`], 'ERR_INVALID_ID');
  }
  const key = `${resourceType}/${body.id}`;
  await ctx.work.lock([key]);
  const taken = await ctx.work.head(key, () => ctx.repo.head(resourceType, body.id!));
  if (taken && !taken.deleted) {
    throw errors.conflict(`No resource matched the condition, but ${key} exists and does not match it`, 'ERR_CONDITION_ID_TAKEN');
  }
  return body.id;
}
