/**
 * read (http://hl7.org/fhir/R4/http.html#read) and vread (http://hl7.org/fhir/R4/http.html#vread), with the
 * conditional read headers If-None-Match and If-Modified-Since (http://hl7.org/fhir/R4/http.html#cread).
 * The ledger entry is durable before any byte of the resource leaves.
 */
import { errors } from '../../errors.ts';
import { auditEntry, entityOfRecord, etagOf, httpDate, versionOfEtag } from '../audit.ts';
import type { VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';

export async function read(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const { resourceType, id } = match as Required<Pick<RouteMatch, 'resourceType' | 'id'>>;
  const key = `${resourceType}/${id}`;
  const record = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  if (!record) throw errors.notFound(`${key} is not known`);
  if (record.deleted) throw errors.gone(`${key} was deleted (version ${record.versionId})`);
  return respond(req, match, ctx, record, key);
}

export async function vread(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const { resourceType, id, versionId } = match as Required<Pick<RouteMatch, 'resourceType' | 'id' | 'versionId'>>;
  const key = `${resourceType}/${id}`;
  const n = /^\d{1,10}$/.test(versionId) ? Number(versionId) : NaN;
  const pending = ctx.work.written(key)?.record;
  const record = pending?.versionId === n ? pending : Number.isNaN(n) ? undefined : await ctx.repo.version(resourceType, id, n);
  if (!record) throw errors.notFound(`${key}/_history/${versionId} is not known`);
  if (record.deleted) throw errors.gone(`${key} version ${versionId} is a deletion`);
  return respond(req, match, ctx, record, key);
}

async function respond(req: FhirRequest, match: RouteMatch, ctx: InteractionContext, record: VersionRecord, key: string): Promise<FhirResponse> {
  const headers = { etag: etagOf(record), lastModified: httpDate(record.lastUpdated) };
  if (notModified(req, record)) {
    await ctx.work.record(auditEntry(ctx, match, 304, { entity: [entityOfRecord(record)] }));
    return { status: 304, headers };
  }
  const pending = ctx.work.written(key);
  const raw = pending?.record === record && pending.plaintext ? pending.plaintext : await ctx.repo.open(record);
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [entityOfRecord(record)] }));
  return { status: 200, body: { raw }, headers };
}

function notModified(req: FhirRequest, record: VersionRecord): boolean {
  const { ifNoneMatch, ifModifiedSince } = req.headers;
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || versionOfEtag(tag) === record.versionId);
  }
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince);
    // HTTP dates have second precision: compare at that precision.
    return !Number.isNaN(since) && Math.floor(Date.parse(record.lastUpdated) / 1000) * 1000 <= since;
  }
  return false;
}
