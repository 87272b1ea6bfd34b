/**
 * update (http://hl7.org/fhir/R4/http.html#update): PUT [base]/[type]/[id]. Creates the resource when the id is
 * new (update-as-create, 201) and honours If-Match (412 on a stale version).
 */
import { errors } from '../../errors.ts';
import { auditEntry } from '../audit.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { checkIfMatch, resourceBody, writtenResponse } from './write-common.ts';

export async function update(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const { resourceType, id } = match as Required<Pick<RouteMatch, 'resourceType' | 'id'>>;
  const body = resourceBody(req);
  if (body.id === undefined) {
    throw errors.badRequest(`The resource in an update must carry its id ('${id}')`, [`${resourceType}.id`], 'ERR_ID_MISSING');
  }
  if (body.id !== id) {
    throw errors.badRequest(`The resource id '${String(body.id).slice(0, 64)}' does not match the id in the URL ('${id}')`, [`${resourceType}.id`], 'ERR_ID_MISMATCH');
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
  await ctx.work.record(auditEntry(ctx, match, status, { entity: [prepared.entity] }), [prepared]);
  return writtenResponse(ctx.baseUrl, prepared, status);
}
