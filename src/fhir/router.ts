/**
 * The FHIR core's entry point: a FhirRequest in, a FhirResponse out, no HTTP in sight (Medplum's split).
 * Every interaction but capabilities is audited: interactions record their own success entries (with the
 * versions they write, in the same batch); this router records failures and denials, so none can be missed.
 */
import { FhirError } from '../errors.ts';
import { failureEntry, entityOfMatch } from './audit.ts';
import { processBundle } from './bundle.ts';
import { auditEvent } from './interactions/audit-event.ts';
import { create } from './interactions/create.ts';
import { remove } from './interactions/delete.ts';
import { everything } from './interactions/everything.ts';
import { exportOperation } from './interactions/export.ts';
import { history } from './interactions/history.ts';
import { search } from './interactions/search.ts';
import { patch } from './interactions/patch.ts';
import { read, vread } from './interactions/read.ts';
import { update } from './interactions/update.ts';
import { validateOperation } from './interactions/validate-operation.ts';
import { toFhirError } from './outcome.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from './request.ts';
import { matchRoute, type RouteMatch } from './route.ts';

export type Handler = (req: FhirRequest, match: RouteMatch, ctx: InteractionContext) => Promise<FhirResponse>;

const HANDLERS: Record<string, Handler> = {
  read,
  vread,
  create,
  update,
  patch,
  delete: remove,
  'history-instance': history,
  'history-type': history,
  'history-system': history,
  'search-type': search,
  'search-system': search,
  'search-compartment': search,
  operation: (req, match, ctx) =>
    match.operation === '$everything' ? everything(req, match, ctx) : match.operation?.startsWith('$export') ? exportOperation(req, match, ctx) : validateOperation(req, match, ctx),
  batch: processBundle,
  capabilities: async (_req, _match, ctx) => ({ status: 200, body: ctx.capabilities.statement }),
};

/** Resolves the route (throws 404/405 for unknown ones, unaudited: no interaction happened). */
export function route(req: FhirRequest): RouteMatch {
  return matchRoute(req.method, req.path);
}

/**
 * Runs one interaction. In an immediate work unit its locks are released at the end; in a transaction's deferred
 * unit the transaction decides when to commit and release.
 */
export async function dispatch(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  // AuditEvent is served from the ledger, read-only, before any generic handler sees it.
  const handler = match.resourceType === 'AuditEvent' ? auditEvent : HANDLERS[match.interaction];
  if (!handler) throw new FhirError(`Interaction ${match.interaction} is not implemented`, { status: 501, code: 'ERR_NOT_IMPLEMENTED', issueType: 'not-supported' });
  try {
    return await handler(req, match, ctx);
  } catch (err) {
    const error = toFhirError(err);
    // Failures inside a transaction are recorded once, by the transaction, which then stores nothing else.
    if (!ctx.work.deferred && match.interaction !== 'capabilities') await recordFailure(ctx, match, error);
    throw error;
  } finally {
    if (!ctx.work.deferred) ctx.work.release();
  }
}

/** Errors whose failure entry is already in the ledger, so the HTTP layer does not record them twice. */
const recorded = new WeakSet<FhirError>();

export function isRecorded(error: FhirError): boolean {
  return recorded.has(error);
}

/**
 * Appends the entry of a failed or denied request. If even that fails, the work unit's 503 (ERR_LEDGER_UNAVAILABLE)
 * replaces the original error: the client learns the ledger is down.
 */
export async function recordFailure(ctx: InteractionContext, match: RouteMatch | { interaction: string }, error: FhirError): Promise<void> {
  ctx.work.discard();
  recorded.add(error);
  await ctx.work.record(failureEntry(ctx, match, error, 'resourceType' in match ? entityOfMatch(match) : []));
}
