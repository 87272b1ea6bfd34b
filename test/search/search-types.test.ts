// Search over HTTP against a dataset whose answers are known: every parameter type, modifier and prefix,
// chains, _has, includes, sorting, summaries, compartments, $everything, and 400s for what is malformed.
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { ids, loadDataset } from './fixtures/dataset.ts';

const CASES: Array<[string, string[]]> = [
  // string: starts-with on case- and accent-folded values; :exact; :contains; OR by comma; AND by repetition
  ['Patient?name=mull', ['p1']],
  ['Patient?family=MÜLLER', ['p1']],
  ['Patient?name=smith', ['p2', 'p3']],
  ['Patient?name:exact=Smith', ['p2']],
  ['Patient?name:exact=smith', []],
  ['Patient?name:contains=ths', ['p3']],
  ['Patient?given=jo', ['p2', 'p3']],
  ['Patient?name=anna,john', ['p1', 'p2']],
  ['Patient?name=smith&given=john', ['p2']],
  ['Patient?address-city=bost', ['p1']],
  ['Organization?name=acme', ['org1', 'org2']],
  // token: code, system|code, |code, system|, :not, :text, booleans, _tag/_security/_id
  ['Patient?gender=female', ['p1']],
  ['Patient?gender:not=female', ['p2', 'p3']],
  ['Patient?identifier=http://hospital.example/mrn|MRN-2', ['p2']],
  ['Patient?identifier=MRN-1', ['p1']],
  ['Patient?identifier=http://hospital.example/mrn|', ['p1', 'p2']],
  ['Patient?identifier=|MRN-1', []],
  ['Patient?active=false', ['p3']],
  ['Patient?email=anna@example.org', ['p1']],
  ['Observation?code=http://loinc.org|8480-6', ['o1', 'o2', 'o5']],
  ['Observation?code=8462-4', ['o3']],
  ['Observation?code:text=systolic', ['o1', 'o2', 'o5']],
  ['Observation?category=vital-signs', ['o1']],
  ['Observation?status=final,amended', ['o1', 'o2', 'o3', 'o4', 'o6']],
  ['Patient?_tag=http://example.org/tags|vip', ['p1']],
  ['Patient?_security=R', []],
  ['Patient?_id=p1,p3', ['p1', 'p3']],
  ['Encounter?class=AMB', ['e1']],
  // reference: Type/id, id, :[type], absolute URL under the base, :identifier
  ['Observation?subject=Patient/p1', ['o1', 'o2', 'o6']],
  ['Observation?subject=p2', ['o3', 'o4']],
  ['Observation?patient=p1', ['o1', 'o2', 'o6']],
  ['Observation?subject:Patient=p3', ['o5']],
  ['Observation?subject:identifier=http://hospital.example/mrn|MRN-2', ['o3']],
  ['Patient?general-practitioner=Practitioner/pr1', ['p1']],
  ['Observation?performer=pr1', ['o1']],
  ['Observation?encounter=Encounter/e1', ['o4']],
  // date: every prefix against day, month, year, second and period targets
  ['Observation?date=2024-01-01', ['o1', 'o6']],
  ['Observation?date=2024-01', ['o1', 'o2', 'o6']],
  ['Observation?date=2024', ['o1', 'o2', 'o3', 'o4', 'o6']],
  ['Observation?date=eq2024-01-01T10:00:00Z', ['o1']],
  ['Observation?date=2024-01-01T10:30:00%2B02:00', ['o6']],
  ['Observation?date=ne2024', ['o5']],
  ['Observation?date=gt2024-01-01', ['o2', 'o3', 'o4']],
  ['Observation?date=ge2024-01-02', ['o2', 'o3', 'o4']],
  ['Observation?date=lt2024-01-02', ['o1', 'o5', 'o6']],
  ['Observation?date=le2024-01-02', ['o1', 'o2', 'o5', 'o6']],
  ['Observation?date=sa2024-01-31', ['o3', 'o4']],
  ['Observation?date=eb2024-01-01', ['o5']],
  ['Observation?date=gt2024-03-03', ['o4']],
  ['Observation?date=lt2024-03-03', ['o1', 'o2', 'o3', 'o4', 'o5', 'o6']],
  ['Observation?date=ge2024-01-01&date=lt2024-01-02', ['o1', 'o6']],
  ['Patient?birthdate=1980', ['p1']],
  ['Patient?birthdate=1975-06', []],
  ['Patient?birthdate=ge1975-06', ['p1', 'p2']],
  ['Patient?_lastUpdated=gt2000-01-01', ['p1', 'p2', 'p3']],
  // number: implicit precision of the search value
  ['RiskAssessment?probability=0.25', ['r1']],
  ['RiskAssessment?probability=0.3', ['r1']],
  ['RiskAssessment?probability=0.2', []],
  ['RiskAssessment?probability=100', ['r1']],
  ['RiskAssessment?probability=1e2', ['r1']],
  ['RiskAssessment?probability=gt0.5', ['r1', 'r2']],
  ['RiskAssessment?probability=lt0.5', ['r1']],
  ['RiskAssessment?probability=ge0.7', ['r1', 'r2']],
  ['RiskAssessment?probability=le0.25', ['r1']],
  ['RiskAssessment?probability=ne0.7', ['r1']],
  ['RiskAssessment?probability=gt1000', []],
  // quantity: any unit, system|code, ||code (or unit text)
  ['Observation?value-quantity=100', ['o1']],
  ['Observation?value-quantity=120.5|http://unitsofmeasure.org|mm[Hg]', ['o2']],
  ['Observation?value-quantity=gt100||mm[Hg]', ['o2', 'o5']],
  ['Observation?value-quantity=lt90|http://unitsofmeasure.org|kg', ['o4']],
  ['Observation?value-quantity=le80', ['o3', 'o4']],
  ['Observation?value-quantity=70|http://unitsofmeasure.org|mm[Hg]', []],
  ['Observation?value-quantity=ge120.5||mmHg', ['o2', 'o5']],
  // composite
  ['Observation?code-value-quantity=http://loinc.org|8480-6$gt110', ['o2', 'o5']],
  ['Observation?component-code-value-quantity=http://loinc.org|8462-4$lt80', ['o6']],
  ['Observation?component-code-value-quantity=8480-6$118', ['o6']],
  // combo-: the Observation's own code and value, and each component's (o6 by its components only)
  ['Observation?combo-code-value-quantity=http://loinc.org|8480-6$gt110', ['o2', 'o5', 'o6']],
  ['Observation?combo-code-value-quantity=8462-4$lt80', ['o6']],
  ['Observation?combo-code-value-quantity=85354-9$118', []],
  // uri
  ['ValueSet?url=http://example.org/fhir/ValueSet/a', ['vs2']],
  ['ValueSet?url:below=http://example.org/fhir/ValueSet/a', ['vs1', 'vs2']],
  ['ValueSet?url:above=http://example.org/fhir/ValueSet/a/b/c', ['vs1', 'vs2']],
  ['Patient?_profile=http://example.org/StructureDefinition/my-patient', ['p1']],
  ['Patient?_source=http://source.example/a', ['p1']],
  // :missing
  ['Observation?encounter:missing=false', ['o4']],
  ['Observation?value-quantity:missing=true', ['o6']],
  ['Patient?birthdate:missing=true', ['p3']],
  // chains and reverse chains
  ['Observation?subject:Patient.name=smith', ['o3', 'o4', 'o5']],
  ['Observation?patient.identifier=http://hospital.example/mrn|MRN-2', ['o3', 'o4']],
  ['Encounter?service-provider.partof.name=acme%20group', ['e1']],
  ['Patient?general-practitioner:Practitioner.name=jones', ['p1']],
  ['Patient?_has:Observation:patient:code=8462-4', ['p2']],
  ['Patient?_has:Observation:subject:status=preliminary', ['p3']],
  ['Patient?_has:Observation:patient:code=8480-6&gender=male', []],
  // compartments
  ['Patient/p1/Observation', ['o1', 'o2', 'o6']],
  ['Patient/p1/Observation?code=8480-6', ['o1', 'o2']],
  ['Patient/p1/Encounter', ['e1']],
  ['Patient/p2/Patient', ['p2']],
  // system level
  ['?_id=p1,o1,e1', ['e1', 'o1', 'p1']],
  ['?_type=Patient,Practitioner&_tag=vip', ['p1']],
];

