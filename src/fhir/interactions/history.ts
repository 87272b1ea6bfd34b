/**
 * history (http://hl7.org/fhir/R4/http.html#history) at instance, type and system level, newest first, with
 * `_count`, `_since` and paging links. Pages are cut by a cursor on the ledger index (type/system) or version
 * number (instance), so writes that happen while a client pages never shift or repeat entries.
 */
import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry } from '../audit.ts';
import { parseStored, type HistoryPage, type VersionRecord } from '../repository.ts';
import { etagOf } from '../audit.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { parseCount, parseCursor, parseInstant, rejectUnknownParameters } from './parameters.ts';

const HISTORY_PARAMETERS = new Set(['_count', '_since', '_cursor']);

export async function history(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  rejectUnknownParameters(req, HISTORY_PARAMETERS, 'history');
  const count = parseCount(req.query, 50, 1000);
  const since = parseInstant(req.query, '_since');
  const before = parseCursor(req.query);
  const page: { count: number; before?: number; since?: string } = { count };
  if (before !== undefined) page.before = before;
  if (since !== undefined) page.since = since;

  // _count=0 asks for no entries, as it does of a search: the Bundle then holds only the total, where there is one
  const none: HistoryPage = { records: [] };
  let result: HistoryPage;
  let selfPath: string;
  let total: number | undefined;
  if (match.interaction === 'history-instance') {
    const { resourceType, id } = match as Required<Pick<RouteMatch, 'resourceType' | 'id'>>;
    const head = await ctx.repo.head(resourceType, id);
    if (!head) throw errors.notFound(`${resourceType}/${id} is not known`);
    result = count === 0 ? none : await ctx.repo.historyInstance(resourceType, id, page);
    selfPath = `${resourceType}/${id}/_history`;
    // the whole history (every version is kept: versionIds 1…n), given when no _since or cursor cuts it
    if (before === undefined && since === undefined && (count === 0 || result.next === undefined)) total = head.versionId;
  } else {
    result = count === 0 ? none : await ctx.repo.history(match.resourceType, page);
    selfPath = match.resourceType ? `${match.resourceType}/_history` : '_history';
  }

  // every version's block requested at once (see searchBundle); deletions have none
  const [contents, created] = await Promise.all([ctx.repo.openMany(result.records.filter((r) => !r.deleted)), ctx.repo.createdBy(result.records)]);
  let opened = 0;
  const entries = result.records.map((record, i) => historyEntry(ctx, record, record.deleted ? undefined : contents[opened++], created[i]!));
  const patients = [...new Set(result.records.flatMap((r) => (r.patient ? [`Patient/${r.patient}`] : [])))];
  const entity = match.resourceType ? [{ reference: match.id ? `${match.resourceType}/${match.id}` : match.resourceType }] : [];
  await ctx.work.record(auditEntry(ctx, match, 200, { entity, ...(patients.length ? { patients } : {}) }));

  const link: BundleLink[] = [{ relation: 'self', url: pageUrl(ctx.baseUrl, selfPath, count, since, before) }];
  if (result.next !== undefined) link.push({ relation: 'next', url: pageUrl(ctx.baseUrl, selfPath, count, since, result.next) });
  const bundle: Bundle = { resourceType: 'Bundle', type: 'history', link, entry: entries };
  if (total !== undefined) bundle.total = total;
  return { status: 200, body: bundle };
}

/**
 * One version as its write was answered: 201 when it created the resource (update-as-create too), else 200, a
 * deletion included (delete.ts answers 200 with an OperationOutcome, in a Bundle as alone).
 */
function historyEntry(ctx: InteractionContext, record: VersionRecord, plaintext: Uint8Array | undefined, created: boolean): BundleEntry {
  const path = `${record.resourceType}/${record.id}`;
  const entry: BundleEntry = {
    fullUrl: `${ctx.baseUrl}/${path}`,
    request: { method: record.method, url: record.method === 'POST' ? record.resourceType : path },
    response: {
      status: created ? '201 Created' : '200 OK',
      etag: etagOf(record),
      lastModified: record.lastUpdated,
    },
  };
  if (plaintext) entry.resource = parseStored(plaintext);
  return entry;
}

function pageUrl(baseUrl: string, path: string, count: number, since: string | undefined, cursor: number | undefined): string {
  const params = new URLSearchParams({ _count: String(count) });
  if (since !== undefined) params.set('_since', since);
  if (cursor !== undefined) params.set('_cursor', String(cursor));
  return `${baseUrl}/${path}?${params.toString()}`;
}
