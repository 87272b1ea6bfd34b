// The server as two widely used FHIR client libraries see it: fhir-kit-client (Vermonster) and Medplum's
// MedplumClient, each driven through its own API against the real server (real HTTP, LevelDB, Helia, tokens), with
// the headers and body shapes they choose. The Synthea records go in as their files are, a batch of conditional
// creates and transactions with conditional and urn:uuid references, and come back out through the same clients.
import fs from 'node:fs';
import path from 'node:path';
import { MedplumClient, OperationOutcomeError } from '@medplum/core';
import type { Bundle, Observation, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { Client, type FhirResource, type PaginationParams } from 'fhir-kit-client';
import t from 'tap';
import { startServer } from '../helpers/server.ts';

const SYNTHEA = path.join(import.meta.dirname, '../fixtures/synthea');
const readBundle = (file: string) => JSON.parse(fs.readFileSync(path.join(SYNTHEA, file), 'utf8')) as Bundle;
const countOf = (bundle: Bundle, type: string) => bundle.entry!.filter((e) => e.resource!.resourceType === type).length;
const statuses = (bundle: Bundle) => [...new Set(bundle.entry!.map((e) => e.response!.status.split(' ')[0]))];
/** The id in a response entry's location (`<base>/Patient/<id>/_history/1`). */
const idOf = (bundle: Bundle, index: number) => /\/[A-Za-z]+\/([^/]+)\/_history\//.exec(bundle.entry![index]!.response!.location!)![1]!;
/** What sending a batch again answers per entry: 200 where its conditional create matches, 201 for a plain POST. */
const resent = (bundle: Bundle) => bundle.entry!.map((e) => (e.request!.ifNoneExist ? '200' : '201'));

/** fhir-kit-client types resources as its own loose `FhirResource`: converted at the boundary to and from R4 types. */
const toKit = <K = FhirResource>(resource: object) => resource as unknown as K;
const fromKit = async <T>(answer: Promise<unknown>) => (await answer) as T;

/** fhir-kit-client rejects with `{ response: { status, data } }` on a non-2xx answer. */
async function rejection(promise: Promise<unknown>): Promise<{ status: number; data: OperationOutcome }> {
  try {
    await promise;
  } catch (err) {
    const response = (err as { response?: { status: number; data: OperationOutcome } }).response;
    if (response) return response;
    throw err;
  }
  throw new Error('expected the request to be rejected');
}

t.test('fhir-kit-client: CRUD, conditional create, paging, history, Synthea batch and transaction', async (t) => {
  const server = await startServer(t);
  const client = new Client({ baseUrl: server.baseUrl, bearerToken: await server.token({ fhirUser: 'Practitioner/kit' }) });

  const capability = await fromKit<{ fhirVersion: string; rest: Array<{ resource: Array<{ type: string }> }> }>(client.capabilityStatement());
  t.equal(capability.fhirVersion, '4.0.1');
  t.ok(capability.rest[0]!.resource.some((r) => r.type === 'Patient'));

  const created = await fromKit<Patient>(client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'Kitclient', given: ['Ann'] }], birthDate: '1980-02-03' } }));
  t.equal(created.meta?.versionId, '1');
  const read = await fromKit<Patient>(client.read({ resourceType: 'Patient', id: created.id! }));
  t.same(read.name, [{ family: 'Kitclient', given: ['Ann'] }]);
  const updated = await fromKit<Patient>(client.update({ resourceType: 'Patient', id: created.id!, body: { ...read, gender: 'female' } }));
  t.equal(updated.meta?.versionId, '2');
  const stale = await rejection(client.update({ resourceType: 'Patient', id: created.id!, body: { ...read, gender: 'male' }, options: { headers: { 'If-Match': 'W/"1"' } } }));
  t.equal(stale.status, 412);
  t.equal(stale.data.resourceType, 'OperationOutcome');
  const patched = await fromKit<Patient>(client.patch({ resourceType: 'Patient', id: created.id!, jsonPatch: [{ op: 'add', path: '/active', value: true }] }));
  t.equal(patched.meta?.versionId, '3');
  t.equal(patched.gender, 'female', 'the stale update changed nothing');
  t.equal((await fromKit<Patient>(client.vread({ resourceType: 'Patient', id: created.id!, version: '1' }))).gender, undefined);
  const history = await fromKit<Bundle>(client.history({ resourceType: 'Patient', id: created.id! }));
  t.same(history.entry!.map((e) => e.resource!.meta!.versionId), ['3', '2', '1']);

  const conditional = { resourceType: 'Patient', body: { resourceType: 'Patient', identifier: [{ system: 'urn:example:mrn', value: 'K-1' }] }, options: { headers: { 'If-None-Exist': 'identifier=urn:example:mrn|K-1' } } };
  const first = await fromKit<Patient>(client.create(conditional));
  const again = await fromKit<Patient>(client.create(conditional));
  t.equal(again.id, first.id, 'If-None-Exist matched the first create');

  const missing = await rejection(client.read({ resourceType: 'Patient', id: 'no-such-patient' }));
  t.equal(missing.status, 404);
  t.equal(missing.data.issue[0]!.code, 'not-found');

  // The Synthea shared records: batches of conditional creates (and plain ones for PractitionerRole). Sent twice,
  // the second time every conditional create matches what the first one stored.
  for (const file of ['_shared/0-hospitalInformation1625911868739.json', '_shared/0-practitionerInformation1625911868739.json']) {
    const batch = readBundle(file);
    const response = await fromKit<Bundle>(client.batch({ body: toKit(batch) }));
    t.equal(response.type, 'batch-response');
    t.same(statuses(response), ['201'], `${file}: every entry created`);
    const again = await fromKit<Bundle>(client.batch({ body: toKit(batch) }));
    t.same(again.entry!.map((e) => e.response!.status.split(' ')[0]), resent(batch), `${file}: sent again, every conditional create matched`);
  }
  // A patient's transaction: urn:uuid references and conditional references to the shared records.
  const record = readBundle('8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json');
  const response = await fromKit<Bundle>(client.transaction({ body: toKit(record) }));
  t.equal(response.type, 'transaction-response');
  t.equal(response.entry!.length, record.entry!.length);
  t.same(statuses(response), ['201']);
  const patientId = idOf(response, record.entry!.findIndex((e) => e.resource!.resourceType === 'Patient'));
  const observations = new Set<string>();
  let page = await fromKit<Bundle | undefined>(client.search({ resourceType: 'Observation', searchParams: { patient: `Patient/${patientId}`, _count: 10 } }));
  t.equal(page!.total, countOf(record, 'Observation'));
  while (page) {
    for (const entry of page.entry ?? []) observations.add(entry.resource!.id!);
    page = page.link?.some((l) => l.relation === 'next') ? await fromKit<Bundle>(client.nextPage({ bundle: toKit<PaginationParams['bundle']>(page) })!) : undefined;
  }
  t.equal(observations.size, countOf(record, 'Observation'), 'nextPage walked every Observation once');
  const encounter = record.entry!.find((e) => e.resource!.resourceType === 'Encounter')!.resource as { participant: Array<{ individual: { reference: string } }> };
  t.match(encounter.participant[0]!.individual.reference, /^Practitioner\?identifier=/, 'the file refers to its practitioner conditionally');
  const encounters = await fromKit<Bundle>(client.compartmentSearch({ resourceType: 'Encounter', compartment: { resourceType: 'Patient', id: patientId }, searchParams: { _include: 'Encounter:participant' } }));
  const included = encounters.entry!.filter((e) => e.search?.mode === 'include').map((e) => e.resource!.resourceType);
  t.equal(encounters.total, countOf(record, 'Encounter'));
  t.ok(included.length > 0 && included.every((type) => type === 'Practitioner'), 'the conditional references were resolved to the stored practitioners');

  t.equal((await fromKit<OperationOutcome>(client.delete({ resourceType: 'Patient', id: created.id! }))).resourceType, 'OperationOutcome');
  t.equal((await rejection(client.read({ resourceType: 'Patient', id: created.id! }))).status, 410);
});