const BAD: string[] = [
  'Observation?date=xx2024', 'Observation?date=2024-13', 'Observation?date=2024-02-30', 'Observation?date=ge',
  'Observation?date=2024-01-01T25:00Z', 'Observation?value-quantity=5.4|http://unitsofmeasure.org', 'Observation?value-quantity=abc',
  'Observation?value-quantity=gt5|a|', 'RiskAssessment?probability=1,2x', 'Observation?subject=Foo/1', 'Observation?subject=a%20b',
  'Observation?subject:Foo=1', 'Patient?name:foo=x', 'Patient?nonexistent=1', 'Patient?_sort=nonexistent', 'Patient?_count=abc',
  'Observation?_include=Observation:nope', 'Patient?_page=garbage', 'Patient?_has:Observation:patient=1', 'Patient?name.family=x',
  'Patient?_text=x', 'Patient?_content=x', 'Patient?gender:missing=maybe', 'Observation?code-value-quantity=8480-6',
  'Patient?_summary=maybe', 'Patient?_total=x', 'Patient?_has:Nope:patient:code=1', 'Patient/p1/Organization',
  '?gender=male', 'Patient/p1/$everything?name=x', 'Patient?identifier:in=x',
  // numbers no double stands for: 1e-400 would be compared as 0, 1e400 as infinity
  'RiskAssessment?probability=1e-400', 'RiskAssessment?probability=gt1e400', 'Observation?value-quantity=1e-400',
  'Observation?value-quantity=lt1e-400||mm[Hg]', 'Observation?component-code-value-quantity=8480-6$1e-400',
];

