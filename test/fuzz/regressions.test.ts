/**
 * Bugs the fuzz suite found, each pinned as one small fixed example (the properties in the other files keep
 * searching around them).
 */
import t from 'tap';
import { encodeNumber, numberRange } from '../../src/fhir/search/encode.ts';
import { numberCondition } from '../../src/fhir/search/conditions.ts';
import { startServer } from '../helpers/server.ts';

t.test('a search number with more digits than a double holds still matches its own value', async (t) => {
  for (const text of ['5.724228417594691e-33', '100.000000000000000001', `0.${'0'.repeat(400)}`]) {
    const r = numberRange(text)!;
    t.ok(r.low <= r.value && r.value < r.high, `${text}: the range holds the value`);
    const eq = numberCondition('n', 'n', text, '');
    t.ok(eq.test(encodeNumber(Number(text))), `${text}: eq matches the stored value`);
  }
});

t.test('over HTTP', async (t) => {
  // One node for every HTTP regression; each case checks only what it created itself.
  const server = await startServer(t);

  await t.test('a Bundle entry whose conditional header is not a string is a 400, not a 500', async (t) => {
    for (const [name, value] of [['ifNoneExist', 7], ['ifMatch', 5], ['ifNoneMatch', { a: 1 }], ['ifModifiedSince', true]] as const) {
      for (const type of ['transaction', 'batch']) {
        const res = await server.fhir('', {
          method: 'POST',
          body: { resourceType: 'Bundle', type, entry: [{ request: { method: 'POST', url: 'Patient', [name]: value }, resource: { resourceType: 'Patient' } }] },
        });
        const status = type === 'batch' ? Number(res.body?.entry?.[0]?.response?.status?.slice(0, 3)) : res.status;
        t.equal(status, 400, `${type} with ${name}: ${JSON.stringify(value)}`);
      }
    }
    t.equal((await server.fhir('Patient?_count=0&_total=accurate')).body.total, 0, 'nothing was created');
  });

  await t.test('query parameters named like Object.prototype members are unknown parameters, not a 500', async (t) => {
    await server.fhir('Patient/p1', { method: 'PUT', body: { resourceType: 'Patient', id: 'p1', gender: 'male' } });
    for (const name of ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const search = await server.fhir(`MedicationRequest?${name}=0`);
      t.equal(search.status, 400, `search ?${name}=0 is an unknown parameter`);
      t.equal(search.body?.issue?.[0]?.code, 'invalid');
      const lenient = await server.fhir(`Patient?${name}=0`, { headers: { prefer: 'handling=lenient' } });
      t.equal(lenient.status, 200, `?${name}=0 is ignored under lenient handling`);
      const form = await server.fhir('Patient/_search', { method: 'POST', body: `${name}=1`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      t.equal(form.status, 400, `POST _search with ${name}`);
      // A conditional delete must not drop the odd parameter and delete by the rest of its criteria.
      const del = await server.fhir(`Patient?${name}=x&gender=male`, { method: 'DELETE' });
      t.equal(del.status, 400, `conditional delete with ${name} is refused`);
      const bundle = await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient?${name}=1` } }] } });
      t.equal(bundle.body?.entry?.[0]?.response?.status?.slice(0, 3), '400', `batch entry with ${name}`);
    }
    t.equal((await server.fhir('Patient/p1')).status, 200, 'the patient is still there');
  });

  await t.test('a ? inside a query is data, not a second separator', async (t) => {
    await server.fhir('Patient/q1', { method: 'PUT', body: { resourceType: 'Patient', id: 'q1', name: [{ family: 'Quest' }] } });
    await server.fhir('Patient/q2', { method: 'PUT', body: { resourceType: 'Patient', id: 'q2', name: [{ family: 'Quest?ion' }] } });
    const ids = (res: { body: any }) => (res.body?.entry ?? []).map((e: any) => e.resource.id).sort();
    t.same(ids(await server.fhir('Patient?family=Quest?ion')), ['q2'], 'GET: the whole value is searched');
    const batch = await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient?family=Quest?ion' } }] } });
    t.same(ids({ body: batch.body?.entry?.[0]?.resource }), ['q2'], 'batch entry: the whole value is searched');
  });

  await t.test('a Bundle entry whose fullUrl is not a string is a 400', async (t) => {
    const res = await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 7, request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: 'FullUrl' }] } }] } });
    t.equal(res.status, 400);
    t.equal((await server.fhir('Patient?name=FullUrl')).body.total, 0, 'nothing was created');
  });
});
