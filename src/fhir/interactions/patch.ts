/**
 * patch (http://hl7.org/fhir/R4/http.html#patch): JSON Patch (application/json-patch+json) or FHIRPath Patch
 * (a Parameters resource, http://hl7.org/fhir/R4/fhirpatch.html), applied to the current version.
 */
import type { Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry, entityOfRecord } from '../audit.ts';
import { applyFhirPathPatch, applyJsonPatch, isJsonPatchContentType } from '../patch/index.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { checkIfMatch, writtenResponse } from './write-common.ts';

export async function patch(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const { resourceType, id } = match as Required<Pick<RouteMatch, 'resourceType' | 'id'>>;
  const key = `${resourceType}/${id}`;
  if (req.body === undefined) throw errors.badRequest('A patch request needs a body', undefined, 'ERR_NO_BODY');
  await ctx.work.lock([key]);
  const current = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  if (!current) throw errors.notFound(`${key} is not known`);
  if (current.deleted) throw errors.gone(`${key} was deleted (version ${current.versionId})`);
  checkIfMatch(req, current, key);
  const pending = ctx.work.written(key);
  const plaintext = pending?.record === current && pending.plaintext ? pending.plaintext : await ctx.repo.open(current);
  const before = JSON.parse(new TextDecoder().decode(plaintext)) as Resource;
  const after = (isJsonPatchContentType(req.headers.contentType) ? applyJsonPatch(before, req.body) : applyFhirPathPatch(before, req.body)) as unknown as Resource;
  const prepared = await ctx.repo.prepare({
    resourceType,
    id,
    resource: after,
    method: 'PATCH',
    previous: current,
  });
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [entityOfRecord(current), prepared.entity] }), [prepared]);
  return writtenResponse(ctx.baseUrl, prepared, 200);
}