t.test('search answers match the dataset', async (t) => {
  const server = await startServer(t);
  await loadDataset(server);
  for (const [query, expected] of CASES) t.same(await ids(server, query), expected, query);

  t.test('sorting by one and several keys, ascending and descending, missing values last', async (t) => {
    t.same(await ids(server, 'Observation?patient=p1&_sort=date', true), ['o6', 'o1', 'o2']);
    t.same(await ids(server, 'Observation?patient=p1&_sort=-date', true), ['o2', 'o1', 'o6']);
    t.same(await ids(server, 'Observation?_sort=status,-date', true), ['o3', 'o4', 'o2', 'o1', 'o6', 'o5']);
    t.same(await ids(server, 'Patient?_sort=birthdate', true), ['p2', 'p1', 'p3']);
    t.same(await ids(server, 'Patient?_sort=-_id', true), ['p3', 'p2', 'p1']);
    t.same(await ids(server, 'Observation?_sort=-value-quantity&value-quantity:missing=false', true), ['o5', 'o2', 'o1', 'o3', 'o4']);
  });

  t.test('_include, _revinclude and :iterate', async (t) => {
    const included = async (q: string) => {
      const res = await server.fhir(q);
      t.equal(res.status, 200, q);
      return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'include').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();
    };
    t.same(await included('Observation?_id=o1&_include=Observation:subject&_include=Observation:performer'), ['Patient/p1', 'Practitioner/pr1']);
    t.same(await included('Observation?_id=o1&_include=Observation:subject:Practitioner'), []);
    t.same(await included('Observation?_id=o4&_include=Observation:encounter&_include:iterate=Encounter:service-provider'), ['Encounter/e1', 'Organization/org1']);
    t.same(await included('Patient?_id=p2&_revinclude=Observation:subject'), ['Observation/o3', 'Observation/o4']);
    t.same(await included('Organization?_id=org2&_revinclude=Organization:partof&_revinclude:iterate=Encounter:service-provider'), ['Encounter/e1', 'Organization/org1']);
    t.same(await included('Encounter?_id=e1&_include=Encounter:service-provider&_include:iterate=Organization:partof'), ['Organization/org1', 'Organization/org2']);
    t.same(await included('Observation?_id=o1&_include=*'), ['Patient/p1', 'Practitioner/pr1']);
  });

  t.test('_summary, _elements and _total', async (t) => {
    const summary = await server.fhir('Patient?_id=p1&_summary=true');
    const r = summary.body.entry[0].resource;
    t.ok(r.name && r.birthDate && r.identifier, 'summary elements kept');
    t.notOk(r.generalPractitioner, 'non-summary element dropped');
    t.ok(r.meta.tag.some((tag: any) => tag.code === 'SUBSETTED'), 'marked SUBSETTED');
    const count = await server.fhir('Patient?_summary=count');
    t.equal(count.body.total, 3);
    t.notOk(count.body.entry);
    const elements = await server.fhir('Patient?_id=p1&_elements=gender');
    t.same(Object.keys(elements.body.entry[0].resource).sort(), ['gender', 'id', 'meta', 'resourceType']);
    const text = await server.fhir('Patient?_id=p1&_summary=text');
    t.same(Object.keys(text.body.entry[0].resource).sort(), ['id', 'meta', 'resourceType'], 'text: id, meta, text and mandatory elements only');
    const data = await server.fhir('Patient?_id=p1&_summary=data');
    t.ok(data.body.entry[0].resource.name && !data.body.entry[0].resource.text, 'data: everything but text');
    const none = await server.fhir('Patient?_total=none');
    t.equal(none.body.total, undefined);
    t.equal(none.body.entry.length, 3);
    const accurate = await server.fhir('Patient?_total=accurate&_count=1');
    t.equal(accurate.body.total, 3);
  });

  t.test('Patient $everything with _type, _since and paging', async (t) => {
    const all = await server.fhir('Patient/p1/$everything');
    t.equal(all.status, 200);
    const refs = (all.body.entry as any[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();
    t.same(refs, ['Encounter/e1', 'Observation/o1', 'Observation/o2', 'Observation/o6', 'Organization/org1', 'Patient/p1', 'Practitioner/pr1', 'RiskAssessment/r1']);
    t.same(await ids(server, 'Patient/p1/$everything?_type=Observation'), ['o1', 'o2', 'o6']);
    const untyped = (all.body.entry as any[]).filter((e) => e.search.mode === 'include').map((e) => e.resource.resourceType);
    t.ok(untyped.length > 0, 'without _type, what the matches refer to is included');
    const typed = await server.fhir('Patient/p1/$everything?_type=Observation');
    t.same([...new Set((typed.body.entry as any[]).map((e) => e.resource.resourceType))], ['Observation'], '_type restricts what is included too (not the Patient they refer to)');
    t.same(await ids(server, 'Patient/p1/$everything?_since=2999-01-01T00:00:00Z'), []);

    // _type filters the whole answer, referred resources too, whoever refers to them: org1 is referred to only by
    // p1 and e1, neither listed; org2 only by org1, which is not in the compartment, so not even without _type
    const everything = async (query: string) => {
      const res = await server.fhir(`Patient/p1/$everything?${query}`);
      t.equal(res.status, 200, query);
      const entries = (res.body.entry ?? []) as any[];
      t.equal(res.body.total, entries.length, `${query}: total counts what is returned`);
      return entries.map((e) => `${e.resource.resourceType}/${e.resource.id}`);
    };
    t.same(await everything('_type=Practitioner'), ['Practitioner/pr1']);
    t.same(await everything('_type=Organization'), ['Organization/org1']);
    t.same(await everything('_type=Observation,Organization'), ['Observation/o1', 'Observation/o2', 'Observation/o6', 'Organization/org1']);
    t.same(await everything('_type=Practitioner,Patient'), ['Patient/p1', 'Practitioner/pr1'], 'the patient only when listed, and first');
    t.same(await everything('_type=Practitioner&_since=2999-01-01T00:00:00Z'), [], 'referred to by what passes _since only');
    t.same(await everything('_type=Device'), []);
    const untypedAll = [...new Set(refs)].sort();
    const paged: string[] = [];
    let next: string | undefined = 'Patient/p1/$everything?_type=Patient,Encounter,Observation,RiskAssessment,Organization,Practitioner&_count=3';
    while (next) {
      const page = await server.fhir(next);
      paged.push(...(page.body.entry as any[]).map((e) => `${e.resource.resourceType}/${e.resource.id}`));
      next = page.body.link.find((l: any) => l.relation === 'next')?.url.slice(server.baseUrl.length + 1);
    }
    t.same(paged.slice().sort(), untypedAll, 'every type listed: the answer without _type, each resource once across pages');
    t.equal(paged[0], 'Patient/p1');
    const seen: string[] = [];
    let url: string | undefined = 'Patient/p1/$everything?_count=2';
    while (url) {
      const page = await server.fhir(url);
      t.equal(page.status, 200);
      seen.push(...(page.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id));
      const next = page.body.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      url = next?.slice(server.baseUrl.length + 1);
    }
    // The patient first, then the compartment by type and id, across pages.
    t.same(seen, ['p1', 'e1', 'o1', 'o2', 'o6', 'r1']);
    t.same(all.body.entry[0].resource.id, 'p1');
    t.equal(all.body.entry[0].search.mode, 'match');
    t.equal((await server.fhir('Patient/nope/$everything')).status, 404);
    // p2 links to p3, so it is in p3's compartment; p3 still comes first although p2 sorts before it by id
    t.same(await ids(server, 'Patient/p3/$everything?_type=Patient', true), ['p3', 'p2']);
    t.same((await server.fhir('Patient/p3/$everything?_count=1')).body.entry[0].resource.id, 'p3', 'on the first page');
  });

  t.test('searches as GET entries of a batch Bundle; HEAD', async (t) => {
    const res = await server.fhir('', {
      method: 'POST',
      body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient?name=smith&_sort=_id' } }, { request: { method: 'GET', url: 'Patient?bad:x=1' } }] },
    });
    t.equal(res.status, 200);
    t.equal(res.body.entry[0].response.status.slice(0, 3), '200');
    t.same(res.body.entry[0].resource.entry.map((e: any) => e.resource.id), ['p2', 'p3']);
    t.equal(res.body.entry[1].response.status.slice(0, 3), '400');
    const head = await server.fhir('Patient?name=smith', { method: 'HEAD' });
    t.equal(head.status, 200);
  });

  t.test('POST _search with a form body; the form type is refused elsewhere', async (t) => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const res = await server.fhir('Observation/_search?status=final', { method: 'POST', body: 'patient=p1&code=8480-6', headers: form });
    t.equal(res.status, 200);
    t.same(res.body.entry.map((e: any) => e.resource.id).sort(), ['o1', 'o2']);
    const system = await server.fhir('_search', { method: 'POST', body: '_id=p2', headers: form });
    t.same(system.body.entry.map((e: any) => e.resource.id), ['p2']);
    t.equal((await server.fhir('Patient', { method: 'POST', body: 'name=x', headers: form })).status, 415);
    // Parameters sent as JSON would be dropped and the search answered unfiltered: refused instead.
    const json = await server.fhir('Observation/_search', { method: 'POST', body: { patient: 'p1' } });
    t.equal(json.status, 415);
    t.match(json.body.issue[0].diagnostics, /x-www-form-urlencoded/);
    t.equal((await server.fhir('Observation/_search?patient=p1', { method: 'POST' })).status, 200, 'no body: the URL alone');
  });

  t.test('unknown and malformed parameters are 400 naming the parameter; lenient handling reports unknown ones', async (t) => {
    for (const query of BAD) {
      const res = await server.fhir(query);
      t.equal(res.status, 400, `${query} → 400`);
      t.equal(res.body?.resourceType, 'OperationOutcome', `${query} → OperationOutcome`);
    }
    const named = await server.fhir('Observation?date=ge2024-99');
    t.same(named.body.issue[0].expression, ['date']);
    const lenient = await server.fhir('Patient?foo=1&gender=male', { headers: { prefer: 'handling=lenient' } });
    t.equal(lenient.status, 200);
    const modes = lenient.body.entry.map((e: any) => e.search.mode);
    t.same(modes, ['match', 'outcome']);
    t.match(lenient.body.entry[1].resource.issue[0].diagnostics, /foo/);
    const stillBad = await server.fhir('Patient?foo=1&birthdate=xx', { headers: { prefer: 'handling=lenient' } });
    t.equal(stillBad.status, 400, 'a malformed value of a known parameter is 400 even when lenient');
  });

  t.test('the CapabilityStatement lists exactly the supported search parameters', async (t) => {
    const cs = (await server.fhir('metadata', { token: false })).body;
    const patient = cs.rest[0].resource.find((r: any) => r.type === 'Patient');
    const names = patient.searchParam.map((p: any) => p.name);
    for (const name of ['name', 'birthdate', 'identifier', '_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']) t.ok(names.includes(name), name);
    for (const name of ['_text', '_content', '_query']) t.notOk(names.includes(name), `${name} is not claimed`);
    t.ok(patient.searchParam.every((p: any) => p.type && p.definition?.startsWith('http://hl7.org/fhir/SearchParameter/')));
    t.ok(patient.interaction.some((i: any) => i.code === 'search-type'));
    t.ok(patient.operation.some((o: any) => o.name === 'everything'));
    t.ok(cs.rest[0].interaction.some((i: any) => i.code === 'search-system'));
    t.same(cs.rest[0].compartment, ['http://hl7.org/fhir/CompartmentDefinition/patient']);
    // every listed parameter is accepted by the server
    for (const p of patient.searchParam) {
      const value = { string: 'a', token: 'a', reference: 'Patient/a', date: '2024', number: '1', quantity: '1', uri: 'http://a', composite: 'a$a' }[p.type as string];
      if (p.type === 'composite') continue;
      const res = await server.fhir(`Patient?${p.name}=${encodeURIComponent(value!)}`);
      t.equal(res.status, 200, `Patient?${p.name} is served`);
    }
  });
});

