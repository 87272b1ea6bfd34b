/**
 * create (http://hl7.org/fhir/R4/http.html#create): POST [base]/[type], the server assigns the id.
 * Conditional create (http://hl7.org/fhir/R4/http.html#ccreate): with `If-None-Exist`, no match creates (201),
 * one match returns that resource unchanged (200, nothing written), several matches fail (412).
 */
import { auditEntry, entityOfRecord, etagOf } from '../audit.ts';
import { conditionalOutcome, parseCondition, resolveCondition } from '../conditional.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { resourceBody, writtenResponse } from './write-common.ts';

export async function create(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const resourceType = match.resourceType!;
  const body = resourceBody(req);
  // A conditional create's entry records its condition the way searches do (values as keyed hashes).
  let audited: { query?: string } = {};
  if (req.headers.ifNoneExist !== undefined) {
    const condition = parseCondition(req.headers.ifNoneExist, resourceType, 'If-None-Exist');
    audited = { query: ctx.repo.auditQuery(condition) };
    const ids = await resolveCondition(ctx, resourceType, condition, req.resolvedIds);
    const outcome = conditionalOutcome('create', ids, `If-None-Exist on ${resourceType}`);
    if (outcome.action === 'match') return existing(resourceType, outcome.id, match, ctx, audited);
  }
  const id = req.assignedId ?? ctx.repo.newId();
  const key = `${resourceType}/${id}`;
  await ctx.work.lock([key]);
  // Both ids come from repo.newId() (a random UUID, also for a transaction's assignedId): nothing can exist under
  // it, so there is no version head to read (one index read saved per created resource, noticeable in bulk imports).
  const prepared = await ctx.repo.prepare({ resourceType, id, resource: body, method: 'POST', previous: undefined });
  await ctx.work.record(auditEntry(ctx, match, 201, { entity: [prepared.entity], ...audited }), [prepared]);
  return writtenResponse(ctx.baseUrl, prepared, 201);
}

/** The resource a conditional create matched, returned as it is: the client learns its id and version. */
async function existing(resourceType: string, id: string, match: RouteMatch, ctx: InteractionContext, audited: { query?: string }): Promise<FhirResponse> {
  const key = `${resourceType}/${id}`;
  const record = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  if (!record || record.deleted) throw new Error(`search matched ${key}, which has no current version`);
  const pending = ctx.work.written(key);
  const raw = pending?.record === record && pending.plaintext ? pending.plaintext : await ctx.repo.open(record);
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [entityOfRecord(record)], ...audited }));
  return {
    status: 200,
    body: { raw },
    headers: {
      etag: etagOf(record),
      lastModified: record.lastUpdated,
      location: `${ctx.baseUrl}/${key}/_history/${record.versionId}`,
    },
  };
}
