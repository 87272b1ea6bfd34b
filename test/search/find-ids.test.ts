// Repository.findIds: the early API for conditional interactions and import (_id, token, reference, unknowns).
import t from 'tap';
import { startServer } from '../helpers/server.ts';

t.test('findIds by _id, identifier and reference; deletes and updates keep the index current', async (t) => {
  const server = await startServer(t);
  const repo = server.app.repo;
  const p1 = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', identifier: [{ system: 'http://hospital', value: 'MRN-42' }], name: [{ family: 'Chalmers' }] } });
  const p2 = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', identifier: [{ system: 'http://hospital', value: 'MRN-43' }] } });
  t.equal(p1.status, 201);
  const id1 = p1.body.id as string;
  const id2 = p2.body.id as string;
  const obs = await server.fhir('Observation', {
    method: 'POST',
    body: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, subject: { reference: `Patient/${id1}` } },
  });
  t.equal(obs.status, 201);

  t.same(await repo.findIds('Patient', { identifier: ['http://hospital|MRN-42'] }), [id1]);
  t.same(await repo.findIds('Patient', { identifier: ['MRN-43'] }), [id2]);
  t.same(await repo.findIds('Patient', { identifier: ['http://hospital|'] }), [id1, id2].sort());
  t.same(await repo.findIds('Patient', { identifier: ['http://other|MRN-42'] }), []);
  t.same(await repo.findIds('Patient', { _id: [id2] }), [id2]);
  t.same(await repo.findIds('Patient', { identifier: ['http://hospital|'] }, { limit: 1 }), [[id1, id2].sort()[0]]);
  t.same(await repo.findIds('Observation', { subject: [`Patient/${id1}`] }), [obs.body.id]);
  t.same(await repo.findIds('Observation', { patient: [id1], code: ['http://loinc.org|8480-6'] }), [obs.body.id]);
  t.same(await repo.findIds('Observation', { patient: [id2] }), []);

  // an update replaces the entries of the previous version
  const upd = await server.fhir(`Patient/${id1}`, { method: 'PUT', body: { resourceType: 'Patient', id: id1, identifier: [{ system: 'http://hospital', value: 'MRN-99' }] } });
  t.equal(upd.status, 200);
  t.same(await repo.findIds('Patient', { identifier: ['http://hospital|MRN-42'] }), []);
  t.same(await repo.findIds('Patient', { identifier: ['MRN-99'] }), [id1]);
  // a deletion removes them
  t.equal((await server.fhir(`Patient/${id2}`, { method: 'DELETE' })).status, 200);
  t.same(await repo.findIds('Patient', { identifier: ['http://hospital|'] }), [id1]);
  t.same(await repo.findIds('Patient', {}), [id1]);

  await t.rejects(repo.findIds('Patient', { nonsense: ['1'] }), { status: 400, code: 'ERR_UNKNOWN_PARAMETER' });
  await t.rejects(repo.findIds('Observation', { date: ['ge2024-13'] }), { status: 400, code: 'ERR_INVALID_DATE' });
  await t.rejects(repo.findIds('Observation', { subject: ['Nope/1'] }), { status: 400, code: 'ERR_INVALID_REFERENCE' });
});
