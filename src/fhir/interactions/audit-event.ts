/**
 * AuditEvent, a virtual read-only type served from the ledger (docs/ledger.md §10): read
 * (http://hl7.org/fhir/R4/http.html#read, id = ledger index), vread of version 1, and search
 * (http://hl7.org/fhir/R4/http.html#search) by patient, agent, entity, date, action, outcome and subtype. Every
 * other interaction is 405. Only auditors may look (src/consent/auditor.ts); looking is itself audited.
 *
 * Search reads candidates newest first from one derived index (src/ledger/audit-index.ts) and examines at most
 * SCAN_LIMIT entries per request, so its cost never grows with the ledger: a page may come back short, with a
 * `next` link that continues below the last index examined.
 */
import type { Bundle, BundleEntry, BundleLink, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { mayAudit } from '../../consent/auditor.ts';
import { errors } from '../../errors.ts';
import { renderAuditEvent } from '../../ledger/audit-event.ts';
import type { AuditIndex } from '../../ledger/audit-index.ts';
import { matches, parseAuditSearch, plan, type AuditCriteria } from '../../ledger/audit-search.ts';
import { parseEntry, toBase64 } from '../../ledger/entry.ts';
import type { Ledger } from '../../ledger/log.ts';
import type { Entry } from '../../ledger/types.ts';
import { auditEntry } from '../audit.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';

/** What the AuditEvent view reads: the ledger and its search index. */
export interface AuditLog {
  ledger: Ledger;
  index: AuditIndex;
}

/** What the CapabilityStatement says of AuditEvent (replacing the generic entry of every other type). */
export const AUDIT_EVENT_CAPABILITY: Partial<CapabilityStatementRestResource> = {
  interaction: [{ code: 'read' }, { code: 'vread' }, { code: 'search-type' }],
  versioning: 'no-version',
  readHistory: false,
  updateCreate: false,
  conditionalCreate: false,
  conditionalRead: 'not-supported',
  conditionalUpdate: false,
  conditionalDelete: 'not-supported',
  operation: [],
  documentation: 'Read-only view of the audit ledger (IHE BALP); id = ledger index. Needs the auditor role or system/AuditEvent.rs.',
  searchParam: ([['patient', 'reference'], ['agent', 'reference'], ['entity', 'reference'], ['date', 'date'], ['action', 'token'], ['outcome', 'token'], ['subtype', 'token']] as const)
    .map(([name, type]) => ({ name, type, definition: `http://hl7.org/fhir/SearchParameter/AuditEvent-${name}` })),
};

/** Most entries one search request examines. */
export const SCAN_LIMIT = 5000;

export async function auditEvent(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  if (!['read', 'vread', 'search-type'].includes(match.interaction)) {
    throw errors.methodNotAllowed('AuditEvent is read-only: it is a view of the audit ledger');
  }
  if (!ctx.principal || !mayAudit(ctx.principal)) {
    throw errors.forbidden('Viewing AuditEvents needs the auditor role or system/AuditEvent.rs', 'ERR_NOT_AUDITOR');
  }
  const log = ctx.auditLog;
  if (!log) throw errors.internal('The AuditEvent view has no ledger', 'ERR_NOT_IMPLEMENTED');
  return match.interaction === 'search-type' ? search(req, match, ctx, log) : read(match, ctx, log);
}

async function read(match: RouteMatch, ctx: InteractionContext, log: AuditLog): Promise<FhirResponse> {
  const id = match.id!;
  const seq = /^(0|[1-9]\d{0,15})$/.test(id) ? Number(id) : -1;
  if (seq < 0 || seq >= log.ledger.size() || (match.versionId !== undefined && match.versionId !== '1')) {
    throw errors.notFound(`AuditEvent/${id}${match.versionId ? `/_history/${match.versionId}` : ''} is not known`);
  }
  const [stored] = await log.ledger.getEntries(seq, seq + 1);
  const event = renderAuditEvent(parseEntry(stored!.bytes, seq), { baseUrl: ctx.baseUrl, leafHash: toBase64(stored!.leafHash) });
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [{ reference: `AuditEvent/${seq}`, version: '1' }] }));
  return { status: 200, body: event, headers: { etag: 'W/"1"', lastModified: event.recorded } };
}

/** Candidate indexes below `before`, newest first, at most `limit`. */
async function candidates(criteria: AuditCriteria, log: AuditLog, before: number, limit: number): Promise<number[]> {
  const how = plan(criteria);
  if (!how) {
    const out: number[] = [];
    for (let seq = before - 1; seq >= 0 && out.length < limit; seq--) out.push(seq);
    return out;
  }
  const lists: number[][] = [];
  const sources = 'values' in how ? how.values.map((eq) => ({ eq })) : [{ gte: how.from, lt: how.to }];
  for (const range of sources) {
    const list: number[] = [];
    for await (const seq of log.index.seqs(how.key, range, before)) {
      list.push(seq);
      if (list.length >= limit) break;
    }
    lists.push(list);
  }
  return [...new Set(lists.flat())].sort((a, b) => b - a).slice(0, limit);
}

async function search(req: FhirRequest, match: RouteMatch, ctx: InteractionContext, log: AuditLog): Promise<FhirResponse> {
  const criteria = parseAuditSearch(req.query);
  const size = log.ledger.size();
  const before = Math.min(criteria.cursor ?? size, size);
  const seqs = await candidates(criteria, log, before, SCAN_LIMIT);
  const found: Array<{ entry: Entry; leafHash: string }> = [];
  let examined = 0;
  for (const seq of seqs) {
    examined++;
    const [stored] = await log.ledger.getEntries(seq, seq + 1);
    const entry = parseEntry(stored!.bytes, seq);
    if (matches(entry, criteria)) found.push({ entry, leafHash: toBase64(stored!.leafHash) });
    if (found.length === criteria.count) break;
  }
  const last = seqs[examined - 1];
  const more = last !== undefined && last > 0 && (examined < seqs.length || seqs.length === SCAN_LIMIT);

  const params = new URLSearchParams();
  for (const [name, list] of Object.entries(req.query)) if (name !== '_cursor') for (const v of list) params.append(name, v);
  const link = (relation: string, cursor?: number): BundleLink => {
    const p = new URLSearchParams(params);
    if (cursor !== undefined) p.set('_cursor', String(cursor));
    const qs = p.toString();
    return { relation, url: `${ctx.baseUrl}/AuditEvent${qs ? `?${qs}` : ''}` };
  };
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    link: [link('self', criteria.cursor), ...(more ? [link('next', last)] : [])],
    entry: found.map(({ entry, leafHash }): BundleEntry => ({
      fullUrl: `${ctx.baseUrl}/AuditEvent/${entry.seq}`,
      resource: renderAuditEvent(entry, { baseUrl: ctx.baseUrl, leafHash }),
      search: { mode: 'match' },
    })),
  };
  const query = params.toString();
  // Like every search (docs/ledger.md §1, BALP Query): what was searched and the query, never the results.
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [{ reference: 'AuditEvent' }], ...(query ? { query } : {}) }));
  return { status: 200, body: bundle };
}
