/**
 * delete (http://hl7.org/fhir/R4/http.html#delete): stores a deletion as a new version; later reads answer
 * 410 Gone and history keeps every earlier version. Deleting a deleted resource changes nothing (idempotent).
 * Conditional delete (http://hl7.org/fhir/R4/http.html#3.1.0.7.1): DELETE [base]/[type]?[search] in single mode:
 * no match changes nothing (200 with an informational outcome), one match is deleted, several fail with 412.
 */
import { errors } from '../../errors.ts';
import { auditEntry, entityOfRecord, etagOf } from '../audit.ts';
import { conditionalOutcome, criteriaOf, resolveCondition } from '../conditional.ts';
import { informational } from '../outcome.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { checkIfMatch } from './write-common.ts';

export async function remove(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const resourceType = match.resourceType!;
  let target = match.id;
  const audited = target === undefined ? { query: ctx.repo.auditQuery(req.query) } : {};
  if (target === undefined) {
    const condition = criteriaOf(req.query, `Conditional delete of ${resourceType}`);
    const ids = await resolveCondition(ctx, resourceType, condition, req.resolvedIds);
    const outcome = conditionalOutcome('delete', ids, `The condition of this delete of ${resourceType}`);
    if (outcome.action !== 'match') {
      await ctx.work.record(auditEntry(ctx, match, 200, { entity: [{ reference: resourceType }], ...audited }));
      return { status: 200, body: informational(`No ${resourceType} matched the condition: nothing was deleted`) };
    }
    target = outcome.id;
  }
  const id = target;
  const key = `${resourceType}/${id}`;
  await ctx.work.lock([key]);
  const current = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  if (!current) {
    checkIfMatch(req, current, key);
    // http.html#delete: "Upon successful deletion, or if the resource does not exist at all", 200 or 204.
    await ctx.work.record(auditEntry(ctx, match, 200, { entity: [{ reference: key }], ...audited }));
    return { status: 200, body: informational(`${key} does not exist: nothing was deleted`) };
  }
  if (current.deleted && req.headers.ifMatch === undefined) {
    await ctx.work.record(auditEntry(ctx, match, 200, { entity: [entityOfRecord(current)], ...audited }));
    return { status: 200, body: informational(`${key} was already deleted`), headers: { etag: etagOf(current) } };
  }
  checkIfMatch(req, current, key);
  const prepared = await ctx.repo.prepare({ resourceType, id, resource: undefined, method: 'DELETE', previous: current });
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [prepared.entity], ...audited }), [prepared]);
  return {
    status: 200,
    body: informational(`Deleted ${key} (version ${prepared.record.versionId})`),
    headers: { etag: etagOf(prepared.record) },
  };
}
