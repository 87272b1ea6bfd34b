/**
 * batch and transaction Bundles at POST [base] (http://hl7.org/fhir/R4/http.html#transaction).
 * Every entry goes back through the same router as a plain request. A batch runs entries independently, each
 * committed on its own. A transaction assigns ids to its creates, rewrites `urn:uuid:` references, locks every
 * resource it touches, runs DELETE, POST, PUT/PATCH, GET in that order and commits everything — versions and
 * audit entries alike — in ONE synced batch, or nothing.
 */
import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import { errors, FhirError } from '../errors.ts';
import { auditEntry } from './audit.ts';
import { resourceBody } from './interactions/write-common.ts';
import { outcomeOf, toFhirError } from './outcome.ts';
import { isRaw, type FhirRequest, type FhirResponse, type InteractionContext } from './request.ts';
import { matchRoute, type RouteMatch } from './route.ts';
import { dispatch } from './router.ts';

export const MAX_BUNDLE_ENTRIES = 10_000;
const METHOD_ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface PlannedEntry {
  index: number;
  request: FhirRequest;
  match: RouteMatch;
  /** Id assigned up front to a create, so that references to its fullUrl can be rewritten before anything runs. */
  assignedId?: string;
}

export async function processBundle(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const bundle = resourceBody(req) as Bundle;
  if (bundle.resourceType !== 'Bundle') throw errors.badRequest(`POST to the base URL takes a Bundle, got ${String(bundle.resourceType).slice(0, 64)}`, ['Bundle'], 'ERR_NOT_A_BUNDLE');
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw errors.badRequest(`Bundle.type must be batch or transaction, got '${String(bundle.type).slice(0, 40)}'`, ['Bundle.type'], 'ERR_BUNDLE_TYPE');
  }
  // The interaction is only known now; audit entries (including the router's failure entry) name it.
  match.interaction = bundle.type;
  const entries = bundle.entry ?? [];
  if (!Array.isArray(entries)) throw errors.badRequest('Bundle.entry must be an array', ['Bundle.entry'], 'ERR_BUNDLE_ENTRY');
  if (entries.length > MAX_BUNDLE_ENTRIES) throw errors.tooLarge(`A Bundle may hold at most ${MAX_BUNDLE_ENTRIES} entries, this one has ${entries.length}`);
  const prefer = req.headers.prefer;
  return bundle.type === 'batch' ? runBatch(entries, match, ctx, prefer) : runTransaction(entries, match, ctx, prefer);
}

async function runBatch(entries: BundleEntry[], match: RouteMatch, ctx: InteractionContext, prefer: string | undefined): Promise<FhirResponse> {
  const responses: BundleEntry[] = [];
  for (let index = 0; index < entries.length; index++) {
    const work = ctx.newWork(false);
    try {
      const planned = planEntry(entries[index]!, index, ctx.baseUrl, prefer);
      if (planned.match.interaction === 'batch') throw errors.badRequest('A Bundle entry may not itself be a batch or transaction', [`Bundle.entry[${index}]`], 'ERR_NESTED_BUNDLE');
      const response = await dispatch(planned.request, planned.match, { ...ctx, work });
      responses.push(responseEntry(response, prefer));
    } catch (err) {
      work.release();
      const error = toFhirError(err);
      if (error.code === 'ERR_LEDGER_UNAVAILABLE') throw error;
      responses.push({ response: { status: statusLine(error.status), outcome: outcomeOf(error.issues) } });
    }
  }
  await ctx.work.record(auditEntry(ctx, match, 200));
  return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', entry: responses } };
}

async function runTransaction(entries: BundleEntry[], match: RouteMatch, ctx: InteractionContext, prefer: string | undefined): Promise<FhirResponse> {
  const planned = entries.map((entry, index) => planEntry(entry, index, ctx.baseUrl, prefer));
  const references = assignIds(planned, entries, ctx);
  rewriteReferences(planned, references);
  checkDistinctTargets(planned);

  const work = ctx.newWork(true);
  const results = new Map<number, FhirResponse>();
  try {
    await work.lock(planned.flatMap((p) => (p.match.resourceType && (p.match.id ?? p.assignedId) ? [`${p.match.resourceType}/${p.match.id ?? p.assignedId}`] : [])));
    const ordered = [...planned].sort((a, b) => METHOD_ORDER[a.request.method]! - METHOD_ORDER[b.request.method]! || a.index - b.index);
    for (const entry of ordered) {
      try {
        results.set(entry.index, await dispatch(entry.request, entry.match, { ...ctx, work }));
      } catch (err) {
        const error = toFhirError(err);
        throw new FhirError(`Transaction failed at Bundle.entry[${entry.index}] (${entry.request.method} ${entry.request.path}): ${error.message}`, {
          status: error.status,
          code: error.code,
          issueType: error.issueType,
          issues: error.issues.map((issue) => ({ ...issue, expression: [...(issue.expression ?? []), `Bundle.entry[${entry.index}]`] })),
          cause: error,
        });
      }
    }
    await work.flush([auditEntry(ctx, match, 200)]);
  } catch (err) {
    work.discard();
    throw err;
  } finally {
    work.release();
  }
  const entry = planned.map((p) => responseEntry(results.get(p.index)!, prefer));
  return { status: 200, body: { resourceType: 'Bundle', type: 'transaction-response', entry } };
}

