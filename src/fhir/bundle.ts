/**
 * batch and transaction Bundles at POST [base] (http://hl7.org/fhir/R4/http.html#transaction).
 * Every entry goes back through the same router as a plain request. A batch runs entries independently, each
 * committed on its own. A transaction assigns ids to its creates, rewrites `urn:uuid:` references, locks every
 * resource it touches, runs DELETE, POST, PUT/PATCH, GET in that order and commits everything — versions and
 * audit entries alike — in ONE synced batch, or nothing.
 * Conditional entries (`ifNoneExist`, `PUT|PATCH|DELETE [type]?[search]`) and conditional references
 * (`Practitioner?identifier=…`, http://hl7.org/fhir/R4/bundle.html#references) are resolved first, under the
 * locks of their conditions, so a `urn:uuid:` that names a conditional create which matched points at the resource
 * it matched, and every reference is rewritten before anything runs.
 */
import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import { errors, FhirError } from '../errors.ts';
import { auditEntry } from './audit.ts';
import { conditionalOutcome, conditionalReference, conditionLockKey, criteriaOf, matchIds, parseCondition, type ConditionalKind } from './conditional.ts';
import { resourceBody } from './interactions/write-common.ts';
import { outcomeOf, toFhirError } from './outcome.ts';
import { replacePlaceholders, visitReferences } from './references.ts';
import type { Model } from './validation/model.ts';
import { extractEntries, type IndexEntry } from './search/extract.ts';
import { matchesEntries } from './search/memory-match.ts';
import { decodeBody, parseJsonBody } from './http/json-body.ts';
import { isJsonPatchContentType } from './patch/index.ts';
import { base64Error } from './validation/primitives.ts';
import { parseStored } from './repository.ts';
import { isJson, isNdjson, isRaw, parseQuery, splitUrl, type FhirRequest, type FhirResponse, type InteractionContext } from './request.ts';
import { matchRoute, type RouteMatch } from './route.ts';
import { dispatch } from './router.ts';
import type { WorkUnit } from './work.ts';
import { RESOURCE_TYPES } from './validate.ts';

export const MAX_BUNDLE_ENTRIES = 10_000;
const RESOURCE_TYPE_NAMES = new Set<string>(RESOURCE_TYPES);
const METHOD_ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface PlannedEntry {
  index: number;
  request: FhirRequest;
  match: RouteMatch;
  /** Id assigned up front to a create, so that references to its fullUrl can be rewritten before anything runs. */
  assignedId?: string;
  /** The id a conditional entry resolved to (the match, or the id its create will have). */
  target?: string;
  /** A conditional create whose condition matched: it stands for that resource and writes nothing. */
  matched?: boolean;
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
  const limit = ctx.maxBundleEntries ?? MAX_BUNDLE_ENTRIES;
  if (entries.length > limit) throw errors.tooLarge(`A Bundle may hold at most ${limit} entries, this one has ${entries.length}`);
  const prefer = req.headers.prefer;
  return bundle.type === 'batch' ? runBatch(entries, match, ctx, prefer) : runTransaction(entries, match, ctx, prefer);
}

/**
 * Entries of a batch run concurrently, at most this many at once: they are independent by definition
 * (http://hl7.org/fhir/R4/http.html#brules), their own locks still serialize entries on the same resource or
 * condition, and their commits share the ledger's group commit instead of paying one fsync each.
 */
const BATCH_CONCURRENCY = 8;