t.test(':missing on a reference counts a Reference that holds only an identifier (search.html#missing)', async (t) => {
  const server = await startServer(t);
  const put = async (r: Record<string, unknown>) => {
    const res = await server.fhir(`${r.resourceType}/${r.id}`, { method: 'PUT', body: r });
    t.ok(res.status === 200 || res.status === 201, `PUT ${r.resourceType}/${r.id}: ${res.status}`);
  };
  const code = { coding: [{ system: 'http://loinc.org', code: '8480-6' }] };
  await put({ resourceType: 'Patient', id: 'pa', name: [{ family: 'Okafor' }] });
  // subject with an identifier only: the element has a value, searchable as subject:identifier
  await put({ resourceType: 'Observation', id: 'oi', status: 'final', code, subject: { identifier: { system: 'urn:x', value: '1' } } });
  await put({ resourceType: 'Observation', id: 'or', status: 'final', code, subject: { reference: 'Patient/pa' } });
  await put({ resourceType: 'Observation', id: 'on', status: 'final', code });
  const cases: Array<[string, string[]]> = [
    ['Observation?subject:identifier=urn:x|1', ['oi']],
    ['Observation?subject:missing=false', ['oi', 'or']],
    ['Observation?subject:missing=true', ['on']],
    ['Observation?status=final&subject:missing=false', ['oi', 'or']],
    ['Observation?status=final&subject:missing=true', ['on']],
    ['Observation?code=8480-6&subject:missing=true', ['on']],
    // `patient` (Observation.subject.where(resolve() is Patient)) indexes the identifier too, so the same holds
    ['Observation?patient:identifier=urn:x|1', ['oi']],
    ['Observation?patient:missing=false', ['oi', 'or']],
    ['Observation?patient:missing=true', ['on']],
    // chains and _has follow references only: an identifier names no stored resource
    ['Observation?subject:Patient.name=okafor', ['or']],
    ['Observation?patient.name=okafor&subject:missing=false', ['or']],
    ['Patient?_has:Observation:subject:status=final', ['pa']],
    ['Patient?_has:Observation:patient:subject:missing=false', ['pa']],
  ];
  for (const [query, expected] of cases) t.same(await ids(server, query), expected, query);
});