t.test('MedplumClient: CRUD, upsert, paging, $everything, transaction, errors as OperationOutcome', async (t) => {
  const server = await startServer(t);
  const medplum = new MedplumClient({ baseUrl: new URL('/', server.baseUrl).href, fhirUrlPath: 'fhir', cacheTime: 0, fetch: globalThis.fetch });
  medplum.setAccessToken(await server.token({ fhirUser: 'Practitioner/medplum' }));

  const created = await medplum.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Medplumclient' }] });
  t.equal((await medplum.readResource('Patient', created.id!)).name![0]!.family, 'Medplumclient');
  const updated = await medplum.updateResource<Patient>({ ...created, gender: 'other' });
  t.equal(updated.meta?.versionId, '2');
  const patched = await medplum.patchResource('Patient', created.id!, [{ op: 'add', path: '/active', value: true }]);
  t.equal(patched.active, true);
  t.equal((await medplum.readVersion('Patient', created.id!, '1')).gender, undefined);
  t.equal((await medplum.readHistory('Patient', created.id!)).entry!.length, 3);
  t.equal((await medplum.searchOne('Patient', { name: 'medplum' }))?.id, created.id);

  const identifier = [{ system: 'urn:example:mrn', value: 'M-1' }];
  const first = await medplum.createResourceIfNoneExist<Patient>({ resourceType: 'Patient', identifier }, 'identifier=urn:example:mrn|M-1');
  t.equal((await medplum.createResourceIfNoneExist<Patient>({ resourceType: 'Patient', identifier }, 'identifier=urn:example:mrn|M-1')).id, first.id);
  const upserted = await medplum.upsertResource<Patient>({ resourceType: 'Patient', identifier, active: false }, 'identifier=urn:example:mrn|M-1');
  t.equal(upserted.id, first.id, 'the conditional update updated the one match');
  t.equal(upserted.meta?.versionId, '2');

  const invalid = await medplum.createResource({ resourceType: 'Patient', gender: 'bogus' } as unknown as Patient).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(invalid instanceof OperationOutcomeError, 'a rejected resource reaches the client as an OperationOutcome');
  t.match((invalid as OperationOutcomeError).outcome.issue[0], { severity: 'error', expression: ['Patient.gender'] });

  // Synthea: the shared records first (Medplum sends a batch as it is), then a patient's transaction.
  for (const file of ['_shared/0-hospitalInformation1625911868739.json', '_shared/0-practitionerInformation1625911868739.json']) {
    t.same(statuses(await medplum.executeBatch(readBundle(file))), ['201']);
  }
  const record = readBundle('e1dbcb04-9c64-e94c-2bd0-d7b199d369e5.json');
  const response = await medplum.executeBatch(record);
  t.same(statuses(response), ['201']);
  const patientId = idOf(response, record.entry!.findIndex((e) => e.resource!.resourceType === 'Patient'));

  const observations: Observation[] = [];
  for await (const page of medplum.searchResourcePages('Observation', { patient: `Patient/${patientId}`, _count: 25 })) observations.push(...page);
  t.equal(observations.length, countOf(record, 'Observation'));
  t.equal(new Set(observations.map((o) => o.id)).size, observations.length, 'every page held new Observations');
  const newestFirst = await medplum.searchResources('Observation', { patient: `Patient/${patientId}`, _sort: '-date', _count: 200 });
  const dates = newestFirst.map((o) => o.effectiveDateTime!);
  t.same(dates, [...dates].sort().reverse(), '_sort=-date');

  // $everything: the compartment (every record of the file but its Medications, which no patient's compartment
  // holds), the patient itself first.
  const everything = await medplum.readPatientEverything(patientId);
  t.equal(everything.total, record.entry!.filter((e) => e.resource!.resourceType !== 'Medication').length);
  t.match(everything.entry![0], { resource: { resourceType: 'Patient', id: patientId }, search: { mode: 'match' } });

  await medplum.deleteResource('Patient', created.id!);
  const gone = await medplum.readResource('Patient', created.id!).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(gone instanceof OperationOutcomeError);
  t.equal((gone as OperationOutcomeError).outcome.issue[0]!.code, 'deleted');
});