async function runBatch(entries: BundleEntry[], match: RouteMatch, ctx: InteractionContext, prefer: string | undefined): Promise<FhirResponse> {
  const responses: BundleEntry[] = new Array(entries.length);
  let fatal: FhirError | undefined;
  const one = async (index: number, work: WorkUnit) => {
    try {
      const planned = planEntry(entries[index]!, index, ctx.baseUrl, prefer);
      checkEntryRoute(planned.match, index);
      rewriteReferences([planned], entries, ctx.baseUrl, ctx.validator.model, new Map(), await resolveConditionalReferences([planned], ctx, (_p, err) => toFhirError(err)));
      const response = await dispatch(planned.request, planned.match, { ...ctx, work });
      responses[index] = responseEntry(response, prefer);
    } catch (err) {
      work.release();
      const error = toFhirError(err);
      if (error.code === 'ERR_LEDGER_UNAVAILABLE') fatal ??= error;
      responses[index] = { response: { status: statusLine(error.status), outcome: outcomeOf(error.issues) } };
    }
  };
  const running = new Set<Promise<void>>();
  for (let index = 0; index < entries.length && !fatal; index++) {
    // Work units are created in entry order (the bulk importer relies on it to tell entries apart).
    const task: Promise<void> = one(index, ctx.newWork(false)).finally(() => running.delete(task));
    running.add(task);
    if (running.size >= BATCH_CONCURRENCY) await Promise.race(running);
  }
  await Promise.all(running);
  if (fatal) throw fatal;
  await ctx.work.record(auditEntry(ctx, match, 200));
  return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', entry: responses } };
}

async function runTransaction(entries: BundleEntry[], match: RouteMatch, ctx: InteractionContext, prefer: string | undefined): Promise<FhirResponse> {
  const planned = entries.map((entry, index) => planEntry(entry, index, ctx.baseUrl, prefer));
  for (const p of planned) checkEntryRoute(p.match, p.index);

  const work = ctx.newWork(true);
  const results = new Map<number, FhirResponse>();
  try {
    // Conditions first: their locks are taken before any resource lock (their keys sort first), and held to the commit.
    const conditions = planned.flatMap((p) => {
      const condition = conditionOf(p);
      return condition ? [{ p, ...condition }] : [];
    });
    await work.lock(conditions.map((c) => conditionLockKey(c.p.match.resourceType!, c.query)));
    // In processing order, each condition sees the store and what the entries before it will write.
    const writes = new TransactionWrites(ctx);
    const conditionOfEntry = new Map(conditions.map((c) => [c.p, c]));
    for (const p of [...planned].sort((a, b) => METHOD_ORDER[a.request.method]! - METHOD_ORDER[b.request.method]! || a.index - b.index)) {
      const condition = conditionOfEntry.get(p);
      if (condition) await resolveEntry(p, condition.kind, condition.query, ctx, writes);
      writes.note(p);
    }
    const references = assignIds(planned, entries, ctx);
    rewriteReferences(planned, entries, ctx.baseUrl, ctx.validator.model, references, await resolveConditionalReferences(planned, ctx, atEntry, writes));
    checkDistinctTargets(planned);

    await work.lock(planned.flatMap((p) => {
      const id = targetOf(p);
      return p.match.resourceType && id && !p.matched ? [`${p.match.resourceType}/${id}`] : [];
    }));
    for (const group of methodGroups(planned)) {
      await runConcurrently(group, TRANSACTION_CONCURRENCY, async (entry) => {
        try {
          results.set(entry.index, await dispatch(entry.request, entry.match, { ...ctx, work }));
        } catch (err) {
          throw atEntry(entry, err);
        }
      });
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

/**
 * Entries of one method group run together: their targets are distinct (checkDistinctTargets) and locked, their ids
 * assigned and references rewritten, so none depends on another of its group; writes overlap their validation on
 * the analysis workers. The groups still run in the spec's order, DELETE, POST, PUT/PATCH, GET.
 */
const TRANSACTION_CONCURRENCY = 16;

function methodGroups(planned: PlannedEntry[]): PlannedEntry[][] {
  const groups = new Map<number, PlannedEntry[]>();
  for (const p of planned) {
    // A conditional create that matched writes nothing and answers with the resource it matched, which may be
    // another entry's create: it runs once the creates are done.
    const order = p.matched ? 1.5 : METHOD_ORDER[p.request.method]!;
    if (!groups.has(order)) groups.set(order, []);
    groups.get(order)!.push(p);
  }
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, group]) => group);
}

/**
 * Runs `task` over the items, at most `limit` at once. Once one fails no more start; when those running have
 * settled, the failure of the earliest item is thrown (the same one whatever the timing).
 */