function planEntry(entry: BundleEntry, index: number, baseUrl: string, prefer: string | undefined): PlannedEntry {
  const where = `Bundle.entry[${index}]`;
  const request = entry?.request;
  if (!request || typeof request.method !== 'string' || typeof request.url !== 'string') {
    throw errors.badRequest(`${where}.request needs a method and a url`, [`${where}.request`], 'ERR_BUNDLE_ENTRY');
  }
  const method = request.method.toUpperCase();
  if (METHOD_ORDER[method] === undefined) throw errors.badRequest(`${where}.request.method '${method.slice(0, 10)}' is not supported`, [`${where}.request.method`], 'ERR_BUNDLE_ENTRY');
  let url = request.url;
  if (url.startsWith(`${baseUrl}/`)) url = url.slice(baseUrl.length + 1);
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) throw errors.badRequest(`${where}.request.url must be relative to this server`, [`${where}.request.url`], 'ERR_BUNDLE_ENTRY');
  const [path = '', search = ''] = url.split('?', 2);
  const query: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(search)) (query[name] ??= []).push(value);
  const headers: FhirRequest['headers'] = {};
  if (request.ifMatch) headers.ifMatch = request.ifMatch;
  if (request.ifNoneMatch) headers.ifNoneMatch = request.ifNoneMatch;
  if (request.ifModifiedSince) headers.ifModifiedSince = request.ifModifiedSince;
  if (request.ifNoneExist) headers.ifNoneExist = request.ifNoneExist;
  if (prefer) headers.prefer = prefer;
  const fhirRequest: FhirRequest = { method, path, query, headers };
  if (entry.resource !== undefined) fhirRequest.body = entry.resource;
  let match: RouteMatch;
  try {
    match = matchRoute(method, path);
  } catch (err) {
    const error = toFhirError(err);
    throw new FhirError(`${where}: ${error.message}`, { status: error.status, code: error.code, issueType: error.issueType, expression: [`${where}.request.url`] });
  }
  return { index, request: fhirRequest, match };
}

/** Gives every create its id now and maps each entry's fullUrl to the reference it will have. */
function assignIds(planned: PlannedEntry[], entries: BundleEntry[], ctx: InteractionContext): Map<string, string> {
  const references = new Map<string, string>();
  for (const p of planned) {
    if (p.match.interaction === 'batch') throw errors.badRequest('A Bundle entry may not itself be a batch or transaction', [`Bundle.entry[${p.index}]`], 'ERR_NESTED_BUNDLE');
    if (p.match.interaction === 'create') p.request.assignedId = p.assignedId = ctx.repo.newId();
    const fullUrl = entries[p.index]!.fullUrl;
    const id = p.assignedId ?? p.match.id;
    if (fullUrl && p.match.resourceType && id) {
      if (references.has(fullUrl)) throw errors.badRequest(`fullUrl ${fullUrl.slice(0, 100)} appears more than once`, [`Bundle.entry[${p.index}].fullUrl`], 'ERR_DUPLICATE_FULLURL');
      references.set(fullUrl, `${p.match.resourceType}/${id}`);
    }
  }
  return references;
}

/** Replaces every Reference.reference that names another entry's fullUrl (http://hl7.org/fhir/R4/bundle.html#references). */
function rewriteReferences(planned: PlannedEntry[], references: Map<string, string>): void {
  if (references.size === 0) return;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      for (const [key, value] of Object.entries(record)) {
        if (key === 'reference' && typeof value === 'string') {
          const target = references.get(value);
          if (target) record[key] = target;
        } else if (value && typeof value === 'object') {
          visit(value);
        }
      }
    }
  };
  for (const p of planned) {
    if (p.request.body && typeof p.request.body === 'object') {
      p.request.body = structuredClone(p.request.body);
      visit(p.request.body);
    }
  }
}

function checkDistinctTargets(planned: PlannedEntry[]): void {
  const seen = new Map<string, number>();
  for (const p of planned) {
    if (p.request.method === 'GET' || p.request.method === 'HEAD') continue;
    const id = p.match.id ?? p.assignedId;
    if (!p.match.resourceType || !id) continue;
    const key = `${p.match.resourceType}/${id}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw errors.badRequest(`Bundle.entry[${earlier}] and Bundle.entry[${p.index}] both change ${key}`, [`Bundle.entry[${p.index}]`], 'ERR_DUPLICATE_TARGET');
    }
    seen.set(key, p.index);
  }
}

function responseEntry(response: FhirResponse, prefer: string | undefined): BundleEntry {
  const out: BundleEntryResponse = { status: statusLine(response.status) };
  if (response.headers?.location) out.location = response.headers.location;
  if (response.headers?.etag) out.etag = response.headers.etag;
  if (response.headers?.lastModified) out.lastModified = new Date(response.headers.lastModified).toISOString();
  const entry: BundleEntry = { response: out };
  const body = response.body;
  if (body === undefined) return entry;
  const resource = isRaw(body) ? (JSON.parse(new TextDecoder().decode(body.raw)) as Resource) : body;
  if (resource.resourceType === 'OperationOutcome') out.outcome = resource;
  else if (!response.written || /return\s*=\s*representation/i.test(prefer ?? '')) entry.resource = resource;
  if (response.headers?.location) entry.fullUrl = response.headers.location.replace(/\/_history\/[^/]+$/, '');
  return entry;
}

const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed', 413: 'Payload Too Large',
  422: 'Unprocessable Entity', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

function statusLine(status: number): string {
  return REASONS[status] ? `${status} ${REASONS[status]}` : String(status);
}
