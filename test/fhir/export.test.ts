/**
 * Bulk export (FHIR Bulk Data Access) against a real node: kick-off, manifest, NDJSON files as the store stood at
 * the kick-off, patient level, `_type` and `_since`, jobs visible to their owner only, cancel, the ledger entries,
 * and the 4xx answers for what is malformed.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startServer, type TestServer } from '../helpers/server.ts';

type R = Record<string, any>;
const SYNTHEA = path.join(import.meta.dirname, '../fixtures/synthea');
const read = (file: string) => JSON.parse(fs.readFileSync(path.join(SYNTHEA, file), 'utf8')) as R;

async function raw(server: TestServer, url: string, headers: Record<string, string> = {}, token?: string) {
  const res = await fetch(url.startsWith('http') ? url : `${server.baseUrl}/${url}`, { headers: { authorization: `Bearer ${token ?? (await server.token())}`, ...headers } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as R);

t.test('bulk export', async (t) => {
  const server = await startServer(t);
  const token = await server.token({ sub: 'exporter' });
  const kickOff = (query: string, headers: Record<string, string> = { prefer: 'respond-async' }) => raw(server, query, { accept: 'application/fhir+json', ...headers }, token);
  for (const file of ['_shared/0-hospitalInformation1625911868739.json', '_shared/0-practitionerInformation1625911868739.json', '8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json']) {
    t.equal((await server.fhir('', { method: 'POST', body: read(file) })).status, 200, file);
  }
  const observations = (await server.fhir('Observation?_count=1000')).body.entry.map((e: R) => e.resource) as R[];
  const patientId = (await server.fhir('Patient')).body.entry[0].resource.id as string;

  t.test('malformed kick-offs are 4xx OperationOutcomes', async (t) => {
    for (const [query, headers, status] of [
      ['$export', { prefer: 'respond-wait' }, 400],
      ['$export?_typeFilter=Observation%3Fstatus%3Dfinal', undefined, 400],
      ['$export?_outputFormat=text/csv', undefined, 400],
      ['$export?_type=Nope', undefined, 400],
      ['$export?_type=AuditEvent', undefined, 400],
      ['$export?_since=yesterday', undefined, 400],
      ['Patient/$export?_type=Practitioner', undefined, 400],
      [`Patient/${patientId}/$export`, undefined, 404],
    ] as const) {
      const res = await kickOff(query, headers);
      t.equal(res.status, status, query);
      t.equal(JSON.parse(res.text).resourceType, 'OperationOutcome');
    }
    for (const format of ['application/fhir+ndjson', 'application/fhir%2Bndjson', 'application/ndjson', 'ndjson']) {
      t.equal((await kickOff(`$export?_type=Patient&_outputFormat=${format}`)).status, 202, `_outputFormat=${format} (an unencoded + arrives as a space)`);
    }
    t.equal((await kickOff('$export?_type=Patient&_outputFormat=application/fhir+json')).status, 400, 'but not another format');
    const batch = await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: '$export' } }] } });
    t.match(batch.body.entry[0].response.status, /^400/, 'not inside a Bundle');
  });

  t.test('system level: the files hold the store as it stood at the kick-off', async (t) => {
    const before = server.app.ledger.size();
    const res = await kickOff('$export?_type=Patient,Observation,Practitioner,Device&_outputFormat=application/fhir%2Bndjson');
    t.equal(res.status, 202);
    const statusUrl = res.headers.get('content-location')!;
    t.match(statusUrl, /\/\$export-poll-status\/[0-9a-f-]+$/);

    // after the kick-off: one Observation updated, one deleted, one created; no change shows in the files
    const changed = observations[0]!;
    t.equal((await server.fhir(`Observation/${changed.id}`, { method: 'PUT', body: { ...changed, status: 'amended' } })).status, 200);
    t.equal((await server.fhir(`Observation/${observations[1]!.id}`, { method: 'DELETE' })).status, 200);
    t.equal((await server.fhir('Observation', { method: 'POST', body: { ...changed, id: undefined, meta: undefined } })).status, 201);

    const status = await raw(server, statusUrl, { accept: 'application/json' }, token);
    t.equal(status.status, 200);
    t.match(status.headers.get('content-type'), /^application\/json/);
    const manifest = JSON.parse(status.text);
    t.match(manifest, { requiresAccessToken: true, error: [], request: /\$export\?_type=/ });
    t.ok(Date.parse(manifest.transactionTime) <= Date.now());
    t.same(manifest.output.map((o: R) => o.type), ['Observation', 'Patient', 'Practitioner'], 'one file per type holding resources (no Device here)');

    const files = new Map<string, R[]>();
    for (const output of manifest.output) {
      const file = await raw(server, output.url, { accept: 'application/fhir+ndjson' }, token);
      t.equal(file.status, 200);
      t.equal(file.headers.get('content-type'), 'application/fhir+ndjson');
      files.set(output.type, lines(file.text));
    }
    t.equal(files.get('Patient')!.length, 1);
    t.equal(files.get('Practitioner')!.length, 195);
    const exported = files.get('Observation')!;
    t.same(exported.map((o) => o.id).sort(), observations.map((o) => o.id).sort(), 'the Observations of the kick-off: the one deleted since too, none created after');
    const old = exported.find((o) => o.id === changed.id)!;
    t.same([old.status, old.meta.versionId], [changed.status, '1'], 'the version current at the kick-off');

    // the ledger: the kick-off, the poll and each download, in order
    const entries = (await server.app.ledger.getEntries(before, server.app.ledger.size())).map((e) => JSON.parse(new TextDecoder().decode(e.bytes)));
    const ops = entries.filter((e) => e.operation?.startsWith('$export')).map((e) => [e.operation, e.status, e.entity?.[0]?.reference ?? '']);
    t.same(ops, [
      ['$export', 202, ''],
      ['$export-poll-status', 200, ''],
      ['$export-file', 200, 'Observation'],
      ['$export-file', 200, 'Patient'],
      ['$export-file', 200, 'Practitioner'],
    ]);
    const family = files.get('Patient')![0]!.name[0].family as string;
    t.notOk(entries.some((e) => JSON.stringify(e).includes(family)), 'no PHI (the family name) in the entries');
  });

  t.test('patient level, _since, another caller, cancel', async (t) => {
    const res = await kickOff('Patient/$export');
    t.equal(res.status, 202);
    const statusUrl = res.headers.get('content-location')!;
    const manifest = JSON.parse((await raw(server, statusUrl, {}, token)).text);
    const types = manifest.output.map((o: R) => o.type) as string[];
    t.ok(types.includes('Patient') && types.includes('Observation') && types.includes('Encounter'));
    t.notOk(types.includes('Practitioner') || types.includes('PractitionerRole') || types.includes('Organization'), 'outside the Patient compartment');
    const patients = lines((await raw(server, manifest.output.find((o: R) => o.type === 'Patient').url, {}, token)).text);
    t.same(patients.map((p) => p.id), [patientId]);

    const later = await kickOff(`$export?_type=Observation&_since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    const laterStatus = later.headers.get('content-location')!;
    t.same(JSON.parse((await raw(server, laterStatus, {}, token)).text).output, [], '_since after every update: no file, an empty output');
    t.equal(lines((await raw(server, `${laterStatus.replace('$export-poll-status', '$export-file')}/Observation`, {}, token)).text).length, 0, 'the file is empty indeed');

    // the manifest lists what the job's files hold, not what the store holds when it is polled
    const flags = await kickOff('$export?_type=Patient,Flag');
    t.equal((await server.fhir('Flag', { method: 'POST', body: { resourceType: 'Flag', status: 'active', code: { text: 'x' }, subject: { reference: `Patient/${patientId}` } } })).status, 201);
    const flagsManifest = JSON.parse((await raw(server, flags.headers.get('content-location')!, {}, token)).text);
    t.same(flagsManifest.output.map((o: R) => o.type), ['Patient'], 'no Flag file: none existed at the kick-off');
    const again = JSON.parse((await raw(server, flags.headers.get('content-location')!, {}, token)).text);
    t.same(again.output, flagsManifest.output, 'the same on the next poll');

    const other = await server.token({ sub: 'someone-else' });
    t.equal((await raw(server, statusUrl, {}, other)).status, 404, 'another caller cannot poll');
    t.equal((await raw(server, manifest.output[0].url, {}, other)).status, 404, 'nor download');
    t.equal((await raw(server, manifest.output[0].url, { accept: 'application/fhir+xml' }, token)).status, 406);
    t.equal((await raw(server, statusUrl.replace(/[^/]+$/, 'f0000000-0000-4000-8000-000000000000'), {}, token)).status, 404);

    const cancel = await fetch(statusUrl, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    t.equal(cancel.status, 202);
    t.equal((await raw(server, statusUrl, {}, token)).status, 404, 'gone after DELETE');
    t.equal((await raw(server, manifest.output[0].url, {}, token)).status, 404);
  });

  t.test('group level: the compartments of the group\'s active Patient members only', async (t) => {
    const other = (await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: 'Outsider' }] } })).body.id as string;
    const inactive = (await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: 'Former' }] } })).body.id as string;
    const outsiderObservation = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${other}` } };
    t.equal((await server.fhir('Observation', { method: 'POST', body: outsiderObservation })).status, 201);
    const group = await server.fhir('Group', {
      method: 'POST',
      body: { resourceType: 'Group', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${patientId}` } }, { entity: { reference: `Patient/${inactive}` }, inactive: true }] },
    });
    t.equal(group.status, 201);
    const res = await kickOff(`Group/${group.body.id}/$export?_type=Patient,Observation`);
    t.equal(res.status, 202);
    const manifest = JSON.parse((await raw(server, res.headers.get('content-location')!, {}, token)).text);
    const file = async (type: string) => lines((await raw(server, manifest.output.find((o: R) => o.type === type).url, {}, token)).text);
    t.same((await file('Patient')).map((p) => p.id), [patientId]);
    const observationsNow = (await server.fhir(`Observation?patient=Patient/${patientId}&_count=1000`)).body.entry.map((e: R) => e.resource.id).sort();
    t.same((await file('Observation')).map((o) => o.id).sort(), observationsNow, "the member's Observations, not the outsider's");
    t.equal((await kickOff('Group/no-such-group/$export')).status, 404);
    t.equal((await kickOff('Group/$export')).status, 404, 'group level needs a Group');
  });

  t.test("group level: a member's whole compartment, as $everything reads it, at the kick-off", async (t) => {
    const create = async (body: R) => {
      const res = await server.fhir(body.resourceType, { method: 'POST', body });
      t.equal(res.status, 201);
      return res.body as R;
    };
    const [p1, p2] = [(await create({ resourceType: 'Patient' })).id as string, (await create({ resourceType: 'Patient' })).id as string];
    const observation = (extra: R) => ({ resourceType: 'Observation', status: 'final', code: { text: 'probe' }, subject: { reference: `Patient/${p1}` }, ...extra });
    // filed under P1 (its subject), in P2's compartment through performer
    const shared = await create(observation({ performer: [{ reference: `Patient/${p2}` }] }));
    const dropped = await create(observation({ performer: [{ reference: `Patient/${p2}` }] }));
    const deleted = await create(observation({ performer: [{ reference: `Patient/${p2}` }] }));
    const joined = await create(observation({}));
    const linked = await create({ resourceType: 'Patient', link: [{ other: { reference: `Patient/${p2}` }, type: 'seealso' }] });
    const everything = (await server.fhir(`Patient/${p2}/$everything?_type=Observation`)).body.entry.map((e: R) => e.resource.id).sort();
    t.same(everything, [shared.id, dropped.id, deleted.id].sort(), "$everything's answer");

    const exportOf = async (members: string[]) => {
      const group = await create({ resourceType: 'Group', type: 'person', actual: true, member: members.map((id) => ({ entity: { reference: `Patient/${id}` } })) });
      const res = await kickOff(`Group/${group.id}/$export?_type=Patient,Encounter,Observation`);
      t.equal(res.status, 202);
      return res.headers.get('content-location')!;
    };
    const onlyP2 = await exportOf([p2]);
    const both = await exportOf([p1, p2]);
    // after the kick-offs: one leaves P2's compartment, one joins it, one is deleted; the files show the kick-off
    t.equal((await server.fhir(`Observation/${dropped.id}`, { method: 'PUT', body: { ...dropped, performer: undefined } })).status, 200);
    t.equal((await server.fhir(`Observation/${joined.id}`, { method: 'PUT', body: { ...joined, performer: [{ reference: `Patient/${p2}` }] } })).status, 200);
    t.equal((await server.fhir(`Observation/${deleted.id}`, { method: 'DELETE' })).status, 200);

    const files = async (statusUrl: string) => {
      const manifest = JSON.parse((await raw(server, statusUrl, {}, token)).text);
      const out: Record<string, string[]> = {};
      for (const o of manifest.output) out[o.type] = lines((await raw(server, o.url, {}, token)).text).map((r) => r.id);
      return out;
    };
    const p2Files = await files(onlyP2);
    t.same(Object.keys(p2Files), ['Observation', 'Patient'], "no Encounter file: the store holds Encounters, P2's compartment none");
    t.same(p2Files.Observation, everything, "P2's Observations, those filed under P1 too, as they stood at the kick-off");
    t.same(p2Files.Patient, [p2, linked.id].sort(), 'the Patient linking to P2 is in its compartment too');
    const bothFiles = await files(both);
    t.equal(new Set(bothFiles.Observation).size, bothFiles.Observation!.length, 'each resource once, though in two members\' compartments');
    t.ok([shared.id, dropped.id, deleted.id, joined.id].every((id) => bothFiles.Observation!.includes(id)));

    // patient level: every patient's compartment, each resource once
    const all = await files((await kickOff('Patient/$export?_type=Observation')).headers.get('content-location')!);
    t.equal(all.Observation!.filter((id) => id === shared.id).length, 1, 'patient level: once');
  });

  t.test('the CapabilityStatement declares all three levels', async (t) => {
    const cs = (await server.fhir('metadata')).body;
    t.same(cs.instantiates, ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data']);
    t.match(cs.rest[0].operation, [{ name: 'export' }]);
    t.ok(cs.rest[0].resource.find((r: R) => r.type === 'Patient').operation.some((o: R) => o.name === 'export'));
    t.ok(cs.rest[0].resource.find((r: R) => r.type === 'Group').operation.some((o: R) => o.name === 'export'));
  });
});