async function runConcurrently<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const failures = new Map<number, unknown>();
  let next = 0;
  const lane = async () => {
    while (next < items.length && failures.size === 0) {
      const index = next++;
      try {
        await task(items[index]!);
      } catch (err) {
        failures.set(index, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
}

/** A failure inside a transaction, named by the entry it happened at. */
function atEntry(entry: PlannedEntry, err: unknown): FhirError {
  const error = toFhirError(err);
  if (error.message.startsWith('Transaction failed at Bundle.entry[')) return error;
  return new FhirError(`Transaction failed at Bundle.entry[${entry.index}] (${entry.request.method} ${entry.request.path}): ${error.message}`, {
    status: error.status,
    code: error.code,
    issueType: error.issueType,
    issues: error.issues.map((issue) => ({
      ...issue,
      diagnostics: `Bundle.entry[${entry.index}]: ${issue.diagnostics ?? error.message}`,
      expression: [...(issue.expression ?? []), `Bundle.entry[${entry.index}]`],
    })),
    cause: error,
  });
}

/** The condition of a conditional entry: `ifNoneExist` on a create, the query of a type-level PUT/PATCH/DELETE. */
function conditionOf(p: PlannedEntry): { kind: ConditionalKind; query: Record<string, string[]> } | undefined {
  const { match, request } = p;
  try {
    if (match.interaction === 'create' && request.headers.ifNoneExist !== undefined) {
      return { kind: 'create', query: parseCondition(request.headers.ifNoneExist, match.resourceType!, `Bundle.entry[${p.index}].request.ifNoneExist`) };
    }
    if ((match.interaction === 'update' || match.interaction === 'patch' || match.interaction === 'delete') && match.id === undefined) {
      return { kind: match.interaction, query: criteriaOf(request.query, `Bundle.entry[${p.index}].request.url`) };
    }
  } catch (err) {
    throw atEntry(p, err);
  }
  return undefined;
}

/**
 * What a transaction's entries will write, as its conditions see it (http.html#trules processes DELETE, POST, then
 * PUT/PATCH): two conditional creates of the same identifier make one resource, and a conditional reference finds a
 * resource created in the same transaction, as HAPI does. Resources are matched on their bodies as sent (before
 * `urn:uuid:` references are rewritten), from their plaintext index entries (search/memory-match.ts); a condition
 * that needs the stored index (a chain, `_has`) sees only the store. A resource the transaction deletes is not
 * matched in the store any more.
 */
class TransactionWrites {
  readonly #ctx: InteractionContext;
  /** Index entries are extracted only when a condition on that type asks: most transactions (imports) have none. */
  readonly #written: Array<{ type: string; id: string; body: Resource; entries?: IndexEntry[] }> = [];
  readonly #deleted = new Set<string>();

  constructor(ctx: InteractionContext) {
    this.#ctx = ctx;
  }

  /** Records what `p` will write, once its condition (if any) is resolved; gives a create its id now. */
  note(p: PlannedEntry): void {
    const type = p.match.resourceType;
    if (!type) return;
    const { interaction } = p.match;
    if (interaction === 'delete') {
      const id = targetOf(p);
      if (id) this.#deleted.add(`${type}/${id}`);
      return;
    }
    if (interaction === 'create' && !p.matched) p.request.assignedId = p.assignedId ??= this.#ctx.repo.newId();
    const body = p.request.body;
    const id = targetOf(p);
    if ((interaction !== 'create' && interaction !== 'update') || p.matched || !id || !body || typeof body !== 'object' || Array.isArray(body)) return;
    if ((body as Resource).resourceType !== type) return; // the interaction refuses it
    this.#written.push({ type, id, body: body as Resource });
  }

  /** Ids of `type` matching `query`: in the store (less what this transaction deletes) and among its writes so far. */
  async matchIds(type: string, query: Record<string, string[]>): Promise<string[]> {
    const stored = (await matchIds(this.#ctx, type, query)).filter((id) => !this.#deleted.has(`${type}/${id}`));
    const candidates = this.#written.filter((w) => w.type === type);
    if (candidates.length === 0) return stored;
    const { filters } = this.#ctx.repo.search.parse(type, query);
    const ids = new Set(stored);
    for (const w of candidates) {
      w.entries ??= extractEntries({ ...w.body, id: w.id }, { baseUrl: this.#ctx.baseUrl });
      if (matchesEntries(filters, w.entries) === true) ids.add(w.id);
    }
    return [...ids].sort();
  }
}

/** Resolves a conditional entry (its condition's lock is held) and records on the request what it found. */
async function resolveEntry(p: PlannedEntry, kind: ConditionalKind, query: Record<string, string[]>, ctx: InteractionContext, writes: TransactionWrites): Promise<void> {
  try {
    const ids = await writes.matchIds(p.match.resourceType!, query);
    const outcome = conditionalOutcome(kind, ids, `The condition of Bundle.entry[${p.index}]`);
    p.request.resolvedIds = ids;
    if (outcome.action === 'match') {
      p.target = outcome.id;
      p.matched = kind === 'create';
    } else if (outcome.action === 'create' && kind === 'update') {
      const bodyId = (p.request.body as { id?: unknown } | undefined)?.id;
      p.target = p.request.assignedId = typeof bodyId === 'string' ? bodyId : ctx.repo.newId();
    }
  } catch (err) {
    throw atEntry(p, err);
  }
}

const targetOf = (p: PlannedEntry): string | undefined => p.match.id ?? p.target ?? p.assignedId;

function planEntry(entry: BundleEntry, index: number, baseUrl: string, prefer: string | undefined): PlannedEntry {
  const where = `Bundle.entry[${index}]`;
  const request = entry?.request;
  if (!request || typeof request.method !== 'string' || typeof request.url !== 'string') {
    throw errors.badRequest(`${where}.request needs a method and a url`, [`${where}.request`], 'ERR_BUNDLE_ENTRY');
  }
  if (entry.fullUrl !== undefined && typeof entry.fullUrl !== 'string') {
    throw errors.badRequest(`${where}.fullUrl must be a string`, [`${where}.fullUrl`], 'ERR_BUNDLE_ENTRY');
  }
  const method = request.method.toUpperCase();
  if (METHOD_ORDER[method] === undefined) throw errors.badRequest(`${where}.request.method '${method.slice(0, 10)}' is not supported`, [`${where}.request.method`], 'ERR_BUNDLE_ENTRY');
  let url = request.url;
  if (url.startsWith(`${baseUrl}/`)) url = url.slice(baseUrl.length + 1);
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) throw errors.badRequest(`${where}.request.url must be relative to this server`, [`${where}.request.url`], 'ERR_BUNDLE_ENTRY');
  const [path, search] = splitUrl(url);
  const query = parseQuery(search);
  const headers: FhirRequest['headers'] = {};
  // They stand for HTTP headers, which are text: anything else (a number from a careless client) is refused here
  // rather than reaching the header parsers as a value they cannot handle.
  for (const name of ['ifMatch', 'ifNoneMatch', 'ifModifiedSince', 'ifNoneExist'] as const) {
    const value: unknown = request[name];
    // An empty ifNoneExist stays: it asks for a conditional create without criteria, which create.ts refuses as
    // the empty If-None-Exist header is refused, rather than making a plain create of it.
    if (value === undefined || value === null || (value === '' && name !== 'ifNoneExist')) continue;
    if (typeof value !== 'string') throw errors.badRequest(`${where}.request.${name} must be a string`, [`${where}.request.${name}`], 'ERR_BUNDLE_ENTRY');
    headers[name] = value;
  }
  if (prefer) headers.prefer = prefer;
  const fhirRequest: FhirRequest = { method, path, query, headers };
  if (entry.resource !== undefined) fhirRequest.body = entry.resource;
  if (method === 'PATCH' && isJsonPatchBinary(entry.resource)) {
    fhirRequest.body = jsonPatchOf(entry.resource, where);
    headers.contentType = 'application/json-patch+json';
  }
  let match: RouteMatch;
  try {
    match = matchRoute(method, path);
  } catch (err) {
    const error = toFhirError(err);
    throw new FhirError(`${where}: ${error.message}`, { status: error.status, code: error.code, issueType: error.issueType, expression: [`${where}.request.url`] });
  }
  return { index, request: fhirRequest, match };
}

/**
 * A JSON Patch travels in a Bundle as a Binary whose contentType is application/json-patch+json and whose data is
 * the patch document (a Bundle entry holds resources only). HAPI, Oracle's and other servers read it so; a
 * FHIRPath Patch is the Parameters resource itself.
 */
function isJsonPatchBinary(resource: unknown): resource is { resourceType: 'Binary'; contentType?: unknown; data?: unknown } {
  const r = resource as { resourceType?: unknown; contentType?: unknown } | null | undefined;
  return r?.resourceType === 'Binary' && typeof r.contentType === 'string' && isJsonPatchContentType(r.contentType);
}

/** Deepest patch document accepted (the request body's own limit does not see inside base64). */
const MAX_PATCH_DEPTH = 64;

function jsonPatchOf(binary: { data?: unknown }, where: string): unknown {
  const data = binary.data;
  const expression = [`${where}.resource.data`];
  if (typeof data !== 'string' || base64Error(data) !== undefined) {
    throw errors.badRequest(`${where}: a JSON Patch Binary needs its patch document as base64 data`, expression, 'ERR_BUNDLE_ENTRY');
  }
  try {
    return parseJsonBody(decodeBody(Buffer.from(data, 'base64'), undefined), MAX_PATCH_DEPTH);
  } catch (err) {
    const error = toFhirError(err);
    throw errors.badRequest(`${where}: the JSON Patch in the Binary: ${error.message}`, expression, 'ERR_BUNDLE_ENTRY');
  }
}

/** Gives every create its id now and maps each entry's fullUrl to the reference it will have. */
function assignIds(planned: PlannedEntry[], entries: BundleEntry[], ctx: InteractionContext): Map<string, string> {
  const references = new Map<string, string>();
  for (const p of planned) {
    if (p.match.interaction === 'create' && !p.matched) p.request.assignedId = p.assignedId ??= ctx.repo.newId();
    const fullUrl = entries[p.index]!.fullUrl;
    const id = targetOf(p);
    if (fullUrl && p.match.resourceType && id) {
      if (references.has(fullUrl)) throw errors.badRequest(`fullUrl ${fullUrl.slice(0, 100)} appears more than once`, [`Bundle.entry[${p.index}].fullUrl`], 'ERR_DUPLICATE_FULLURL');
      references.set(fullUrl, `${p.match.resourceType}/${id}`);
    }
  }
  return references;
}

/**
 * Resolves the conditional references (`Type?params`) of the entries' resources, each distinct one once: exactly
 * one match becomes `Type/id`; none is a 400 and several a 412, naming the first entry that holds it.
 */
async function resolveConditionalReferences(
  planned: PlannedEntry[],
  ctx: InteractionContext,
  wrap: (p: PlannedEntry, err: unknown) => FhirError = atEntry,
  writes?: TransactionWrites,
): Promise<Map<string, string>> {
  const firstUse = new Map<string, PlannedEntry>();
  for (const p of planned) {
    visitReferences(p.request.body, (reference) => {
      if (!firstUse.has(reference) && conditionalReference(reference)) firstUse.set(reference, p);
      return undefined;
    });
  }
  const resolved = new Map<string, string>();
  for (const [reference, p] of firstUse) {
    const { resourceType, search } = conditionalReference(reference)!;
    try {
      if (!RESOURCE_TYPE_NAMES.has(resourceType)) throw errors.badRequest(`Conditional reference ${reference.slice(0, 200)} names an unknown resource type`, undefined, 'ERR_CONDITIONAL_REFERENCE');
      const query = parseCondition(search, resourceType, `Conditional reference ${reference.slice(0, 200)}`);
      const ids = writes ? await writes.matchIds(resourceType, query) : await matchIds(ctx, resourceType, query);
      if (ids.length === 0) throw errors.badRequest(`Conditional reference ${reference.slice(0, 200)} matches no resource`, undefined, 'ERR_CONDITIONAL_REFERENCE_NO_MATCH');
      if (ids.length > 1) throw errors.preconditionFailed(`Conditional reference ${reference.slice(0, 200)} matches more than one resource`, 'ERR_CONDITIONAL_REFERENCE_MULTIPLE_MATCHES');
      resolved.set(reference, `${resourceType}/${ids[0]}`);
    } catch (err) {
      throw wrap(p, err);
    }
  }
  return resolved;
}

/**
 * Replaces what names another entry's fullUrl (http://hl7.org/fhir/R4/bundle.html#references): a Reference.reference
 * that is the fullUrl, or a relative one that resolves to it against the referring entry's own fullUrl (or, without
 * an absolute one, the server's base); `urn:uuid:` placeholders in uri elements and narrative links
 * (references.ts replacePlaceholders); and resolved conditional references.
 */
function rewriteReferences(planned: PlannedEntry[], entries: BundleEntry[], baseUrl: string, model: Model, references: Map<string, string>, conditional: Map<string, string>): void {
  if (references.size === 0 && conditional.size === 0) return;
  for (const p of planned) {
    if (p.request.body && typeof p.request.body === 'object') {
      const base = `${serviceBaseOf(entries[p.index]!.fullUrl) ?? baseUrl}/`;
      p.request.body = replacePlaceholders(
        p.request.body,
        model,
        (reference) => references.get(reference) ?? conditional.get(reference) ?? (RELATIVE_REFERENCE.test(reference) ? references.get(base + reference) : undefined),
        (urn) => references.get(urn),
      );
    }
  }
}

/** `Type/id` or `Type/id/_history/v`: the relative forms bundle.html#references resolves against a base. */
const RELATIVE_REFERENCE = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** The service base of an absolute RESTful fullUrl (`http://example.org/fhir/Patient/abc` → `http://example.org/fhir`). */
function serviceBaseOf(fullUrl: string | undefined): string | undefined {
  const m = fullUrl === undefined ? null : /^(https?:\/\/.+)\/[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.exec(fullUrl);
  return m?.[1];
}

function checkDistinctTargets(planned: PlannedEntry[]): void {
  const seen = new Map<string, number>();
  for (const p of planned) {
    if (p.request.method === 'GET' || p.request.method === 'HEAD' || p.matched) continue;
    const id = targetOf(p);
    if (!p.match.resourceType || !id) continue;
    const key = `${p.match.resourceType}/${id}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw errors.badRequest(`Bundle.entry[${earlier}] and Bundle.entry[${p.index}] both change ${key}`, [`Bundle.entry[${p.index}]`], 'ERR_DUPLICATE_TARGET');
    }
    seen.set(key, p.index);
  }
}

/** What a Bundle entry may not ask for: another Bundle, or a bulk export (asynchronous, its files streamed). */
function checkEntryRoute(match: RouteMatch, index: number): void {
  if (match.interaction === 'batch') throw errors.badRequest('A Bundle entry may not itself be a batch or transaction', [`Bundle.entry[${index}]`], 'ERR_NESTED_BUNDLE');
  if (match.operation?.startsWith('$export')) {
    throw errors.badRequest('Bulk export is asynchronous: kick it off at [base]/$export or [base]/Patient/$export, not in a Bundle', [`Bundle.entry[${index}]`], 'ERR_EXPORT_IN_BUNDLE');
  }
}

function responseEntry(response: FhirResponse, prefer: string | undefined): BundleEntry {
  const out: BundleEntryResponse = { status: statusLine(response.status) };
  if (response.headers?.location) out.location = response.headers.location;
  if (response.headers?.etag) out.etag = response.headers.etag;
  if (response.headers?.lastModified) out.lastModified = response.headers.lastModified;
  const entry: BundleEntry = { response: out };
  const body = response.body;
  if (body === undefined) return entry;
  // checkEntryRoute keeps the only interactions answering these (bulk export) out of Bundles.
  if (isNdjson(body) || isJson(body)) throw errors.internal('A Bundle entry answered with a bulk export body', 'ERR_EXPORT_IN_BUNDLE');
  const resource = isRaw(body) ? parseStored(body.raw) : body;
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
