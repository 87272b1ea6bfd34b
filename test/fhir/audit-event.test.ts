/**
 * GET /fhir/AuditEvent and /fhir/AuditEvent/{id} on a real node: BALP shapes of real entries, search by each
 * parameter with paging, read-only (405), auditors only (403), and viewing is itself audited.
 */
import t from 'tap';
import { AuditIndex, auditIndexValues } from '../../src/ledger/audit-index.ts';
import { parseEntry } from '../../src/ledger/entry.ts';
import { jsonSublevel, pad, stringSublevel, SUBLEVELS, writeBatch, type BatchOp } from '../../src/storage/db.ts';
import { startServer } from '../helpers/server.ts';

const server = await startServer(t);
const practitioner = await server.token({ scope: 'system/*.cruds', fhirUser: 'Practitioner/p1', sub: 'doc-1' });
const other = await server.token({ scope: 'system/*.cruds', fhirUser: 'Practitioner/p2', sub: 'doc-2' });
const auditor = await server.token({ scope: 'system/AuditEvent.rs', sub: 'auditor-1' });

const patient = (await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: 'A' }] }, token: practitioner })).body;
const obs = (await server.fhir('Observation', {
  method: 'POST', token: practitioner,
  body: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient.id}` } },
})).body;
await server.fhir(`Observation/${obs.id}`, { token: other });
await server.fhir(`Observation/${obs.id}`, { token: other });
await server.fhir('Observation/missing', { token: other });

const search = async (query: string, token = auditor) => server.fhir(`AuditEvent${query ? `?${query}` : ''}`, { token });
const ids = (bundle: any): string[] => (bundle.entry ?? []).map((e: any) => e.resource.id);

t.test('search by patient: every event that touched the patient, newest first', async (t) => {
  const res = await search(`patient=${patient.id}`);
  t.equal(res.status, 200);
  t.equal(res.body.type, 'searchset');
  const events = res.body.entry.map((e: any) => e.resource);
  t.same(events.map((e: any) => e.subtype[0].code), ['read', 'read', 'create', 'create']);
  t.same(events.map((e: any) => Number(e.id)), [...events.map((e: any) => Number(e.id))].sort((a: number, b: number) => b - a));
  for (const e of events) t.ok(e.entity.some((x: any) => x.what?.reference === `Patient/${patient.id}` && x.role.code === '1'), 'patient entity');
  t.match(events[0], { type: { code: 'rest' }, action: 'R', outcome: '0', agent: [{ who: { reference: 'Practitioner/p2' }, requestor: true }] });
});

t.test('search by agent, entity, subtype, action, outcome and date', async (t) => {
  t.equal(ids((await search('agent=Practitioner/p2')).body).length, 3);
  t.equal(ids((await search(`entity=Observation/${obs.id}`)).body).length, 3);
  t.equal(ids((await search('subtype=create&agent=Practitioner/p1')).body).length, 2);
  t.equal(ids((await search('action=C')).body).length, 2);
  const failed = (await search('outcome=4&agent=Practitioner/p2')).body;
  t.equal(ids(failed).length, 1);
  t.match(failed.entry[0].resource, { outcomeDesc: /HTTP 404 ERR_NOT_FOUND/ });
  const today = new Date().toISOString().slice(0, 10);
  t.ok(ids((await search(`date=${today}&agent=Practitioner/p1`)).body).length === 2);
  t.equal(ids((await search('date=lt2000-01-01')).body).length, 0);
  t.equal((await search('foo=bar')).status, 400);
  t.equal((await search('action=Z')).status, 400);
});

t.test('an impossible date is a 400 OperationOutcome, not another day', async (t) => {
  for (const bad of ['2026-02-30', 'ge2026-10-53', 'lt2026-13-01', '2026-11-00', '2026-01-01T24:00Z']) {
    const res = await search(`date=${bad}`);
    t.equal(res.status, 400, bad);
    t.match(res.body, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', diagnostics: /date/i }] }, bad);
  }
  t.equal(ids((await search('date=lt0100')).body).length, 0, 'years 0000-0099 are not 1900-1999');
});

t.test('subtype=system|code holds the system to the rendered coding', async (t) => {
  const RESTFUL = 'http://hl7.org/fhir/restful-interaction';
  const EVENTS = 'https://sealed-fhir.org/CodeSystem/ledger-event';
  const ledgerRead = await fetch(new URL('/ledger/checkpoints', server.baseUrl), { headers: { authorization: `Bearer ${auditor}` } });
  t.equal(ledgerRead.status, 200);
  const reads = ids((await search('subtype=read&_count=1000')).body);
  t.ok(reads.length > 0);
  t.same(ids((await search(`subtype=${encodeURIComponent(`${RESTFUL}|read`)}&_count=1000`)).body), reads);
  t.same(ids((await search(`subtype=${encodeURIComponent('http://bogus|read')}`)).body), [], 'another system');
  t.same(ids((await search(`subtype=${encodeURIComponent('|read')}`)).body), [], 'no system');
  t.same(ids((await search(`subtype=${encodeURIComponent(`${RESTFUL}|ledger-read`)}`)).body), [], 'ledger-read is not a restful interaction');
  const ledgerReads = (await search(`subtype=${encodeURIComponent(`${EVENTS}|ledger-read`)}`)).body;
  t.equal(ids(ledgerReads).length, 1);
  t.same(ledgerReads.entry[0].resource.subtype, [{ system: EVENTS, code: 'ledger-read', display: 'Audit log read' }]);
  const events = (await search(`subtype=${encodeURIComponent(`${EVENTS}|`)}`)).body;
  t.ok(ids(events).length >= 1);
  for (const e of events.entry) t.equal(e.resource.subtype[0].system, EVENTS, 'system|: every code of that system');
});

/** Every page of a search, following its next links. */
async function allPages(query: string): Promise<string[]> {
  const seen: string[] = [];
  let url: string | undefined = `${server.baseUrl}/AuditEvent?${query}`;
  for (let pages = 0; url && pages < 100; pages++) {
    const res = await fetch(url, { headers: { authorization: `Bearer ${auditor}` } });
    const body: any = await res.json();
    seen.push(...ids(body));
    url = body.link.find((l: any) => l.relation === 'next')?.url;
  }
  return seen;
}

/** Ledger indexes whose entry names an entity of `type` (the type itself or one of its instances), newest first. */
async function touching(type: string): Promise<string[]> {
  const entries = await server.app.ledger.getEntries(0, server.app.ledger.size());
  return entries.map((e) => parseEntry(e.bytes, e.seq))
    .filter((e) => e.entity?.some((x) => x.reference === type || x.reference.startsWith(`${type}/`)))
    .map((e) => String(e.seq)).reverse();
}

t.test('entity=<Type> finds every event whose entity is the type or an instance of it, newest first, paged', async (t) => {
  await server.fhir('Observation?status=final', { token: other });
  const expected = await touching('Observation');
  t.ok(expected.length >= 5, 'the create, the reads, the 404 read and the search');
  t.same(ids((await search('entity=Observation&_count=1000')).body), expected);
  t.same(await allPages('entity=Observation&_count=2'), expected, 'across pages');
  const failed = (await search('entity=Observation&outcome=4')).body;
  t.same(failed.entry.map((e: any) => e.resource.entity[0].what.reference), ['Observation/missing'], 'a failed read of an instance');
  t.equal(ids((await search(`entity=Observation/${obs.id}`)).body).length, 3, 'an instance still finds only its own events');
});

t.test('paging with _count follows next links without repeats', async (t) => {
  const seen: string[] = [];
  let url: string | undefined = `${server.baseUrl}/AuditEvent?_count=2`;
  let pages = 0;
  while (url && pages < 50) {
    const res = await fetch(url, { headers: { authorization: `Bearer ${auditor}` } });
    const body: any = await res.json();
    seen.push(...ids(body));
    url = body.link.find((l: any) => l.relation === 'next')?.url;
    pages++;
  }
  t.ok(pages > 2, `${pages} pages`);
  t.equal(new Set(seen).size, seen.length, 'no repeats');
  t.ok(seen.includes('0'), 'down to the first entry');
});

t.test('read by ledger index, linked to the entry and its leaf hash', async (t) => {
  const res = await server.fhir('AuditEvent/1', { token: auditor });
  t.equal(res.status, 200);
  const [stored] = await server.app.ledger.getEntries(1, 2);
  t.equal(res.body.id, '1');
  t.same(res.body.extension[0].extension, [
    { url: 'index', valueString: '1' },
    { url: 'leafHash', valueBase64Binary: Buffer.from(stored!.leafHash).toString('base64') },
  ]);
  t.equal((await server.fhir('AuditEvent/999999', { token: auditor })).status, 404);
  t.equal((await server.fhir('AuditEvent/abc', { token: auditor })).status, 404);
});

t.test('read-only and auditors only; viewing is audited', async (t) => {
  t.equal((await server.fhir('AuditEvent', { method: 'POST', body: { resourceType: 'AuditEvent' }, token: auditor })).status, 405);
  t.equal((await server.fhir('AuditEvent/1', { method: 'PUT', body: { resourceType: 'AuditEvent', id: '1' }, token: auditor })).status, 405);
  t.equal((await server.fhir('AuditEvent/1', { method: 'DELETE', token: auditor })).status, 405);
  const clinician = await server.token({ scope: 'system/Patient.cruds' });
  t.equal((await search('', clinician)).status, 403);
  t.equal((await server.fhir('AuditEvent/1', { token: clinician })).status, 403);
  const before = server.app.ledger.size();
  await search(`patient=${patient.id}`);
  const [entry] = await server.app.ledger.getEntries(before, before + 1);
  t.match(parseEntry(entry!.bytes), { interaction: 'search-type', status: 200, agent: { sub: 'auditor-1' }, query: `patient=${patient.id}` });
});

t.test('a search of AuditEvents records what was searched and the query, never the results (BALP Query)', async (t) => {
  const before = server.app.ledger.size();
  const res = await search('_count=3');
  t.equal(res.body.entry.length, 3);
  const [stored] = await server.app.ledger.getEntries(before, before + 1);
  const entry = parseEntry(stored!.bytes);
  t.match(entry, { interaction: 'search-type', status: 200, query: '_count=3' });
  t.same(entry.entity, [{ reference: 'AuditEvent' }], 'the type searched, not the AuditEvents returned');
  const event = (await server.fhir(`AuditEvent/${before}`, { token: auditor })).body;
  const queries = event.entity.filter((e: any) => e.role?.code === '24');
  t.equal(queries.length, 1, 'one Query entity');
  t.match(queries[0], { what: { type: 'AuditEvent' }, type: { code: '2' }, query: Buffer.from('_count=3').toString('base64') });
  t.same(event.entity.filter((e: any) => e.role?.code !== '24'), [], 'no other entity');
  t.ok(ids((await search('entity=AuditEvent&_count=1000')).body).includes(String(before)), 'entity=AuditEvent finds it');
  // A read of one AuditEvent still names it.
  const read = server.app.ledger.size();
  await server.fhir('AuditEvent/0', { token: auditor });
  const [readEntry] = await server.app.ledger.getEntries(read, read + 1);
  t.same(parseEntry(readEntry!.bytes).entity, [{ reference: 'AuditEvent/0', version: '1' }]);
});

t.test('the CapabilityStatement describes AuditEvent as read-only with its search parameters', async (t) => {
  const metadata = await server.fhir('metadata', { token: false });
  const audit = metadata.body.rest[0].resource.find((r: any) => r.type === 'AuditEvent');
  t.same(audit.interaction.map((i: any) => i.code), ['read', 'vread', 'search-type']);
  t.same(audit.searchParam.map((p: any) => p.name).sort(), ['action', 'agent', 'date', 'entity', 'outcome', 'patient', 'subtype']);
  const patient = metadata.body.rest[0].resource.find((r: any) => r.type === 'Patient');
  t.ok(patient.interaction.some((i: any) => i.code === 'create'), 'other types keep their interactions');
});

t.test('a store whose AuditEvent index an older server built is brought up to date at start', async (t) => {
  // Turn the live index back into what a server before format 2 wrote: no type keys for instances, no marker.
  const { db } = server.app;
  const entries = await server.app.ledger.getEntries(0, server.app.ledger.size());
  const level = stringSublevel(db, SUBLEVELS.auditEntity);
  const ops: BatchOp[] = [];
  for (const stored of entries) {
    const entry = parseEntry(stored.bytes, stored.seq);
    const now = auditIndexValues(entry).entity;
    const before = auditIndexValues(entry, 1).entity;
    for (const value of now.filter((v) => !before.includes(v))) ops.push({ type: 'del', key: `${level.prefix}${value}|${pad(entry.seq)}` });
  }
  ops.push({ type: 'del', sublevel: jsonSublevel(db, SUBLEVELS.auditMeta), key: 'format' });
  await writeBatch(db, ops, { sync: true });
  t.ok(ops.length > 5);
  const expected = await touching('Observation');
  t.not(ids((await search('entity=Observation&_count=1000')).body).length, expected.length, 'the old index misses the instances');
  await server.restart();
  t.same(ids((await search('entity=Observation&_count=1000')).body), await touching('Observation'), 'rebuilt at start');
  t.same(await new AuditIndex(server.app.db).check(), []);
});
