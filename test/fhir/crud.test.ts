/**
 * Integration: the REST interactions of http://hl7.org/fhir/R4/http.html against a real node (HTTP, tokens,
 * LevelDB, Helia, ledger), including conditional headers, Prefer, content negotiation and the ledger entries.
 */
import t from 'tap';
import { startServer } from '../helpers/server.ts';

const patient = {
  resourceType: 'Patient',
  identifier: [{ system: 'http://hospital.example/mrn', value: 'MRN-42' }],
  name: [{ family: 'Quixotebaum', given: ['Ada'] }],
  birthDate: '1970-01-31',
  gender: 'female',
};

t.test('REST interactions', async (t) => {
  const server = await startServer(t);
  const ledgerSize = () => server.app.ledger.size();

  t.test('metadata is public and lists every R4 resource type', async (t) => {
    const res = await server.fhir('metadata', { token: false });
    t.equal(res.status, 200);
    t.equal(res.body.resourceType, 'CapabilityStatement');
    t.equal(res.body.fhirVersion, '4.0.1');
    t.equal(res.body.rest[0].resource.length, 146);
    t.match(res.headers.get('content-type'), /application\/fhir\+json/);
  });

  t.test('no token or a bad token: 401 with WWW-Authenticate, and the attempt is in the ledger', async (t) => {
    const before = ledgerSize();
    const res = await server.fhir('Patient/abc', { token: false });
    t.equal(res.status, 401);
    t.match(res.headers.get('www-authenticate'), /^Bearer realm=/);
    t.equal(res.body.resourceType, 'OperationOutcome');
    const bad = await server.fhir('Patient/abc', { token: 'not.a.jwt' });
    t.equal(bad.status, 401);
    t.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
    t.equal(ledgerSize(), before + 2);
    const [entry] = await server.app.ledger.getEntries(before, before + 1);
    const parsed = JSON.parse(new TextDecoder().decode(entry!.bytes));
    t.equal(parsed.interaction, 'read');
    t.equal(parsed.status, 401);
    t.equal(parsed.error, 'ERR_TOKEN_MISSING');
  });

  let id = '';
  t.test('create assigns an id and answers 201 with Location, ETag and Last-Modified', async (t) => {
    const before = ledgerSize();
    const res = await server.fhir('Patient', { method: 'POST', body: { ...patient, id: 'client-chosen' } });
    t.equal(res.status, 201);
    id = res.body.id;
    t.not(id, 'client-chosen', 'create ignores a client id');
    t.equal(res.headers.get('etag'), 'W/"1"');
    t.equal(res.headers.get('location'), `${server.baseUrl}/Patient/${id}/_history/1`);
    t.ok(res.headers.get('last-modified'));
    t.equal(res.body.meta.versionId, '1');
    t.equal(ledgerSize(), before + 1, 'one ledger entry for the create');
  });

  t.test('read, vread and conditional reads', async (t) => {
    const res = await server.fhir(`Patient/${id}`);
    t.equal(res.status, 200);
    t.same(res.body.name, patient.name);
    t.equal(res.headers.get('etag'), 'W/"1"');
    const v = await server.fhir(`Patient/${id}/_history/1`);
    t.equal(v.status, 200);
    t.same(v.body, res.body);
    t.equal((await server.fhir(`Patient/${id}`, { headers: { 'if-none-match': 'W/"1"' } })).status, 304);
    t.equal((await server.fhir(`Patient/${id}`, { headers: { 'if-none-match': 'W/"9"' } })).status, 200);
    const lastModified = res.headers.get('last-modified')!;
    t.equal((await server.fhir(`Patient/${id}`, { headers: { 'if-modified-since': lastModified } })).status, 304);
    t.equal((await server.fhir(`Patient/${id}/_history/7`)).status, 404);
    t.equal((await server.fhir('Patient/does-not-exist')).status, 404);
    t.equal((await server.fhir('Patient/bad$id')).status, 400);
    t.equal((await server.fhir('NotAType/1')).status, 404);
  });

  t.test('read and vread take _summary and _elements, the subset marked SUBSETTED', async (t) => {
    const subsetted = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
    const elements = await server.fhir(`Patient/${id}?_elements=gender`);
    t.equal(elements.status, 200);
    t.same(Object.keys(elements.body).sort(), ['gender', 'id', 'meta', 'resourceType']);
    t.match(elements.body.meta.tag, [subsetted]);
    t.equal(elements.headers.get('etag'), 'W/"1"');
    const summary = await server.fhir(`Patient/${id}/_history/1?_summary=true`);
    t.same(Object.keys(summary.body).sort(), ['birthDate', 'gender', 'id', 'identifier', 'meta', 'name', 'resourceType']);
    t.match(summary.body.meta.tag, [subsetted]);
    t.same((await server.fhir(`Patient/${id}?_summary=false`)).body.name, patient.name);
    for (const bad of ['_summary=count', '_summary=maybe', '_elements=na-me']) {
      const res = await server.fhir(`Patient/${id}?${bad}`);
      t.equal(res.status, 400, bad);
      t.equal(res.body.resourceType, 'OperationOutcome');
    }
  });

  t.test('If-Match: lists of ETags, *, a bare version; anything else 400', async (t) => {
    t.equal((await server.fhir('Patient/if-match', { method: 'PUT', body: { ...patient, id: 'if-match' } })).status, 201);
    // RFC 9110 §13.1.1: a list of ETags, or * for "exists"; a bare version number as HAPI takes it; not an ETag: 400.
    for (const [ifMatch, status] of [['W/"5", W/"7"', 412], ['W/"abc"', 412], ['garbage', 400], ['W/"1", "x', 400]] as const) {
      const res = await server.fhir('Patient/if-match', { method: 'PUT', body: { ...patient, id: 'if-match', gender: 'male' }, headers: { 'if-match': ifMatch } });
      t.equal(res.status, status, `If-Match ${ifMatch}`);
      t.equal(res.body.resourceType, 'OperationOutcome');
    }
    t.equal((await server.fhir('Patient/if-match')).body.meta.versionId, '1', 'none of them changed anything');
    for (const ifMatch of ['W/"1", W/"2"', '2', '*']) {
      const current2 = (await server.fhir('Patient/if-match')).body;
      const version = Number(current2.meta.versionId);
      const res = await server.fhir('Patient/if-match', { method: 'PUT', body: { ...current2, gender: 'other' }, headers: { 'if-match': ifMatch.replace('2', String(version)) } });
      t.equal(res.status, 200, `If-Match ${ifMatch}`);
    }
    t.equal((await server.fhir('Patient/never-was', { method: 'PUT', body: { ...patient, id: 'never-was' }, headers: { 'if-match': '*' } })).status, 412, 'If-Match * on nothing');
    t.equal((await server.fhir('Patient/never-was')).status, 404, 'stored nothing');
  });

  t.test('update, If-Match and update-as-create', async (t) => {
    const current = (await server.fhir(`Patient/${id}`)).body;
    const res = await server.fhir(`Patient/${id}`, { method: 'PUT', body: { ...current, gender: 'other' }, headers: { 'if-match': 'W/"1"' } });
    t.equal(res.status, 200);
    t.equal(res.headers.get('etag'), 'W/"2"');
    const stale = await server.fhir(`Patient/${id}`, { method: 'PUT', body: { ...current, gender: 'male' }, headers: { 'if-match': 'W/"1"' } });
    t.equal(stale.status, 412);
    t.equal((await server.fhir(`Patient/${id}`)).body.gender, 'other', 'a rejected update changes nothing');
    const created = await server.fhir('Patient/mrn-0042', { method: 'PUT', body: { ...patient, id: 'mrn-0042' } });
    t.equal(created.status, 201);
    t.equal(created.headers.get('etag'), 'W/"1"');
    const mismatch = await server.fhir('Patient/mrn-0042', { method: 'PUT', body: { ...patient, id: 'other' } });
    t.equal(mismatch.status, 400);
    const noId = await server.fhir('Patient/mrn-0042', { method: 'PUT', body: patient });
    t.equal(noId.status, 400);
    const wrongType = await server.fhir('Patient/mrn-0042', { method: 'PUT', body: { resourceType: 'Observation', id: 'mrn-0042' } });
    t.equal(wrongType.status, 400);
  });

  t.test('JSON Patch and FHIRPath Patch', async (t) => {
    const json = await server.fhir(`Patient/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json', 'if-match': 'W/"2"' },
      body: [{ op: 'replace', path: '/birthDate', value: '1971-02-28' }],
    });
    t.equal(json.status, 200);
    t.equal(json.body.birthDate, '1971-02-28');
    t.equal(json.headers.get('etag'), 'W/"3"');
    const fhirpath = await server.fhir(`Patient/${id}`, {
      method: 'PATCH',
      body: {
        resourceType: 'Parameters',
        parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.gender' }, { name: 'value', valueCode: 'female' }] }],
      },
    });
    t.equal(fhirpath.status, 200);
    t.equal(fhirpath.body.gender, 'female');
    const invalid = await server.fhir(`Patient/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: [{ op: 'replace', path: '/birthDate', value: '1971-02-30' }],
    });
    t.equal(invalid.status, 422, 'a patch that produces an invalid resource is rejected');
    t.equal((await server.fhir(`Patient/${id}`)).body.birthDate, '1971-02-28');
  });

  t.test('Prefer return=minimal | representation | OperationOutcome', async (t) => {
    const minimal = await server.fhir('Patient', { method: 'POST', body: patient, headers: { prefer: 'return=minimal' } });
    t.equal(minimal.status, 201);
    t.equal(minimal.text, '');
    t.ok(minimal.headers.get('location'));
    const outcome = await server.fhir('Patient', { method: 'POST', body: patient, headers: { prefer: 'return=OperationOutcome' } });
    t.equal(outcome.body.resourceType, 'OperationOutcome');
    const full = await server.fhir('Patient', { method: 'POST', body: patient, headers: { prefer: 'return=representation' } });
    t.equal(full.body.resourceType, 'Patient');
  });

  t.test('delete makes later reads 410 and keeps history', async (t) => {
    const del = await server.fhir(`Patient/${id}`, { method: 'DELETE' });
    t.equal(del.status, 200);
    t.equal((await server.fhir(`Patient/${id}`)).status, 410);
    t.equal((await server.fhir(`Patient/${id}/_history/1`)).status, 200, 'old versions stay readable');
    t.equal((await server.fhir(`Patient/${id}`, { method: 'DELETE' })).status, 200, 'deleting again is idempotent');
    // http.html#delete: "or if the resource does not exist at all", 200 or 204.
    const absent = await server.fhir('Patient/never-existed', { method: 'DELETE' });
    t.equal(absent.status, 200, 'deleting what never existed is not an error');
    t.match(absent.body, { resourceType: 'OperationOutcome', issue: [{ severity: 'information', diagnostics: /does not exist/ }] });
    t.equal((await server.fhir('Patient/never-existed', { method: 'DELETE', headers: { 'if-match': 'W/"1"' } })).status, 412, 'unless a version was expected');
    t.equal((await server.fhir('Patient/never-existed')).status, 404, 'and it still does not exist (not 410: nothing was deleted)');
    const history = await server.fhir(`Patient/${id}/_history`);
    t.equal(history.status, 200);
    t.equal(history.body.type, 'history');
    t.same(history.body.entry.map((e: any) => e.request.method), ['DELETE', 'PATCH', 'PATCH', 'PUT', 'POST']);
    t.notOk(history.body.entry[0].resource);
    // each version's own content in its entry, after the deletion that has none
    t.same(history.body.entry.slice(1).map((e: any) => `W/"${e.resource.meta.versionId}"`), history.body.entry.slice(1).map((e: any) => e.response.etag));
    const recreated = await server.fhir(`Patient/${id}`, { method: 'PUT', body: { ...patient, id } });
    t.equal(recreated.status, 201);
    t.equal(recreated.headers.get('etag'), 'W/"6"');
    // each entry's response.status is what its write answered: a PUT that re-created the resource 201
    const statuses = async (path: string) => ((await server.fhir(path)).body.entry as any[]).map((e) => `${e.request.method} ${e.response.status}`);
    t.same(await statuses(`Patient/${id}/_history`), ['PUT 201 Created', 'DELETE 200 OK', 'PATCH 200 OK', 'PATCH 200 OK', 'PUT 200 OK', 'POST 201 Created'], 'the deletion as its 200 above');
    t.same(await statuses('Patient/mrn-0042/_history'), ['PUT 201 Created'], 'update-as-create');
    const typeLevel = ((await server.fhir('Patient/_history?_count=1000')).body.entry as any[]).filter((e) => e.fullUrl.endsWith('/Patient/mrn-0042'));
    t.same(typeLevel.map((e) => e.response.status), ['201 Created'], 'the same at type level');
  });

  t.test('type and system history page with stable next links', async (t) => {
    for (let i = 0; i < 5; i++) await server.fhir('Observation', { method: 'POST', body: observation(i) });
    const seen: string[] = [];
    let url: string | undefined = 'Observation/_history?_count=2';
    let pages = 0;
    while (url) {
      const page: any = await server.fhir(url);
      t.equal(page.status, 200);
      pages++;
      seen.push(...page.body.entry.map((e: any) => e.resource.id));
      // A write in the middle of paging must not shift or repeat what the next pages show.
      if (pages === 1) await server.fhir('Observation', { method: 'POST', body: observation(99) });
      const next = page.body.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      url = next?.slice(server.baseUrl.length + 1);
    }
    t.equal(pages, 3);
    t.equal(new Set(seen).size, 5);
    const system = await server.fhir('_history?_count=3');
    t.equal(system.body.entry.length, 3);
    t.equal(system.body.entry[0].resource.resourceType, 'Observation');
    const since = await server.fhir(`Observation/_history?_since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    t.equal(since.body.entry.length, 0);
    t.equal((await server.fhir('Observation/_history?_since=yesterday')).status, 400);
    t.equal((await server.fhir('Observation/_history?_count=abc')).status, 400);
    // _count=0: no entries and no next link, as a search answers it; the instance level still gives its total
    for (const path of ['Observation/_history', '_history', `Patient/${id}/_history`]) {
      const none = await server.fhir(`${path}?_count=0`);
      t.equal(none.status, 200, path);
      t.same([none.body.entry, none.body.link.map((l: any) => l.relation)], [[], ['self']], `${path}?_count=0: no entries, no next`);
      t.match(none.body.link[0].url, /\?_count=0$/);
    }
    t.equal((await server.fhir(`Patient/${id}/_history?_count=0`)).body.total, 6, 'every version counted');
    t.equal((await server.fhir('Observation/_history?_count=0')).body.total, undefined, 'no total at type level, as with any _count');
    t.equal((await server.fhir('Observation/_history?foo=bar')).status, 400);
  });

  t.test('$validate on type and instance', async (t) => {
    const ok = await server.fhir('Patient/$validate', { method: 'POST', body: patient });
    t.equal(ok.status, 200);
    t.equal(ok.body.resourceType, 'OperationOutcome');
    // resource-operation-validate.html: "This operation returns a 200 OK whether or not the resource is valid."
    const bad = await server.fhir('Patient/$validate', { method: 'POST', body: { ...patient, birthDate: '2023-02-30' } });
    t.equal(bad.status, 200, 'an invalid resource is a validation performed');
    t.match(bad.body, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', expression: ['Patient.birthDate'] }] });
    const params = await server.fhir('Patient/mrn-0042/$validate', {
      method: 'POST',
      body: { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'update' }, { name: 'resource', resource: { ...patient, id: 'mrn-0042' } }] },
    });
    t.equal(params.status, 200);

    // The profile parameter: checked against it whether claimed or not; one the server cannot check is an error.
    const SEALED = 'http://sealed-fhir.example/fhir/StructureDefinition/sealed-patient';
    const bare = { resourceType: 'Patient', gender: 'female' };
    const unprofiled = await server.fhir('Patient/$validate', { method: 'POST', body: bare });
    t.equal(unprofiled.status, 200, 'valid R4');
    const profiled = await server.fhir(`Patient/$validate?profile=${encodeURIComponent(SEALED)}`, { method: 'POST', body: bare });
    t.equal(profiled.status, 200, 'but not a sealed-patient');
    t.ok(profiled.body.issue.some((i: any) => i.severity === 'error'), 'which its errors say');
    t.match(JSON.stringify(profiled.body.issue), /Patient\.identifier/);
    const inParameters = await server.fhir('Patient/$validate', {
      method: 'POST',
      body: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: bare }, { name: 'profile', valueUri: SEALED }] },
    });
    t.match(inParameters, { status: 200, body: { issue: [{ severity: 'error' }] } }, 'the profile as a parameter of a Parameters body');
    t.equal((await server.fhir(`Patient/$validate?profile=${encodeURIComponent(SEALED)}`, { method: 'POST', body: patient })).status, 200, 'a conforming patient');
    const unknown = await server.fhir('Patient/$validate?profile=http://example.org/StructureDefinition/bogus', { method: 'POST', body: patient });
    // "A 4xx or 5xx error means that the validation itself could not be performed", as against an unknown profile
    t.equal(unknown.status, 400);
    t.match(unknown.body.issue, [{ severity: 'error', code: 'not-supported', diagnostics: /bogus is not known to this server/ }]);
    const claimedToo = await server.fhir('Patient/$validate?profile=http://example.org/StructureDefinition/bogus', { method: 'POST', body: { ...patient, meta: { profile: ['http://example.org/StructureDefinition/bogus'] } } });
    t.equal(claimedToo.status, 400, 'also when the resource claims it (only a warning without the parameter)');
    t.equal((await server.fhir('Patient/$validate?profile=http://hl7.org/fhir/StructureDefinition/Patient', { method: 'POST', body: patient })).status, 200, 'the base definition');
    const wrongType = await server.fhir(`Observation/$validate?profile=${encodeURIComponent(SEALED)}`, { method: 'POST', body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } });
    t.match(wrongType, { status: 200, body: { issue: [{ severity: 'error', diagnostics: /is for Patient, not Observation/ }] } }, 'a Patient profile for an Observation');
    const deleteAbsent = await server.fhir('Patient/never-there/$validate?mode=delete', { method: 'POST', body: patient });
    t.match(deleteAbsent, { status: 200, body: { issue: [{ severity: 'error', code: 'not-found' }] } }, 'mode=delete of what does not exist');
  });

  t.test('text with Unicode spaces is stored as sent; a base64 value built to stall a backtracking pattern is a 422', async (t) => {
    // The R4 schema's patterns are XML Schema's, whose \s is ASCII whitespace only (validation/schema.ts).
    const name = { text: '山田\u3000太郎', family: '\u00a0山田', given: ['太郎'] };
    const created = await server.fhir('Patient', { method: 'POST', body: { ...patient, identifier: [{ system: 'urn:x', value: 'u3000' }], name: [name] } });
    t.equal(created.status, 201);
    const read = await server.fhir(`Patient/${created.body.id}`);
    t.same(read.body.name, [name], 'read back exactly');
    const stall = await server.fhir('Patient', {
      method: 'POST',
      body: { ...patient, extension: [{ url: 'http://example.org/x', valueBase64Binary: `${'AAAA '.repeat(64)}!` }] },
    });
    t.equal(stall.status, 422);
    t.match(stall.body.issue[0].diagnostics, /is not a valid base64Binary \('!' at position 320/);
    // Valid JSON texts that no FHIR value can be: both were a 500 when the canonical form was written.
    const infinite = await server.fhir('Observation', { method: 'POST', body: '{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e400}}' });
    t.equal(infinite.status, 422);
    t.same(infinite.body.issue[0].expression, ['Observation.valueQuantity.value']);
    const surrogate = await server.fhir('Patient', { method: 'POST', body: '{"resourceType":"Patient","name":[{"text":"a\\ud800"}]}' });
    t.equal(surrogate.status, 422);
    t.match(surrogate.body.issue[0].diagnostics, /lone UTF-16 surrogate/);
    // A byte order mark before the JSON (RFC 8259 lets a parser ignore it; Windows tools write it).
    const bom = await server.fhir('Patient', { method: 'POST', body: '\uFEFF{"resourceType":"Patient","active":true}' });
    t.equal(bom.status, 201);
  });

  t.test('a narrative holding a script is a 422 naming the div; a plain one is stored', async (t) => {
    const xhtml = (inner: string) => `<div xmlns="http://www.w3.org/1999/xhtml">${inner}</div>`;
    const script = await server.fhir('Patient', { method: 'POST', body: { ...patient, text: { status: 'generated', div: xhtml('<script>alert(1)</script>') } } });
    t.equal(script.status, 422);
    t.same(script.body.issue.map((i: any) => [i.code, i.expression]), [['invariant', ['Patient.text.div']]]);
    t.match(script.body.issue[0].diagnostics, /<script> is not allowed in a narrative/);
    const text = { status: 'generated', div: xhtml('<p>Ada&nbsp;Quixotebaum</p>') };
    const plain = await server.fhir('Patient', { method: 'POST', body: { ...patient, text } });
    t.equal(plain.status, 201);
    t.same((await server.fhir(`Patient/${plain.body.id}`)).body.text, text, 'stored as sent, the entity included');
  });

  t.test('null: a 422 naming the element, except where it lines a value up with its extensions', async (t) => {
    const nullName = await server.fhir('Patient', { method: 'POST', body: { ...patient, name: [null] } });
    t.equal(nullName.status, 422);
    t.same(nullName.body.issue.map((i: any) => i.expression), [['Patient.name[0]']]);
    const nullActive = await server.fhir('Patient', { method: 'POST', body: { ...patient, _active: null } });
    t.equal(nullActive.status, 422);
    t.same(nullActive.body.issue.map((i: any) => i.expression), [['Patient.active']]);
    // json.html#primitive, as HAPI writes it: the second given name has only an extension.
    const name = { family: 'Quixotebaum', given: ['Ada', null], _given: [null, { extension: [{ url: 'http://example.org/x', valueString: 'y' }] }] };
    const aligned = await server.fhir('Patient', { method: 'POST', body: { ...patient, name: [name] } });
    t.equal(aligned.status, 201);
    t.same((await server.fhir(`Patient/${aligned.body.id}`)).body.name, [name], 'read back with its nulls');
  });

  t.test('formats, bodies and limits answer 4xx OperationOutcomes, each recorded in the ledger', async (t) => {
    const before = ledgerSize();
    const xml = await server.fhir('Patient/mrn-0042?_format=xml');
    t.equal(xml.status, 406);
    t.equal(xml.body.resourceType, 'OperationOutcome');
    t.equal((await server.fhir('Patient/mrn-0042', { headers: { accept: 'application/fhir+xml' } })).status, 406);
    t.equal((await server.fhir('Patient/mrn-0042', { headers: { accept: 'application/json' } })).headers.get('content-type'), 'application/json; charset=utf-8');
    const pretty = await server.fhir('Patient/mrn-0042?_pretty=true');
    t.match(pretty.text, /\n  "/);
    const xmlBody = await server.fhir('Patient', { method: 'POST', body: '<Patient/>', headers: { 'content-type': 'application/fhir+xml' } });
    t.equal(xmlBody.status, 415);
    t.equal(xmlBody.body.resourceType, 'OperationOutcome');
    const badJson = await server.fhir('Patient', { method: 'POST', body: '{"resourceType": "Patient",' });
    t.equal(badJson.status, 400);
    t.equal(badJson.body.resourceType, 'OperationOutcome');
    const deep = await server.fhir('Patient', { method: 'POST', body: `${'['.repeat(5000)}${']'.repeat(5000)}` });
    t.equal(deep.status, 400);
    const huge = await server.fhir('Patient', { method: 'POST', body: { ...patient, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(17 * 1024 * 1024)}</div>` } } });
    t.equal(huge.status, 413);
    const invalid = await server.fhir('Patient', { method: 'POST', body: { ...patient, gender: 42 } });
    t.equal(invalid.status, 422);
    t.match(JSON.stringify(invalid.body), /Patient\.gender/);
    const unknownElement = await server.fhir('Patient', { method: 'POST', body: { ...patient, favouriteColour: 'blue' } });
    t.equal(unknownElement.status, 422);
    const array = await server.fhir('Patient', { method: 'POST', body: [] });
    t.equal(array.status, 400);
    t.equal((await server.fhir('Patient', { method: 'POST' })).status, 400);
    t.equal((await server.fhir('Patient/mrn-0042', { method: 'POST', body: patient })).status, 405);
    const patchType = await server.fhir('Patient', { method: 'POST', body: patient, headers: { 'content-type': 'application/json-patch+json' } });
    t.equal(patchType.status, 415);
    const badUrl = await fetch(`${server.baseUrl}/Patient/%E0%A4%A`, { headers: { authorization: 'Bearer x' } });
    t.equal(badUrl.status, 400);
    t.equal(((await badUrl.json()) as any).resourceType, 'OperationOutcome');
    // Refused by Node's HTTP parser (16 KiB of request line and headers) before any route: no ledger entry either.
    const longUrl = await server.fhir(`Patient?name=${'a'.repeat(20_000)}`);
    t.equal(longUrl.status, 431);
    t.equal(longUrl.body.resourceType, 'OperationOutcome');
    t.match(longUrl.body.issue[0].diagnostics, /POST \[type\]\/_search/);
    const entries = await server.app.ledger.getEntries(before, ledgerSize());
    const statuses = entries.map(({ bytes }) => JSON.parse(new TextDecoder().decode(bytes)).status as number);
    t.same(
      statuses.filter((s) => s >= 400).sort(),
      [400, 400, 400, 400, 405, 406, 406, 413, 415, 415, 422, 422].sort(),
      'every rejected request left a ledger entry (the malformed and the overlong URL never reached the FHIR routes)',
    );
  });

  t.test('a restart keeps every version and the ledger', async (t) => {
    const before = await server.fhir('Patient/mrn-0042');
    const size = ledgerSize();
    await server.restart();
    t.equal(server.app.ledger.size(), size);
    const after = await server.fhir('Patient/mrn-0042');
    t.same(after.body, before.body);
  });
});

function observation(i: number) {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    subject: { reference: 'Patient/mrn-0042' },
    valueQuantity: { value: 60 + i, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
  };
}
