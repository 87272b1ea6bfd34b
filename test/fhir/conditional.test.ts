/**
 * Integration: conditional create, update, delete and patch over HTTP on a real node, each with 0, 1 and many
 * matches (http://hl7.org/fhir/R4/http.html#ccreate, #cond-update, #3.1.0.7.1, #patch), and the race of two
 * identical conditional creates.
 */
import t from 'tap';
import { startServer, type TestServer } from '../helpers/server.ts';

const SYSTEM = 'http://hospital.example/mrn';

const patient = (mrn: string, extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', identifier: [{ system: SYSTEM, value: mrn }], ...extra });

async function count(server: TestServer, query: string): Promise<string[]> {
  return server.app.repo.findIds('Patient', Object.fromEntries([...new URLSearchParams(query)].map(([k, v]) => [k, [v]])));
}

t.test('conditional interactions', async (t) => {
  const server = await startServer(t);
  const post = (body: unknown, ifNoneExist: string) => server.fhir('Patient', { method: 'POST', body, headers: { 'if-none-exist': ifNoneExist } });

  t.test('conditional create: 0 → 201, 1 → 200 with the existing resource and no write, many → 412', async (t) => {
    const first = await post(patient('C-1', { gender: 'female' }), `identifier=${SYSTEM}|C-1`);
    t.equal(first.status, 201);
    const ledger = server.app.ledger.size();
    const again = await post(patient('C-1', { gender: 'male' }), `identifier=${SYSTEM}|C-1`);
    t.equal(again.status, 200);
    t.equal(again.body.id, first.body.id);
    t.equal(again.body.gender, 'female', 'the existing resource, not the body sent');
    t.equal(again.headers.get('etag'), 'W/"1"');
    t.match(again.headers.get('location'), new RegExp(`/Patient/${first.body.id}/_history/1$`));
    t.equal(server.app.ledger.size(), ledger + 1, 'one audit entry, no version written');
    const [entry] = await server.app.ledger.getEntries(ledger, ledger + 1);
    const text = new TextDecoder().decode(entry!.bytes);
    t.match(JSON.parse(text).query, /^identifier=h%3A[A-Za-z0-9_-]{43}$/, 'the condition is audited like a search: values as keyed hashes');
    t.notMatch(text, /C-1/, 'no plaintext condition value in the ledger');
    t.same(await count(server, `identifier=${SYSTEM}|C-1`), [first.body.id]);

    // the Type?query form some clients send is accepted too
    t.equal((await post(patient('C-1'), `Patient?identifier=${SYSTEM}|C-1`)).status, 200);

    await server.fhir('Patient', { method: 'POST', body: patient('C-2') });
    await server.fhir('Patient', { method: 'POST', body: patient('C-2') });
    const many = await post(patient('C-2'), `identifier=${SYSTEM}|C-2`);
    t.equal(many.status, 412);
    t.equal(many.body.resourceType, 'OperationOutcome');
    t.equal((await count(server, `identifier=${SYSTEM}|C-2`)).length, 2, 'nothing created');
  });

  t.test('conditional create: bad conditions are 400', async (t) => {
    t.equal((await post(patient('C-3'), 'bogus-param=1')).status, 400);
    // If-None-Exist with no criteria (empty, or blanks the HTTP parser trims away) is malformed, not a plain create
    for (const empty of ['', '   ']) {
      t.match(await post(patient('C-3'), empty), { status: 400, body: { resourceType: 'OperationOutcome', issue: [{ code: 'invalid', diagnostics: /If-None-Exist needs search parameters/ }] } }, JSON.stringify(empty));
    }
    t.equal((await post(patient('C-3'), 'Observation?code=x')).status, 400);
    t.same(await count(server, `identifier=${SYSTEM}|C-3`), [], 'nothing created');
  });

  t.test('two identical conditional creates in parallel create one resource', async (t) => {
    const results = await Promise.all(Array.from({ length: 6 }, () => post(patient('RACE-1'), `identifier=${SYSTEM}|RACE-1`)));
    t.same(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 201]);
    t.equal(new Set(results.map((r) => r.body.id)).size, 1, 'every response names the same resource');
    t.equal((await count(server, `identifier=${SYSTEM}|RACE-1`)).length, 1);
  });

  t.test('conditional update: 0 → create, 1 → update, many → 412', async (t) => {
    const put = (query: string, body: unknown) => server.fhir(`Patient?${query}`, { method: 'PUT', body });
    const created = await put(`identifier=${SYSTEM}|U-1`, patient('U-1'));
    t.equal(created.status, 201);
    const id = created.body.id as string;
    t.ok(id);

    const updated = await put(`identifier=${SYSTEM}|U-1`, patient('U-1', { gender: 'other' }));
    t.equal(updated.status, 200);
    t.equal(updated.body.id, id);
    t.equal(updated.body.meta.versionId, '2');
    t.equal((await put(`identifier=${SYSTEM}|U-1`, patient('U-1', { id: 'another-id' }))).status, 400, 'a body id other than the match');

    const withId = await put(`identifier=${SYSTEM}|U-2`, patient('U-2', { id: 'u-two' }));
    t.equal(withId.status, 201);
    t.equal(withId.body.id, 'u-two', 'no match: the body id is used when it is free');
    const clash = await put(`identifier=${SYSTEM}|U-3`, patient('U-3', { id: 'u-two' }));
    t.equal(clash.status, 409, 'no match, but the body id belongs to another resource');

    await server.fhir('Patient', { method: 'POST', body: patient('U-4') });
    await server.fhir('Patient', { method: 'POST', body: patient('U-4') });
    t.equal((await put(`identifier=${SYSTEM}|U-4`, patient('U-4'))).status, 412);
    t.equal((await server.fhir('Patient', { method: 'PUT', body: patient('U-5') })).status, 400, 'PUT [type] needs a condition');
    t.equal((await put(`identifier=${SYSTEM}|U-1`, patient('U-1'))).headers.get('etag'), 'W/"3"');
    t.equal((await server.fhir(`Patient?identifier=${SYSTEM}|U-1`, { method: 'PUT', body: patient('U-1'), headers: { 'if-match': 'W/"1"' } })).status, 412, 'If-Match still applies');
  });

  t.test('conditional delete (single mode): 0 → 200 and nothing, 1 → deleted, many → 412', async (t) => {
    const del = (query: string) => server.fhir(`Patient?${query}`, { method: 'DELETE' });
    const none = await del(`identifier=${SYSTEM}|D-0`);
    t.equal(none.status, 200);
    t.match(none.body.issue[0].diagnostics, /nothing was deleted/);

    const one = await server.fhir('Patient', { method: 'POST', body: patient('D-1') });
    t.equal((await del(`identifier=${SYSTEM}|D-1`)).status, 200);
    t.equal((await server.fhir(`Patient/${one.body.id}`)).status, 410);
    t.same(await count(server, `identifier=${SYSTEM}|D-1`), []);

    await server.fhir('Patient', { method: 'POST', body: patient('D-2') });
    await server.fhir('Patient', { method: 'POST', body: patient('D-2') });
    t.equal((await del(`identifier=${SYSTEM}|D-2`)).status, 412);
    t.equal((await count(server, `identifier=${SYSTEM}|D-2`)).length, 2, 'nothing deleted');
    t.equal((await server.fhir('Patient', { method: 'DELETE' })).status, 400, 'DELETE [type] needs a condition');
    // With a single resource of a type, a condition of result parameters only would match, and delete, that one.
    const only = await server.fhir('Device', { method: 'POST', body: { resourceType: 'Device', status: 'active' } });
    for (const query of ['_count=1', '_sort=-_lastUpdated', '_summary=count']) {
      const res = await server.fhir(`Device?${query}`, { method: 'DELETE' });
      t.equal(res.status, 400, `DELETE Device?${query} is no condition`);
      t.match(res.body.issue[0].diagnostics, /needs search parameters/);
    }
    t.equal((await server.fhir(`Device/${only.body.id}`)).status, 200, 'the one Device is still there');
  });

  t.test('conditional patch: 0 → 404, 1 → patched, many → 412', async (t) => {
    const patch = (query: string) =>
      server.fhir(`Patient?${query}`, {
        method: 'PATCH',
        body: [{ op: 'add', path: '/active', value: true }],
        headers: { 'content-type': 'application/json-patch+json' },
      });
    t.equal((await patch(`identifier=${SYSTEM}|P-0`)).status, 404);
    const one = await server.fhir('Patient', { method: 'POST', body: patient('P-1') });
    const patched = await patch(`identifier=${SYSTEM}|P-1`);
    t.equal(patched.status, 200);
    t.equal(patched.body.id, one.body.id);
    t.equal(patched.body.active, true);
    await server.fhir('Patient', { method: 'POST', body: patient('P-2') });
    await server.fhir('Patient', { method: 'POST', body: patient('P-2') });
    t.equal((await patch(`identifier=${SYSTEM}|P-2`)).status, 412);
  });
});
