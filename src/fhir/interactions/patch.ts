/**
 * patch (http://hl7.org/fhir/R4/http.html#patch): JSON Patch (application/json-patch+json) or FHIRPath Patch
 * (a Parameters resource, http://hl7.org/fhir/R4/fhirpatch.html), applied to the current version.
 * Conditional patch: PATCH [base]/[type]?[search] patches the one match; no match is 404, several are 412.
 */
import type { Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry, entityOfRecord } from '../audit.ts';
import { conditionalOutcome, criteriaOf, resolveCondition } from '../conditional.ts';
import { applyFhirPathPatch, applyJsonPatch, isJsonPatchContentType } from '../patch/index.ts';
import { parseStored } from '../repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { checkIfMatch, writtenResponse } from './write-common.ts';

export async function patch(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const resourceType = match.resourceType!;
  if (req.body === undefined) throw errors.badRequest('A patch request needs a body', undefined, 'ERR_NO_BODY');
  const id = match.id ?? (await conditionalTarget(req, resourceType, ctx));
  const audited = match.id === undefined ? { query: ctx.repo.auditQuery(req.query) } : {};
  const key = `${resourceType}/${id}`;
  await ctx.work.lock([key]);
  const current = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  if (!current) throw errors.notFound(`${key} is not known`);
  if (current.deleted) throw errors.gone(`${key} was deleted (version ${current.versionId})`);
  checkIfMatch(req, current, key);
  const pending = ctx.work.written(key);
  const plaintext = pending?.record === current && pending.plaintext ? pending.plaintext : await ctx.repo.open(current);
  const before = parseStored(plaintext);
  const after = (isJsonPatchContentType(req.headers.contentType) ? applyJsonPatch(before, req.body) : applyFhirPathPatch(before, req.body)) as unknown as Resource;
  const prepared = await ctx.repo.prepare({
    resourceType,
    id,
    resource: after,
    method: 'PATCH',
    previous: current,
  });
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [entityOfRecord(current), prepared.entity], ...audited }), [prepared]);
  return writtenResponse(ctx.baseUrl, prepared, 200);
}

/** The one resource a conditional patch's condition matched (404 for none, 412 for several). */
async function conditionalTarget(req: FhirRequest, resourceType: string, ctx: InteractionContext): Promise<string> {
  const condition = criteriaOf(req.query, `Conditional patch of ${resourceType}`);
  const ids = await resolveCondition(ctx, resourceType, condition, req.resolvedIds);
  const outcome = conditionalOutcome('patch', ids, `The condition of this patch of ${resourceType}`);
  if (outcome.action !== 'match') throw new Error('a conditional patch resolves to one match or fails');
  return outcome.id;
}
