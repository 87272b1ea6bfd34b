/**
 * The AuditEvent view, pure: each kind of entry rendered as an IHE BALP AuditEvent (table-driven), every rendering
 * valid R4 (the server's own validator), and the search parameters parsed and matched.
 */
import t from 'tap';
import { actionOf, LEDGER_ENTRY_EXTENSION, outcomeOf, renderAuditEvent } from '../../src/ledger/audit-event.ts';
import { auditIndexValues } from '../../src/ledger/audit-index.ts';
import { dateRange, matches, parseAuditSearch, plan } from '../../src/ledger/audit-search.ts';
import type { Entry } from '../../src/ledger/types.ts';
import { createValidator } from '../../src/fhir/validate.ts';

const base = { v: 1 as const, time: '2025-06-01T12:00:00.000Z', prev: '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' };
const user = { sub: 'dr-house', issuer: 'https://idp.example', fhirUser: 'Practitioner/17', clientId: 'ehr-app', address: '10.0.0.7' };
const obs = { reference: 'Observation/42', version: '3', cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', hmac: 'Jv1Ff3V2', patient: 'Patient/9' };
const leafHash = 'zsD3oGyRsL/z/Bkg5v14d2Tw9UJ9DS35WKTpHjbY6Z8=';
const options = { baseUrl: 'https://fhir.example/fhir', leafHash };
const validator = createValidator();

const table: Array<{ name: string; entry: Entry; expect: Record<string, unknown>; what?: string[]; query?: string }> = [
  {
    name: 'a read of a patient-specific resource',
    entry: { ...base, seq: 0, interaction: 'read', status: 200, agent: user, entity: [obs] },
    expect: { subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }], action: 'R', outcome: '0' },
    what: ['Observation/42/_history/3', 'Patient/9'],
  },
  { name: 'a create', entry: { ...base, seq: 1, interaction: 'create', status: 201, agent: user, entity: [obs] }, expect: { action: 'C', outcome: '0' }, what: ['Observation/42/_history/3', 'Patient/9'] },
  { name: 'an update', entry: { ...base, seq: 2, interaction: 'update', status: 200, agent: user, entity: [obs] }, expect: { action: 'U' } },
  { name: 'a patch', entry: { ...base, seq: 3, interaction: 'patch', status: 200, agent: user, entity: [obs] }, expect: { action: 'U' } },
  { name: 'a delete', entry: { ...base, seq: 4, interaction: 'delete', status: 200, agent: user, entity: [obs] }, expect: { action: 'D' } },
  { name: 'a vread', entry: { ...base, seq: 5, interaction: 'vread', status: 200, agent: user, entity: [obs] }, expect: { action: 'R' } },
  {
    name: 'a search with its query and the patients it touched',
    entry: { ...base, seq: 6, interaction: 'search-type', status: 200, agent: user, entity: [{ reference: 'Observation' }], query: 'code=1234-5', patients: ['Patient/9', 'Patient/10'] },
    expect: { action: 'E', subtype: [{ code: 'search-type' }] },
    what: ['Observation', 'Patient/9', 'Patient/10'],
    query: 'code=1234-5',
  },
  {
    name: 'a denied read (401, no agent identity)',
    entry: { ...base, seq: 7, interaction: 'read', status: 401, agent: { address: '10.0.0.9' }, entity: [{ reference: 'Patient/9', patient: 'Patient/9' }], error: 'ERR_TOKEN_MISSING' },
    expect: { action: 'R', outcome: '4', outcomeDesc: 'HTTP 401 ERR_TOKEN_MISSING' },
    what: ['Patient/9'],
  },
  {
    name: 'a server failure',
    entry: { ...base, seq: 8, interaction: 'read', status: 503, agent: user, entity: [obs], error: 'ERR_IPFS_UNAVAILABLE' },
    expect: { outcome: '8' },
  },
  {
    name: 'a read of the audit log',
    entry: { ...base, seq: 9, interaction: 'ledger-read', status: 200, agent: { sub: 'auditor-1', clientId: 'audit-tool' }, operation: '/ledger/entries', query: 'start=0&end=10' },
    expect: { action: 'E', subtype: [{ system: 'https://sealed-fhir.org/CodeSystem/ledger-event', code: 'ledger-read' }] },
    query: 'start=0&end=10',
  },
  {
    name: 'a break-glass read',
    entry: { ...base, seq: 10, interaction: 'read', status: 200, agent: user, entity: [obs], purpose: 'ETREAT' },
    expect: { action: 'R' },
  },
];

