/**
 * Integration: batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction) on a real node.
 */
import t from 'tap';
import { startServer } from '../helpers/server.ts';

const patientEntry = (fullUrl: string, family: string) => ({
  fullUrl,
  resource: { resourceType: 'Patient', name: [{ family }] },
  request: { method: 'POST', url: 'Patient' },
});

const observationEntry = (subject: string) => ({
  resource: {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'heart rate' },
    subject: { reference: subject },
  },
  request: { method: 'POST', url: 'Observation' },
});

t.test('transaction and batch', async (t) => {
  const server = await startServer(t);
  const transaction = (entry: unknown[]) => server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry } });

  t.test('a transaction rewrites urn:uuid references and commits all entries at once', async (t) => {
    const before = server.app.ledger.size();
    const res = await server.fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          observationEntry('urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a'),
          patientEntry('urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a', 'Transactor'),
          { resource: { resourceType: 'Patient', id: 'tx-put', name: [{ family: 'Put' }] }, request: { method: 'PUT', url: 'Patient/tx-put' } },
        ],
      },
    });
    t.equal(res.status, 200);
    t.equal(res.body.type, 'transaction-response');
    t.same(res.body.entry.map((e: any) => e.response.status), ['201 Created', '201 Created', '201 Created']);
    const patientUrl = res.body.entry[1].response.location as string;
    const observationUrl = res.body.entry[0].response.location as string;
    t.equal(server.app.ledger.size(), before + 4, 'one entry per resource plus one for the transaction');
    const patientId = patientUrl.split('/')[patientUrl.split('/').indexOf('Patient') + 1];
    const observation = await server.fhir(observationUrl.slice(server.baseUrl.length + 1).replace(/\/_history\/\d+$/, ''));
    t.equal(observation.body.subject.reference, `Patient/${patientId}`);
  });

  t.test('a transaction rewrites placeholders outside references too, and relative references to absolute fullUrls', async (t) => {
    const obs = 'urn:uuid:22222222-2222-4222-8222-222222222222';
    const binary = 'urn:uuid:33333333-3333-4333-8333-333333333333';
    const canonical = 'http://example.org/fhir/StructureDefinition/kept';
    const questionnaire = 'urn:uuid:55555555-5555-4555-8555-555555555555';
    const res = await transaction([
      {
        fullUrl: 'http://example.org/fhir/Patient/abc',
        resource: {
          resourceType: 'Patient',
          name: [{ family: 'Placeholders' }],
          text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${obs}">obs</a> <img src='${binary}' alt="scan"/></div>` },
          extension: [{ url: 'http://example.org/ext', valueUri: obs }, { url: 'http://example.org/unknown', valueUri: 'urn:uuid:44444444-4444-4444-8444-444444444444' }],
          // Synthea's DocumentReferences name their DiagnosticReport so: a string, data to keep as sent
          identifier: [{ system: 'urn:ietf:rfc:3986', value: obs }],
          contact: [{ name: { text: obs } }],
        },
        request: { method: 'POST', url: 'Patient' },
      },
      { fullUrl: obs, ...observationEntry('http://example.org/fhir/Patient/abc') },
      { fullUrl: 'http://example.org/fhir/Observation/o1', ...observationEntry('Patient/abc') },
      { fullUrl: binary, resource: { resourceType: 'Binary', contentType: 'text/plain', data: 'aGk=' }, request: { method: 'POST', url: 'Binary' } },
      {
        resource: { resourceType: 'DocumentReference', status: 'current', subject: { reference: 'http://example.org/fhir/Patient/abc' }, content: [{ attachment: { contentType: 'text/plain', url: binary } }] },
        request: { method: 'POST', url: 'DocumentReference' },
      },
      {
        fullUrl: canonical,
        resource: { resourceType: 'Basic', code: { text: 'canonical-like' }, extension: [{ url: 'http://example.org/same', valueUri: canonical }] },
        request: { method: 'POST', url: 'Basic' },
      },
      { fullUrl: questionnaire, resource: { resourceType: 'Questionnaire', status: 'active' }, request: { method: 'POST', url: 'Questionnaire' } },
      { resource: { resourceType: 'QuestionnaireResponse', status: 'completed', questionnaire }, request: { method: 'POST', url: 'QuestionnaireResponse' } },
    ]);
    t.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    const [patientRef, obsRef, relativeRef, binaryRef, docRef, basicRef, questionnaireRef, responseRef] = res.body.entry.map((e: any) => e.response.location.replace(/^.*\/fhir\/|\/_history\/.*$/g, ''));
    const patient = (await server.fhir(patientRef)).body;
    t.equal(patient.extension[0].valueUri, obsRef, 'a uri naming an entry is rewritten');
    t.equal(patient.extension[1].valueUri, 'urn:uuid:44444444-4444-4444-8444-444444444444', 'one naming no entry is left as it is');
    t.same(patient.identifier[0], { system: 'urn:ietf:rfc:3986', value: obs }, 'a string holding a placeholder is data: kept as sent');
    t.equal(patient.contact[0].name.text, obs, 'in a backbone element too');
    t.match(patient.text.div, `href="${obsRef}"`, 'narrative links are rewritten');
    t.match(patient.text.div, `src='${binaryRef}'`);
    t.equal((await server.fhir(obsRef)).body.subject.reference, patientRef, 'the absolute fullUrl in a reference');
    t.equal((await server.fhir(relativeRef)).body.subject.reference, patientRef, 'Patient/abc, resolved against its entry\'s fullUrl http://example.org/fhir/...');
    const doc = (await server.fhir(docRef)).body;
    t.equal(doc.subject.reference, patientRef, 'the absolute fullUrl itself');
    t.equal(doc.content[0].attachment.url, binaryRef, 'an attachment url naming a Binary entry');
    t.equal((await server.fhir(basicRef)).body.extension[0].valueUri, canonical, 'an absolute URL outside references is never rewritten');
    t.equal((await server.fhir(responseRef)).body.questionnaire, questionnaireRef, 'a canonical (a uri) naming an entry is rewritten');
    for (const e of res.body.entry) {
      const stored = (await server.fhir(e.response.location.replace(/^.*\/fhir\//, ''))).body;
      t.equal(e.response.lastModified, stored.meta.lastUpdated, 'lastModified is the version\'s instant, milliseconds included');
    }
  });

  t.test('a JSON Patch in a transaction travels as a Binary (application/json-patch+json)', async (t) => {
    const id = (await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', gender: 'female' } })).body.id;
    const binary = (patch: unknown) => ({ resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(patch)).toString('base64') });
    const tx = (resource: unknown) => transaction([{ resource, request: { method: 'PATCH', url: `Patient/${id}` } }]);
    const ok = await tx(binary([{ op: 'replace', path: '/gender', value: 'other' }, { op: 'add', path: '/active', value: true }]));
    t.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    t.equal(ok.body.entry[0].response.status, '200 OK');
    const read = (await server.fhir(`Patient/${id}`)).body;
    t.equal(read.gender, 'other');
    t.equal(read.active, true);
    for (const [resource, why] of [
      [{ resourceType: 'Binary', contentType: 'application/json-patch+json', data: '!!' }, 'data that is not base64'],
      [{ resourceType: 'Binary', contentType: 'application/json-patch+json' }, 'no data'],
      [{ ...binary([]), data: Buffer.from('[{"op":').toString('base64') }, 'a patch that is not JSON'],
    ] as const) {
      const res = await tx(resource);
      t.equal(res.status, 400, why);
      t.equal(res.body.resourceType, 'OperationOutcome');
    }
    t.equal((await tx(binary([{ op: 'test', path: '/gender', value: 'male' }]))).status, 422, 'a failing test op');
    t.equal((await server.fhir(`Patient/${id}`)).body.meta.versionId, '2', 'none of the refused patches changed anything');
  });

  t.test('a failing transaction stores nothing and names the entry', async (t) => {
    const history = (await server.fhir('_history?_count=1000')).body.entry.length;
    const before = server.app.ledger.size();
    const res = await server.fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [patientEntry('urn:uuid:0d0f3c4e-8b47-4d2a-9c57-0c1f0c1a3a11', 'Never'), { resource: { resourceType: 'Patient', birthDate: '2001-13-01' }, request: { method: 'POST', url: 'Patient' } }],
      },
    });
    t.equal(res.status, 422);
    t.match(JSON.stringify(res.body), /Bundle\.entry\[1\]/);
    t.equal(server.app.ledger.size(), before + 1, 'only the failed transaction is recorded');
    t.equal((await server.fhir('_history?_count=1000')).body.entry.length, history, 'nothing stored');
  });

  t.test('transaction conflicts: the same resource twice, If-Match on a stale version', async (t) => {
    const twice = await server.fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: { resourceType: 'Patient', id: 'dup' }, request: { method: 'PUT', url: 'Patient/dup' } },
          { resource: { resourceType: 'Patient', id: 'dup' }, request: { method: 'PUT', url: 'Patient/dup' } },
        ],
      },
    });
    t.equal(twice.status, 400);
    const stale = await server.fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Patient', id: 'tx-put' }, request: { method: 'PUT', url: 'Patient/tx-put', ifMatch: 'W/"7"' } }],
      },
    });
    t.equal(stale.status, 412);
  });

  t.test('a transaction runs DELETE, POST, PUT, GET in that order', async (t) => {
    const res = await server.fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { request: { method: 'GET', url: 'Patient/tx-put' } },
          { resource: { resourceType: 'Patient', id: 'tx-put', gender: 'male' }, request: { method: 'PUT', url: 'Patient/tx-put' } },
        ],
      },
    });
    t.equal(res.status, 200);
    t.equal(res.body.entry[0].resource.gender, 'male', 'the GET sees the PUT of the same transaction');
    t.equal(res.body.entry[1].response.status, '200 OK');
  });

  t.test('a DELETE entry answers 200 OK, as a DELETE alone does, and its history entry says the same', async (t) => {
    for (const type of ['transaction', 'batch']) {
      const id = `del-${type}`;
      t.equal((await server.fhir(`Patient/${id}`, { method: 'PUT', body: { resourceType: 'Patient', id } })).status, 201);
      const res = await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type, entry: [{ request: { method: 'DELETE', url: `Patient/${id}` } }] } });
      t.equal(res.status, 200, type);
      t.match(res.body.entry[0].response, { status: '200 OK', etag: 'W/"2"', outcome: { resourceType: 'OperationOutcome' } }, type);
      const history = await server.fhir(`Patient/${id}/_history`);
      t.same(history.body.entry.map((e: any) => `${e.request.method} ${e.response.status}`), ['DELETE 200 OK', 'PUT 201 Created'], type);
    }
  });

  t.test('a batch runs entries independently', async (t) => {
    const res = await server.fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          patientEntry('urn:uuid:aa8c5a7e-5f62-4ad4-bf6e-d2f5a07c3d01', 'Batcher'),
          { request: { method: 'GET', url: 'Patient/does-not-exist' } },
          { resource: { resourceType: 'Patient', gender: 'nope' }, request: { method: 'POST', url: 'Patient' } },
          { request: { method: 'GET', url: 'Patient/tx-put' } },
        ],
      },
    });
    t.equal(res.status, 200);
    t.equal(res.body.type, 'batch-response');
    t.same(res.body.entry.map((e: any) => e.response.status.slice(0, 3)), ['201', '404', '422', '200']);
    t.equal(res.body.entry[1].response.outcome.resourceType, 'OperationOutcome');
  });

  t.test('malformed bundles are 400s', async (t) => {
    t.equal((await server.fhir('', { method: 'POST', body: { resourceType: 'Patient' } })).status, 400);
    t.equal((await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'collection' } })).status, 400);
    t.equal((await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET' } }] } })).status, 200);
    t.equal((await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'FROB', url: 'Patient' } }] } })).status, 400);
    t.equal((await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url: 'http://elsewhere.example/Patient/1' } }] } })).status, 400);
  });
});