t.test('a HAPI-style client: both formats offered, FHIR JSON chosen; the DSTU2 JSON type still read', async (t) => {
  const server = await startServer(t);
  const headers = { authorization: `Bearer ${await server.token()}`, 'accept-charset': 'utf-8' };
  // HAPI's generic client offers XML and JSON at equal weight, as it does by default.
  const accept = 'application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, application/json+fhir;q=0.9';
  const legacy = await fetch(`${server.baseUrl}/Patient`, {
    method: 'POST',
    headers: { ...headers, accept, 'content-type': 'application/json+fhir; charset=UTF-8' },
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Legacy' }] }),
  });
  t.equal(legacy.status, 201);
  t.equal(legacy.headers.get('content-type'), 'application/fhir+json; charset=utf-8');
  const id = ((await legacy.json()) as Patient).id!;
  const read = await fetch(`${server.baseUrl}/Patient/${id}`, { headers: { ...headers, accept } });
  t.equal(read.status, 200);
  t.equal(((await read.json()) as Patient).name![0]!.family, 'Legacy');
  const xml = await fetch(`${server.baseUrl}/Patient`, { method: 'POST', headers: { ...headers, accept, 'content-type': 'application/fhir+xml' }, body: '<Patient xmlns="http://hl7.org/fhir"/>' });
  t.equal(xml.status, 415);
  t.equal(((await xml.json()) as OperationOutcome).resourceType, 'OperationOutcome');
});
