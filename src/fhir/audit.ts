/**
 * Audit entries for FHIR interactions: the ledger's PHI-free record of who did what to which version.
 * Success entries are written by the interactions (with the versions they store); failures and denials by the
 * router, so that no path can forget them.
 */
import type { EntityRef, EntryDraft } from '../ledger/types.ts';
import type { FhirError } from '../errors.ts';
import type { InteractionContext } from './request.ts';
import type { RouteMatch } from './route.ts';
import type { VersionRecord } from './repository.ts';

export function entityOfRecord(record: VersionRecord): EntityRef {
  const entity: EntityRef = { reference: `${record.resourceType}/${record.id}`, version: String(record.versionId) };
  if (record.cid) entity.cid = record.cid;
  if (record.hmac) entity.hmac = record.hmac;
  if (record.patient) entity.patient = `Patient/${record.patient}`;
  return entity;
}

export function entityOfMatch(match: RouteMatch): EntityRef[] {
  if (!match.resourceType) return [];
  if (match.compartment && match.id) {
    // a compartment search is about its owner, e.g. Patient/123
    const owner: EntityRef = { reference: `${match.compartment}/${match.id}` };
    if (match.compartment === 'Patient') owner.patient = owner.reference;
    return [owner];
  }
  const entity: EntityRef = { reference: match.id ? `${match.resourceType}/${match.id}` : match.resourceType };
  if (match.versionId) entity.version = match.versionId;
  if (match.resourceType === 'Patient' && match.id) entity.patient = `Patient/${match.id}`;
  return [entity];
}

export function auditEntry(
  ctx: Pick<InteractionContext, 'agent'>,
  match: Pick<RouteMatch, 'interaction' | 'operation'>,
  status: number,
  extra: Partial<EntryDraft> = {},
): EntryDraft {
  const entry: EntryDraft = { interaction: match.interaction, status, agent: ctx.agent, ...extra };
  if (match.operation) entry.operation = match.operation;
  return entry;
}

export function failureEntry(ctx: Pick<InteractionContext, 'agent'>, match: RouteMatch | { interaction: string }, error: FhirError, entity: EntityRef[] = []): EntryDraft {
  const extra: Partial<EntryDraft> = { error: error.code };
  if (entity.length) extra.entity = entity;
  return auditEntry(ctx, match, error.status, extra);
}

/** `W/"3"` → 3; anything else → undefined (an ETag we did not issue can never match). */
export function versionOfEtag(etag: string): number | undefined {
  const m = /^(?:W\/)?"(\d{1,15})"$/.exec(etag.trim());
  return m ? Number(m[1]) : undefined;
}

export const etagOf = (record: VersionRecord) => `W/"${record.versionId}"`;
export const httpDate = (iso: string) => new Date(iso).toUTCString();
