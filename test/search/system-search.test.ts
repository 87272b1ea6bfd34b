// System search with _type (http://hl7.org/fhir/R4/search.html#searchcontexts): the other parameters must be
// defined for every listed type, each type is searched by its own definition, _include may start from any of them;
// and the CapabilityStatement says so.
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { ids, loadDataset } from './fixtures/dataset.ts';

t.test('_type scopes a system search to its types and their parameters', async (t) => {
  const server = await startServer(t);
  await loadDataset(server);
  const refs = async (query: string, init = {}) => {
    const res = await server.fhir(query, init);
    t.equal(res.status, 200, `${query}: ${res.status} ${res.text.slice(0, 200)}`);
    const of = (mode: string) => (res.body.entry ?? []).filter((e: any) => e.search.mode === mode).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
    return { match: of('match').sort(), include: of('include').sort(), ordered: of('match'), body: res.body };
  };
  t.same((await refs('?_type=Patient&gender=male')).match, ['Patient/p2'], 'a Patient parameter with _type=Patient');
  t.same((await refs('?_type=Patient,Practitioner&name=jones')).match, ['Practitioner/pr1'], 'name, defined for both');
  t.same((await refs('?_type=Patient,Practitioner&name=smith')).match, ['Patient/p2', 'Patient/p3']);
  t.same((await refs('?_type=Patient,Practitioner&name=jones,smith&_id=pr1,p3')).match, ['Patient/p3', 'Practitioner/pr1'], 'with common parameters too');
  const form = { method: 'POST', body: '_type=Patient,Practitioner&name=jones', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  t.same((await refs('_search', form)).match, ['Practitioner/pr1'], 'POST [base]/_search');
  t.same((await refs('?_type=Organization,Patient&name=acme&_count=1')).body.total, 2, 'each type by its own name parameter');

  const included = await refs('?_type=Patient,Observation&_id=o1&_include=Observation:patient');
  t.same([included.match, included.include], [['Observation/o1'], ['Patient/p1']], '_include may start from a listed type');
  t.same((await refs('?_id=o4&_include=Observation:encounter')).include, ['Encounter/e1'], 'without _type, from any type');
  t.same((await refs('?_type=Patient,Practitioner&_sort=name')).ordered, ['Practitioner/pr1', 'Patient/p1', 'Patient/p3', 'Patient/p2'], '_sort by a parameter both types define as a string (ada, anna, jo, john)');

  const refused: Array<[string, RegExp]> = [
    ['?_type=Patient,Observation&gender=male', /'gender' for Observation/],
    ['?_type=Patient,Observation&_include=Encounter:subject', /_include must start with one of Patient, Observation/],
    ['?_type=Patient,Observation&_sort=gender', /'gender' for Observation/],
    ['?_type=ValueSet,MedicationStatement&_sort=context', /'context' is a token parameter for ValueSet but a reference parameter for MedicationStatement/],
    ['?gender=male', /every resource type/],
    ['?_sort=_tag', /without _type/],
  ];
  for (const [query, message] of refused) {
    const res = await server.fhir(query);
    t.equal(res.status, 400, `${query}: 400`);
    t.match(res.body?.issue?.[0]?.diagnostics, message, query);
  }
  const lenient = await refs('?_type=Patient,Organization&gender=male', { headers: { prefer: 'handling=lenient' } });
  t.same(lenient.match, ['Organization/org1', 'Organization/org2', 'Patient/p1', 'Patient/p2', 'Patient/p3'], 'lenient: a parameter one type lacks is ignored for all of them');
  t.match(lenient.body.entry.at(-1).resource.issue[0].diagnostics, /gender/);
  t.same(await ids(server, '?_type=Patient,Practitioner&_tag=vip'), ['p1'], 'as before');
});

t.test('the CapabilityStatement declares _type and every system parameter it lists works', async (t) => {
  const server = await startServer(t);
  const cs = (await server.fhir('metadata', { token: false })).body;
  const system = cs.rest[0].searchParam as Array<{ name: string; type: string; documentation?: string }>;
  const type = system.find((p) => p.name === '_type');
  t.ok(type, '_type is declared');
  t.match(type?.documentation, /every other parameter must be defined for each listed type/);
  for (const p of system) {
    const value = { token: 'Patient', date: '2024', uri: 'http://a', string: 'a' }[p.type] ?? 'a';
    const res = await server.fhir(`?${p.name}=${encodeURIComponent(value)}`);
    t.equal(res.status, 200, `?${p.name} is served`);
  }
});
