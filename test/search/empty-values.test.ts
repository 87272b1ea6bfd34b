// Empty parameter values over HTTP: R4 search.html#errors, "Empty parameters are not an error - they are just
// ignored by the server". Every type and modifier alike, result parameters too; the links leave them out; an
// unknown name is still refused (strict) or reported (lenient); a condition guarding a write refuses them.
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { ids, loadDataset } from './fixtures/dataset.ts';

t.test('an empty value is ignored, whatever the parameter', async (t) => {
  const server = await startServer(t);
  await loadDataset(server);
  const cases: Array<[string, string]> = [
    ['Patient?name:contains=', 'Patient'],
    ['Patient?name=', 'Patient'],
    ['Patient?name:exact=', 'Patient'],
    ['Patient?_id=%20', 'Patient'],
    ['Patient?gender=&gender=male', 'Patient?gender=male'],
    ['Patient?birthdate:missing=', 'Patient'],
    ['Patient?_has:Observation:patient:code=', 'Patient'],
    ['ValueSet?url:below=', 'ValueSet'],
    ['ValueSet?url=', 'ValueSet'],
    ['Observation?subject:identifier=', 'Observation'],
    ['Observation?subject=', 'Observation'],
    ['Observation?subject:Patient.name=', 'Observation'],
    ['Observation?code=', 'Observation'],
    ['Observation?date=', 'Observation'],
    ['Observation?value-quantity=', 'Observation'],
    ['Observation?code-value-quantity=', 'Observation'],
    ['Observation?_count=', 'Observation'],
    ['Observation?_sort=', 'Observation'],
    ['Observation?_include=', 'Observation'],
    ['?_type=&_id=p1', '?_id=p1'],
  ];
  for (const [query, same] of cases) {
    const res = await server.fhir(query);
    t.equal(res.status, 200, `${query}: 200`);
    t.same(await ids(server, query), await ids(server, same), `${query} answers as ${same}`);
    const self = res.body.link.find((l: any) => l.relation === 'self').url as string;
    t.notMatch(self, /=(&|$)|=%20/, `${query}: the self link leaves the empty value out (${self})`);
  }

  const elements = await server.fhir('Patient?_id=p1&_elements=');
  t.ok(elements.body.entry[0].resource.name && elements.body.entry[0].resource.identifier, '_elements= returns whole resources');
  const read = await server.fhir('Patient/p1?_elements=&_summary=');
  t.equal(read.status, 200);
  t.ok(read.body.name && read.body.identifier && !read.body.meta.tag?.some((tag: any) => tag.code === 'SUBSETTED'), 'a read ignores them too');

  for (const query of ['Patient?name=smith,', 'Patient?gender=,male', 'Patient?_elements=gender,', 'Patient?_sort=name,', '?_type=Patient,']) {
    const res = await server.fhir(query);
    t.equal(res.status, 400, `${query}: an empty value between commas is malformed`);
    t.equal(res.body?.resourceType, 'OperationOutcome');
  }
  const unknown = await server.fhir('Patient?nope=');
  t.equal(unknown.status, 400, 'an unknown name is refused, empty value or not');
  t.same(unknown.body.issue[0].expression, ['nope']);
  const lenient = await server.fhir('Patient?nope=&gender=male', { headers: { prefer: 'handling=lenient' } });
  t.equal(lenient.status, 200);
  t.same(lenient.body.entry.map((e: any) => e.search.mode), ['match', 'outcome'], 'lenient handling reports it as before');
  t.notMatch(lenient.body.link[0].url, /nope/, 'and the self link leaves out what was ignored');

  // a condition that guards a write refuses an empty value instead of acting on what the rest matches
  const update = await server.fhir('Patient?identifier=&gender=male', { method: 'PUT', body: { resourceType: 'Patient', gender: 'male' } });
  t.equal(update.status, 400);
  const del = await server.fhir('Patient?identifier=', { method: 'DELETE' });
  t.equal(del.status, 400);
  t.same(await ids(server, 'Patient'), ['p1', 'p2', 'p3'], 'nothing was written');
});
