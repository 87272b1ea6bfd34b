/**
 * Integration: conditional entries and conditional references in batch and transaction Bundles
 * (http://hl7.org/fhir/R4/http.html#trules, http://hl7.org/fhir/R4/bundle.html#references) on a real node.
 */
import t from 'tap';
import { startServer } from '../helpers/server.ts';

const NPI = 'http://hl7.org/fhir/sid/us-npi';
const MRN = 'http://hospital.example/mrn';

const practitionerEntry = (npi: string) => ({
  fullUrl: `urn:uuid:00000000-0000-4000-8000-${npi.padStart(12, '0')}`,
  resource: { resourceType: 'Practitioner', identifier: [{ system: NPI, value: npi }], name: [{ family: `Doctor${npi}` }] },
  request: { method: 'POST', url: 'Practitioner', ifNoneExist: `identifier=${NPI}|${npi}` },
});

t.test('conditional batch and transaction entries', async (t) => {
  const server = await startServer(t);
  const post = (body: unknown) => server.fhir('', { method: 'POST', body });
  const ids = (type: string, query: Record<string, string[]>) => server.app.repo.findIds(type, query);

  t.test('batch with ifNoneExist: the second run creates nothing', async (t) => {
    const batch = { resourceType: 'Bundle', type: 'batch', entry: [practitionerEntry('1001'), practitionerEntry('1002')] };
    const first = await post(batch);
    t.same(first.body.entry.map((e: any) => e.response.status), ['201 Created', '201 Created']);
    const second = await post(batch);
    t.same(second.body.entry.map((e: any) => e.response.status), ['200 OK', '200 OK']);
    t.equal(second.body.entry[0].resource.id, first.body.entry[0].response.location.split('/')[5], 'the existing resource is returned');
    t.equal((await ids('Practitioner', { identifier: [`${NPI}|1001`] })).length, 1);
  });

  t.test('an empty ifNoneExist is a conditional create without criteria: 400, nothing stored (http.html#ccreate)', async (t) => {
    const entry = { resource: { resourceType: 'Practitioner', identifier: [{ system: NPI, value: 'empty-ine' }] }, request: { method: 'POST', url: 'Practitioner', ifNoneExist: '' } };
    const tx = await post({ resourceType: 'Bundle', type: 'transaction', entry: [entry] });
    t.equal(tx.status, 400);
    t.match(tx.body.issue, [{ severity: 'error', code: 'invalid', diagnostics: /Bundle\.entry\[0\].*ifNoneExist needs search parameters/ }]);
    const batch = await post({ resourceType: 'Bundle', type: 'batch', entry: [entry] });
    t.equal(batch.status, 200);
    t.match(batch.body.entry[0].response, { status: '400 Bad Request', outcome: { issue: [{ code: 'invalid', diagnostics: /needs search parameters/ }] } });
    t.same(await ids('Practitioner', { identifier: [`${NPI}|empty-ine`] }), [], 'nothing created');
  });

  t.test('a transaction resolves conditional references and urn:uuid references to a matched conditional create', async (t) => {
    const [practitioner] = await ids('Practitioner', { identifier: [`${NPI}|1001`] });
    const res = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111',
          resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-1' }], generalPractitioner: [{ reference: `Practitioner?identifier=${NPI}|1002` }] },
          request: { method: 'POST', url: 'Patient' },
        },
        // matches the Practitioner created by the batch: its urn:uuid must point at that one
        { ...practitionerEntry('1001'), fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222' },
        {
          resource: {
            resourceType: 'Encounter',
            status: 'finished',
            class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
            subject: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' },
            participant: [{ individual: { reference: 'urn:uuid:22222222-2222-4222-8222-222222222222' } }, { individual: { reference: `Practitioner?identifier=${NPI}|1002` } }],
          },
          request: { method: 'POST', url: 'Encounter' },
        },
      ],
    });
    t.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
    t.same(res.body.entry.map((e: any) => e.response.status), ['201 Created', '200 OK', '201 Created']);
    const patientId = res.body.entry[0].response.location.split('/')[5];
    const [npi1002] = await ids('Practitioner', { identifier: [`${NPI}|1002`] });
    const encounter = await server.fhir(res.body.entry[2].response.location.split('/').slice(4, 6).join('/'));
    t.equal(encounter.body.subject.reference, `Patient/${patientId}`);
    t.equal(encounter.body.participant[0].individual.reference, `Practitioner/${practitioner}`, 'urn:uuid of a matched conditional create → the existing resource');
    t.equal(encounter.body.participant[1].individual.reference, `Practitioner/${npi1002}`, 'conditional reference resolved');
    const patient = await server.fhir(`Patient/${patientId}`);
    t.equal(patient.body.generalPractitioner[0].reference, `Practitioner/${npi1002}`);
    t.equal((await ids('Practitioner', { identifier: [`${NPI}|1001`] })).length, 1, 'no second Practitioner');
  });

  t.test('an unresolvable conditional reference fails the transaction, naming the entry', async (t) => {
    await post({ resourceType: 'Bundle', type: 'batch', entry: [{ resource: { resourceType: 'Practitioner', identifier: [{ system: NPI, value: 'dup' }] }, request: { method: 'POST', url: 'Practitioner' } }, { resource: { resourceType: 'Practitioner', identifier: [{ system: NPI, value: 'dup' }] }, request: { method: 'POST', url: 'Practitioner' } }] });
    const before = (await ids('Patient', { identifier: [`${MRN}|`] })).length;
    const tx = (reference: string) =>
      post({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-2' }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-3' }], generalPractitioner: [{ reference }] }, request: { method: 'POST', url: 'Patient' } },
        ],
      });
    const none = await tx(`Practitioner?identifier=${NPI}|nobody`);
    t.equal(none.status, 400);
    t.match(none.body.issue[0].diagnostics, /Bundle\.entry\[1\].*matches no resource/);
    t.equal(none.body.issue[0].code !== undefined, true);
    const many = await tx(`Practitioner?identifier=${NPI}|dup`);
    t.equal(many.status, 412);
    t.match(many.body.issue[0].diagnostics, /Bundle\.entry\[1\].*more than one/);
    t.equal((await tx('Practitioner?unknown-param=1')).status, 400, 'a bad condition is a 400');
    t.equal((await ids('Patient', { identifier: [`${MRN}|`] })).length, before, 'nothing stored');
  });

  t.test('conditional PUT, PATCH and DELETE entries in a transaction', async (t) => {
    const seed = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: ['TX-U', 'TX-D', 'TX-P'].map((mrn) => ({ resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: mrn }] }, request: { method: 'POST', url: 'Patient' } })),
    });
    t.equal(seed.status, 200);
    const [u] = await ids('Patient', { identifier: [`${MRN}|TX-U`] });
    const [d] = await ids('Patient', { identifier: [`${MRN}|TX-D`] });
    const [p] = await ids('Patient', { identifier: [`${MRN}|TX-P`] });
    const res = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-U' }], gender: 'female' }, request: { method: 'PUT', url: `Patient?identifier=${MRN}|TX-U` } },
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-NEW' }] }, request: { method: 'PUT', url: `Patient?identifier=${MRN}|TX-NEW` } },
        { request: { method: 'DELETE', url: `Patient?identifier=${MRN}|TX-D` } },
        { request: { method: 'DELETE', url: `Patient?identifier=${MRN}|TX-NOBODY` } },
        {
          resource: { resourceType: 'Parameters', parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient' }, { name: 'name', valueString: 'active' }, { name: 'value', valueBoolean: true }] }] },
          request: { method: 'PATCH', url: `Patient?identifier=${MRN}|TX-P` },
        },
      ],
    });
    t.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
    t.same(res.body.entry.map((e: any) => e.response.status), ['200 OK', '201 Created', '200 OK', '200 OK', '200 OK']);
    t.equal((await server.fhir(`Patient/${u}`)).body.gender, 'female');
    t.equal((await server.fhir(`Patient/${d}`)).status, 410);
    t.equal((await server.fhir(`Patient/${p}`)).body.active, true);
    t.equal((await ids('Patient', { identifier: [`${MRN}|TX-NEW`] })).length, 1);
  });

  t.test('a conditional entry with several matches fails the transaction with 412, naming the entry', async (t) => {
    const before = server.app.ledger.size();
    const res = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-4' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Practitioner', identifier: [{ system: NPI, value: 'dup' }] }, request: { method: 'POST', url: 'Practitioner', ifNoneExist: `identifier=${NPI}|dup` } },
      ],
    });
    t.equal(res.status, 412);
    t.match(res.body.issue[0].diagnostics, /Bundle\.entry\[1\]/);
    t.equal(server.app.ledger.size(), before + 1, 'only the failure is recorded');
    t.same(await ids('Patient', { identifier: [`${MRN}|TX-4`] }), []);
  });

  t.test('conditions and conditional references see what the transaction itself writes (http.html#trules)', async (t) => {
    // Two conditional creates of one identifier: one resource; the second entry stands for the first's.
    const twice = await post({ resourceType: 'Bundle', type: 'transaction', entry: [practitionerEntry('2001'), { ...practitionerEntry('2001'), fullUrl: 'urn:uuid:00000000-0000-4000-8000-aaaaaaaaaaaa' }] });
    t.equal(twice.status, 200, JSON.stringify(twice.body).slice(0, 300));
    t.same(twice.body.entry.map((e: any) => e.response.status), ['201 Created', '200 OK']);
    const made = await ids('Practitioner', { identifier: [`${NPI}|2001`] });
    t.equal(made.length, 1, 'one Practitioner, not two');
    t.match(twice.body.entry[1].response.location, `Practitioner/${made[0]}/`);

    // A conditional reference to a resource created in the same transaction.
    const referred = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Practitioner', identifier: [{ system: NPI, value: '2002' }] }, request: { method: 'POST', url: 'Practitioner' } },
        {
          resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, participant: [{ individual: { reference: `Practitioner?identifier=${NPI}|2002` } }] },
          request: { method: 'POST', url: 'Encounter' },
        },
      ],
    });
    t.equal(referred.status, 200, JSON.stringify(referred.body).slice(0, 300));
    const [doctor] = await ids('Practitioner', { identifier: [`${NPI}|2002`] });
    const encounter = await server.fhir(referred.body.entry[1].response.location.replace(/^.*\/fhir\/|\/_history\/.*$/g, ''));
    t.equal(encounter.body.participant[0].individual.reference, `Practitioner/${doctor}`);

    // A conditional update resolving to the transaction's own create overlaps it: the spec says the transaction SHALL fail.
    const overlap = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-OV' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'TX-OV' }], active: true }, request: { method: 'PUT', url: `Patient?identifier=${MRN}|TX-OV` } },
      ],
    });
    t.equal(overlap.status, 400, 'not two patients with one MRN');
    t.match(overlap.body.issue[0].diagnostics, /both change Patient\//);
    t.same(await ids('Patient', { identifier: [`${MRN}|TX-OV`] }), [], 'and nothing stored');

    // A resource the transaction deletes no longer satisfies a conditional create.
    const gone = (await post({ resourceType: 'Bundle', type: 'transaction', entry: [practitionerEntry('2003')] })).body.entry[0].response.location.split('/')[5];
    const replaced = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'DELETE', url: `Practitioner/${gone}` } }, practitionerEntry('2003')],
    });
    t.equal(replaced.status, 200, JSON.stringify(replaced.body).slice(0, 300));
    t.same(replaced.body.entry.map((e: any) => e.response.status), ['200 OK', '201 Created']);
    const now = await ids('Practitioner', { identifier: [`${NPI}|2003`] });
    t.equal(now.length, 1);
    t.not(now[0], gone, 'a new Practitioner replaced the deleted one');
  });
});