t.test('entries render as BALP AuditEvents', async (t) => {
  for (const row of table) {
    const event = renderAuditEvent(row.entry, options);
    t.match(event, { resourceType: 'AuditEvent', id: String(row.entry.seq), type: { code: 'rest' }, recorded: row.entry.time, ...row.expect }, row.name);
    t.same(event.extension, [{ url: LEDGER_ENTRY_EXTENSION, extension: [{ url: 'index', valueString: String(row.entry.seq) }, { url: 'leafHash', valueBase64Binary: leafHash }] }], `${row.name}: linked to its ledger entry`);
    const roles = event.agent.map((a) => a.type?.coding?.[0]?.code);
    t.same(roles.slice(-2), ['110153', '110152'], `${row.name}: client and server agents`);
    if (row.entry.agent.sub || row.entry.agent.fhirUser) {
      t.match(event.agent[0], { type: { coding: [{ code: 'humanuser' }] }, requestor: true }, `${row.name}: user agent`);
      if (row.entry.agent.fhirUser) t.equal(event.agent[0]!.who?.reference, row.entry.agent.fhirUser, 'who is the fhirUser');
    }
    if (row.what) t.same(event.entity?.filter((e) => e.what).map((e) => e.what!.reference ?? e.what!.type), row.what, `${row.name}: entities`);
    const query = event.entity?.find((e) => e.query);
    t.equal(query ? Buffer.from(query.query!, 'base64').toString() : undefined, row.query, `${row.name}: query entity`);
    if (row.entry.entity?.some((e) => e.patient)) t.ok(event.entity!.some((e) => e.role?.code === '1'), `${row.name}: patient entity`);
    if (row.entry.purpose) t.equal(event.agent[0]!.purposeOfUse?.[0]?.coding?.[0]?.code, row.entry.purpose);
    t.same(validator.validate(event).filter((i) => i.severity === 'error' || i.severity === 'fatal'), [], `${row.name}: valid R4`);
  }
  t.equal(actionOf('unknown-thing'), 'E');
  t.same([outcomeOf(200), outcomeOf(304), outcomeOf(404), outcomeOf(500)], ['0', '0', '4', '8']);
});

t.test('index values: patient, agent, entity, subtype and time of an entry', async (t) => {
  t.same(auditIndexValues(table[6]!.entry), {
    patient: ['Patient/9', 'Patient/10'], agent: ['Practitioner/17', 'sub:dr-house'], entity: ['Observation'], subtype: ['search-type'], time: [base.time],
  });
  t.same(auditIndexValues(table[0]!.entry).entity, ['Observation/42', 'Observation'], 'an instance is indexed under its type too');
  t.same(auditIndexValues(table[0]!.entry, 1).entity, ['Observation/42'], 'as format 1 did not');
  t.ok(matches(table[0]!.entry, parseAuditSearch({ entity: ['Observation'] })), 'entity=Observation: a read of Observation/42');
  t.ok(matches(table[6]!.entry, parseAuditSearch({ entity: ['Observation'] })), 'entity=Observation: a search of Observations');
  t.notOk(matches(table[7]!.entry, parseAuditSearch({ entity: ['Observation'] })), 'entity=Observation: not a read of Patient/9');
});

