/**
 * A ledger entry as an R4 AuditEvent (http://hl7.org/fhir/R4/auditevent.html) following IHE Basic Audit Log
 * Patterns (BALP, https://profiles.ihe.net/ITI/BALP/): type `rest`, subtype the FHIR interaction, action C/R/U/D/E,
 * outcome 0/4/8, client, server and user agents, the data entity with `what`, the patient entity for
 * patient-specific events, the query entity for searches. The extension `ledger-entry` ties the view to what it
 * renders: the ledger index and the RFC 9162 leaf hash, so an auditor can ask for its inclusion proof.
 * Pure: no I/O; the same entry always renders the same resource.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding, Extension, Reference } from '@medplum/fhirtypes';
import type { Entry } from './types.ts';

export const LEDGER_ENTRY_EXTENSION = 'https://sealed-fhir.org/StructureDefinition/ledger-entry';
/** The code system of `subtype` for server events (ledger-read, startup, …): every interaction not in ACTIONS. */
export const LEDGER_EVENT_SYSTEM = 'https://sealed-fhir.org/CodeSystem/ledger-event';
/** The code system of `subtype` for FHIR interactions: exactly the codes of ACTIONS. */
export const RESTFUL = 'http://hl7.org/fhir/restful-interaction';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';

/** The FHIR restful-interaction codes (R4 value set) and the action BALP gives each. */
export const ACTIONS: Record<string, 'C' | 'R' | 'U' | 'D' | 'E'> = {
  read: 'R',
  vread: 'R',
  update: 'U',
  patch: 'U',
  delete: 'D',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  create: 'C',
  'search-type': 'E',
  'search-system': 'E',
  'search-compartment': 'E',
  capabilities: 'R',
  batch: 'E',
  transaction: 'E',
  operation: 'E',
};

/** Server events that are not FHIR interactions (docs/ledger.md §1). */
const SERVER_EVENTS: Record<string, { display: string; action: 'C' | 'R' | 'U' | 'D' | 'E' }> = {
  'ledger-read': { display: 'Audit log read', action: 'E' },
  erase: { display: 'Patient data erased', action: 'D' },
  startup: { display: 'Server start', action: 'E' },
  'tamper-override': { display: 'Served a ledger that failed verification', action: 'E' },
};

export function actionOf(interaction: string): 'C' | 'R' | 'U' | 'D' | 'E' {
  return ACTIONS[interaction] ?? SERVER_EVENTS[interaction]?.action ?? 'E';
}

/** BALP / R4 outcome: 0 success, 4 minor failure (the caller's: 4xx), 8 serious failure (ours: 5xx). */
export function outcomeOf(status: number): '0' | '4' | '8' {
  return status < 400 ? '0' : status < 500 ? '4' : '8';
}

export function subtypeOf(interaction: string): Coding {
  if (interaction in ACTIONS) return { system: RESTFUL, code: interaction };
  return { system: LEDGER_EVENT_SYSTEM, code: interaction, ...(SERVER_EVENTS[interaction] ? { display: SERVER_EVENTS[interaction]!.display } : {}) };
}

export interface RenderOptions {
  /** The FHIR base URL: names the server agent and observer. */
  baseUrl: string;
  /** base64 leaf hash of the entry. */
  leafHash: string;
}

const isSearch = (interaction: string) => interaction.startsWith('search-');

export function renderAuditEvent(entry: Entry, options: RenderOptions): AuditEvent {
  const agent: AuditEventAgent[] = [];
  const { sub, issuer, fhirUser, clientId, address } = entry.agent;
  if (sub || fhirUser) {
    // BALP user agent: who is the fhirUser when the token names one, else the token subject.
    const user: AuditEventAgent = {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type', code: 'humanuser', display: 'human user' }] },
      who: fhirUser ? { reference: fhirUser } : { identifier: { ...(issuer ? { system: issuer } : {}), value: sub! } },
      requestor: true,
    };
    // R4 altId: "a user identifier text string from authentication system": the token's subject, always.
    if (sub) user.altId = sub;
    if (entry.purpose) user.purposeOfUse = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: entry.purpose }] }];
    agent.push(user);
  }
  const client: AuditEventAgent = {
    type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
    who: clientId ? { identifier: { value: clientId } } : { display: 'unidentified client' },
    requestor: !(sub || fhirUser),
  };
  if (address) client.network = { address, type: '2' };
  agent.push(client);
  agent.push({
    type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
    who: { display: options.baseUrl },
    requestor: false,
    network: { address: options.baseUrl, type: '5' },
  });

  const entity: AuditEventEntity[] = [];
  const patients = new Set<string>();
  for (const e of entry.entity ?? []) {
    if (e.patient) patients.add(e.patient);
    if (e.reference === e.patient && !e.version) continue;
    // A type-level event (search, create before its id) names the type, which a Reference cannot: Reference.type.
    const what: Reference = !e.reference.includes('/') ? { type: e.reference as Reference['type'] } : { reference: e.version ? `${e.reference}/_history/${e.version}` : e.reference };
    const data: AuditEventEntity = {
      what,
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
    };
    const detail = [];
    if (e.cid) detail.push({ type: 'cid', valueString: e.cid });
    if (e.hmac) detail.push({ type: 'hmac-sha256', valueString: e.hmac });
    if (detail.length) data.detail = detail;
    // BALP Query: one query entity, on what was searched (a type). Searches of AuditEvents once recorded the
    // AuditEvents they returned as entities: those stay data entities, and the query gets an entity of its own.
    if (isSearch(entry.interaction) && entry.query !== undefined && what.type && !entity.some((x) => x.query)) {
      data.role = { system: OBJECT_ROLE, code: '24', display: 'Query' };
      data.query = Buffer.from(entry.query, 'utf8').toString('base64');
    }
    entity.push(data);
  }
  if (entry.query !== undefined && !entity.some((e) => e.query)) {
    entity.push({ type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '24', display: 'Query' }, query: Buffer.from(entry.query, 'utf8').toString('base64') });
  }
  for (const p of entry.patients ?? []) patients.add(p.includes('/') ? p : `Patient/${p}`);
  for (const reference of patients) {
    entity.push({ what: { reference }, type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } });
  }

  const extension: Extension[] = [{
    url: LEDGER_ENTRY_EXTENSION,
    extension: [
      { url: 'index', valueString: String(entry.seq) },
      { url: 'leafHash', valueBase64Binary: options.leafHash },
    ],
  }];
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id: String(entry.seq),
    meta: { versionId: '1', lastUpdated: entry.time },
    extension,
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [subtypeOf(entry.interaction)],
    action: actionOf(entry.interaction),
    recorded: entry.time,
    outcome: outcomeOf(entry.status),
    agent,
    source: {
      observer: { display: options.baseUrl },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
  };
  const desc = [`HTTP ${entry.status}`, entry.error, entry.operation].filter(Boolean).join(' ');
  if (entry.status >= 400 || entry.operation) event.outcomeDesc = desc;
  if (entity.length) event.entity = entity;
  return event;
}
