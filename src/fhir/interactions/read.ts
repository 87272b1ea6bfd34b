/**
 * read (http://hl7.org/fhir/R4/http.html#read) and vread (http://hl7.org/fhir/R4/http.html#vread), with the
 * conditional read headers If-None-Match and If-Modified-Since (http://hl7.org/fhir/R4/http.html#cread), and
 * `_summary` / `_elements` as on a search (HAPI and Medplum take them on reads too; the subset is marked
 * SUBSETTED). The ledger entry is durable before any byte of the resource leaves.
 */
import type { Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry, entityOfRecord, etagOf, versionOfEtag } from '../audit.ts';
import { parseStored, type VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { elementsParameter, presentValues, summaryParameter, type Summary } from '../search/params.ts';
import { subset } from '../search/summary.ts';

export async function read(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const { resourceType, id } = match as Required<Pick<RouteMatch, 'resourceType' | 'id'>>;
  const shape = subsetOf(req);
  const key = `${resourceType}/${id}`;
  const record = await ctx.work.head(key, () => ctx.repo.head(resourceType, id));
  if (!record) throw errors.notFound(`${key} is not known`);
  if (record.deleted) throw errors.gone(`${key} was deleted (version ${record.versionId})`);
  return respond(req, match, ctx, record, key, shape);
}

export async function vread(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const { resourceType, id, versionId } = match as Required<Pick<RouteMatch, 'resourceType' | 'id' | 'versionId'>>;
  const shape = subsetOf(req);
  const key = `${resourceType}/${id}`;
  const n = /^\d{1,10}$/.test(versionId) ? Number(versionId) : NaN;
  const pending = ctx.work.written(key)?.record;
  const record = pending?.versionId === n ? pending : Number.isNaN(n) ? undefined : await ctx.repo.version(resourceType, id, n);
  if (!record) throw errors.notFound(`${key}/_history/${versionId} is not known`);
  if (record.deleted) throw errors.gone(`${key} version ${versionId} is a deletion`);
  return respond(req, match, ctx, record, key, shape);
}

type Shape = { summary?: Summary; elements?: string[] };

async function respond(req: FhirRequest, match: RouteMatch, ctx: InteractionContext, record: VersionRecord, key: string, { summary, elements }: Shape): Promise<FhirResponse> {
  const headers = { etag: etagOf(record), lastModified: record.lastUpdated };
  if (notModified(req, record)) {
    await ctx.work.record(auditEntry(ctx, match, 304, { entity: [entityOfRecord(record)] }));
    return { status: 304, headers };
  }
  const pending = ctx.work.written(key);
  const raw = pending?.record === record && pending.plaintext ? pending.plaintext : await ctx.repo.open(record);
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [entityOfRecord(record)] }));
  if (summary === undefined && elements === undefined) return { status: 200, body: { raw }, headers };
  const resource = parseStored(raw) as unknown as Record<string, unknown>;
  return { status: 200, body: subset(resource, summary, elements) as unknown as Resource, headers };
}

/** `_summary` (true, text, data or false: `count` is for searches) and `_elements` of a read, checked before any I/O. */
function subsetOf(req: FhirRequest): Shape {
  const out: Shape = {};
  // empty values are ignored, as in a search (params.ts)
  const summary = presentValues(req.query._summary);
  const elements = presentValues(req.query._elements);
  if (summary) out.summary = summaryParameter(summary, ['true', 'text', 'data', 'false']);
  if (elements) out.elements = elementsParameter(elements);
  return out;
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