t.test('search parameters parse, plan and match', async (t) => {
  const c = parseAuditSearch({ patient: ['9'], action: ['R,C'], _count: ['10'] });
  t.match(c, { patient: ['Patient/9'], action: ['R', 'C'], count: 10 });
  t.same(plan(c), { key: 'patient', values: ['Patient/9'] });
  t.ok(matches(table[0]!.entry, c));
  t.notOk(matches(table[2]!.entry, c), 'an update is not R or C');
  t.notOk(matches({ ...table[0]!.entry, entity: [{ reference: 'Patient/8', patient: 'Patient/8' }] }, c), 'another patient');
  t.same(plan(parseAuditSearch({ date: ['ge2025-06-01'] })), { key: 'time', from: '2025-06-01T00:00:00.000Z', to: '9999-12-31T23:59:59.999Z' });
  const day = parseAuditSearch({ date: ['2025-06-01'] });
  t.ok(matches(table[0]!.entry, day));
  t.notOk(matches(table[0]!.entry, parseAuditSearch({ date: ['lt2025-06-01T12:00:00Z'] })));
  t.ok(matches(table[0]!.entry, parseAuditSearch({ date: ['ge2025-06-01T12:00:00Z', 'lt2025-06-01T12:00:01Z'] })));
  t.ok(matches(table[7]!.entry, parseAuditSearch({ outcome: ['4'], subtype: ['http://hl7.org/fhir/restful-interaction|read'] })));
  t.ok(matches(table[0]!.entry, parseAuditSearch({ agent: ['Practitioner/17'], entity: ['Observation/42'] })));
  t.notOk(matches(table[0]!.entry, parseAuditSearch({ agent: ['Practitioner/18'] })));
  t.same(dateRange('2024'), [Date.UTC(2024, 0, 1), Date.UTC(2025, 0, 1)]);
  t.same(dateRange('2024-02'), [Date.UTC(2024, 1, 1), Date.UTC(2024, 2, 1)]);
  for (const bad of [{ foo: ['1'] }, { action: ['X'] }, { outcome: ['1'] }, { patient: ['Patient/a b'] }, { date: ['2024-13-45x'] }, { date: ['2024-01-01T10:00'] }, { _count: ['0'] }, { _count: ['5000'] }, { _cursor: ['-1'] }, { patient: [''] }] as Array<Record<string, string[]>>) {
    t.throws(() => parseAuditSearch(bad), { code: 'ERR_SEARCH_PARAM' }, JSON.stringify(bad));
  }
});

