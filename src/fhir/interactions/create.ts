/**
 * create (http://hl7.org/fhir/R4/http.html#create): POST [base]/[type], the server assigns the id.
 */
import { errors } from '../../errors.ts';
import { auditEntry } from '../audit.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { resourceBody, writtenResponse } from './write-common.ts';

export async function create(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const resourceType = match.resourceType!;
  if (req.headers.ifNoneExist !== undefined) {
    throw errors.notSupported('Conditional create (If-None-Exist) needs search, which this server does not offer yet', 'ERR_CONDITIONAL_UNSUPPORTED');
  }
  const body = resourceBody(req);
  const id = req.assignedId ?? ctx.repo.newId();
  const key = `${resourceType}/${id}`;
  await ctx.work.lock([key]);
  const prepared = await ctx.repo.prepare({
    resourceType,
    id,
    resource: body,
    method: 'POST',
    previous: await ctx.work.head(key, () => ctx.repo.head(resourceType, id)),
  });
  await ctx.work.record(auditEntry(ctx, match, 201, { entity: [prepared.entity] }), [prepared]);
  return writtenResponse(ctx.baseUrl, prepared, 201);
}