t.test('date values: an impossible calendar date is refused, years 0001-0099 are read exactly', async (t) => {
  // Date.UTC rolled these over (2026-02-30 was March 2) and read years 0-99 as 1900-1999.
  for (const bad of ['2026-02-30', '2026-10-53', '2026-13-01', '2026-00-22', '2026-11-00', '2026-00', '2026-13', '2025-02-29', '0099-02-29', '0000',
    '2026-04-31T10:00Z', '2026-01-01T24:00Z', '2026-01-01T10:60Z', '2026-01-01T10:00:60Z', '2026-01-01T10:00+15:00', '2026-01-01T10:00+01:60']) {
    t.throws(() => dateRange(bad), { code: 'ERR_SEARCH_PARAM', status: 400 }, bad);
    t.throws(() => parseAuditSearch({ date: [`ge${bad}`] }), { code: 'ERR_SEARCH_PARAM', status: 400 }, `ge${bad}`);
  }
  const iso = ([lo, hi]: [number, number]) => [new Date(lo).toISOString(), new Date(hi).toISOString()];
  t.same(iso(dateRange('0099')), ['0099-01-01T00:00:00.000Z', '0100-01-01T00:00:00.000Z'], 'year 99');
  t.same(iso(dateRange('0001-12')), ['0001-12-01T00:00:00.000Z', '0002-01-01T00:00:00.000Z'], 'December of year 1');
  t.same(iso(dateRange('0096-02-29')), ['0096-02-29T00:00:00.000Z', '0096-03-01T00:00:00.000Z'], 'a leap day of year 96');
  t.same(iso(dateRange('0050-06-01T10:00+02:00')), ['0050-06-01T08:00:00.000Z', '0050-06-01T08:01:00.000Z'], 'a minute of year 50');
  t.same(iso(dateRange('2024-02-29')), ['2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
  t.same(iso(dateRange('2024-12')), ['2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
  t.same(iso(dateRange('2024-01-01T23:59:59.999-05:00')), ['2024-01-02T04:59:59.999Z', '2024-01-02T05:00:00.000Z']);
  t.same(parseAuditSearch({ date: ['lt0100'] }).date, { from: '0000-01-01T00:00:00.000Z', to: '0100-01-01T00:00:00.000Z' });
});

t.test('subtype is an R4 token: system|code, |code and system| hold the system to the rendered coding', async (t) => {
  const RESTFUL = 'http://hl7.org/fhir/restful-interaction';
  const EVENTS = 'https://sealed-fhir.org/CodeSystem/ledger-event';
  const read = table[0]!.entry;
  const ledgerRead = table[9]!.entry;
  const unknown: Entry = { ...base, seq: 11, interaction: 'reindex', status: 200, agent: {} };
  const found = (subtype: string) => [read, ledgerRead, unknown].filter((e) => matches(e, parseAuditSearch({ subtype: [subtype] }))).map((e) => e.interaction);
  t.same(found('read'), ['read'], 'a bare code: any system');
  t.same(found(`${RESTFUL}|read`), ['read']);
  t.same(found('http://bogus|read'), [], 'another system: nothing');
  t.same(found(`${RESTFUL}|ledger-read`), [], 'ledger-read is not a restful interaction');
  t.same(found(`${EVENTS}|ledger-read`), ['ledger-read']);
  t.same(found('|read'), [], '|code: codings without a system, and every rendered subtype has one');
  t.same(found(`${RESTFUL}|`), ['read'], 'system|: any code of that system');
  t.same(found(`${EVENTS}|`), ['ledger-read', 'reindex']);
  t.same(found(`http://bogus|,${EVENTS}|reindex`), ['reindex'], 'comma = OR');
  t.throws(() => parseAuditSearch({ subtype: ['|'] }), { code: 'ERR_SEARCH_PARAM' });
  // The index holds codes: a system-qualified code is read from the code's keys, a whole system from its codes.
  t.same(plan(parseAuditSearch({ subtype: [`${RESTFUL}|read`] })), { key: 'subtype', values: ['read'] });
  t.match(plan(parseAuditSearch({ subtype: [`${RESTFUL}|`] })), { key: 'subtype', values: ['read', 'vread', 'update'] });
  t.same(plan(parseAuditSearch({ subtype: [`${EVENTS}|`] })), undefined, 'an open code system: no index, every entry is a candidate');
  t.same(plan(parseAuditSearch({ subtype: ['http://bogus|'] })), { key: 'subtype', values: [] }, 'a system never rendered: no candidate');
});

t.test('a search renders exactly one Query entity, also for entries that named their results', async (t) => {
  const queryEntities = (entry: Entry) => renderAuditEvent(entry, options).entity!.filter((e) => e.role?.code === '24');
  const search: Entry = { ...base, seq: 12, interaction: 'search-type', status: 200, agent: user, entity: [{ reference: 'AuditEvent' }], query: '_count=2' };
  t.match(queryEntities(search), [{ what: { type: 'AuditEvent' }, query: Buffer.from('_count=2').toString('base64') }]);
  t.equal(queryEntities(search).length, 1);
  // Searches of AuditEvents once recorded the AuditEvents they returned: those are data entities, not queries.
  const old: Entry = { ...search, entity: [{ reference: 'AuditEvent/5', version: '1' }, { reference: 'AuditEvent/4', version: '1' }] };
  const event = renderAuditEvent(old, options);
  t.equal(queryEntities(old).length, 1, 'one Query entity');
  t.same(queryEntities(old)[0]!.what, undefined);
  t.same(event.entity!.filter((e) => e.role?.code === '4').map((e) => e.what?.reference), ['AuditEvent/5/_history/1', 'AuditEvent/4/_history/1']);
  t.same(validator.validate(event).filter((i) => i.severity === 'error' || i.severity === 'fatal'), []);
});

t.test('the user agent carries altId = sub, with or without a fhirUser (docs/ledger.md §10)', async (t) => {
  const withFhirUser = renderAuditEvent(table[0]!.entry, options).agent[0]!;
  t.match(withFhirUser, { who: { reference: 'Practitioner/17' }, altId: 'dr-house' });
  const system = renderAuditEvent({ ...table[0]!.entry, agent: { sub: 'backend-1', issuer: 'https://idp.example', clientId: 'etl' } }, options);
  t.match(system.agent[0], { type: { coding: [{ code: 'humanuser' }] }, who: { identifier: { system: 'https://idp.example', value: 'backend-1' } }, altId: 'backend-1' });
  t.same(validator.validate(system).filter((i) => i.severity === 'error' || i.severity === 'fatal'), []);
  const noSub = renderAuditEvent({ ...table[0]!.entry, agent: { fhirUser: 'Practitioner/17' } }, options).agent[0]!;
  t.equal(noSub.altId, undefined, 'no sub, no altId');
});
