// Wildcard includes (http://hl7.org/fhir/R4/search.html#revinclude: "*" for the search parameter name):
// `_revinclude=Type:*` includes what any reference parameter of that type points at the matches with; a wildcard
// source type is a 400; `_include=*` and `_include=Type:*` keep working.
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { loadDataset } from './fixtures/dataset.ts';

t.test('_revinclude=Type:* and the wildcard includes', async (t) => {
  const server = await startServer(t);
  await loadDataset(server);
  const included = async (query: string) => {
    const res = await server.fhir(query);
    t.equal(res.status, 200, `${query}: ${res.status} ${res.text.slice(0, 200)}`);
    return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'include').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();
  };
  t.same(await included('Patient?_id=p1&_revinclude=Observation:*'), ['Observation/o1', 'Observation/o2', 'Observation/o6'], 'every Observation reference to p1 (subject, patient)');
  t.same(await included('Patient?_id=p1&_revinclude=Encounter:*&_revinclude=RiskAssessment:*'), ['Encounter/e1', 'RiskAssessment/r1']);
  t.same(await included('Practitioner?_id=pr1&_revinclude=Observation:*&_revinclude=Patient:*&_revinclude=Encounter:*'), ['Encounter/e1', 'Observation/o1', 'Patient/p1'], 'performer, general-practitioner, participant');
  t.same(await included('Patient?_id=p3&_revinclude=Patient:*'), ['Patient/p2'], 'Patient.link');
  t.same(await included('Patient?_id=p1&_revinclude=Observation:*:Practitioner'), [], 'a target type other than the match');
  t.same(await included('Patient?_id=p1&_revinclude=Observation:*:Patient'), ['Observation/o1', 'Observation/o2', 'Observation/o6']);
  t.same(await included('Organization?_id=org2&_revinclude=Organization:*&_revinclude:iterate=Patient:*'), ['Organization/org1', 'Patient/p1'], ':iterate');
  t.same(await included('Patient?_id=p1&_revinclude=ValueSet:*'), [], 'a type with no reference to Patient');

  t.same(await included('Observation?_id=o1&_include=*'), ['Patient/p1', 'Practitioner/pr1'], '_include=* as before');
  t.same(await included('Observation?_id=o1&_include=Observation:*'), ['Patient/p1', 'Practitioner/pr1'], '_include=Type:*');
  t.same(await included('Observation?_id=o1&_include=Observation:*:Practitioner'), ['Practitioner/pr1']);
  t.same(await included('Observation?_id=o4&_include=Observation:*&_include:iterate=Encounter:*'), ['Encounter/e1', 'Organization/org1', 'Patient/p1', 'Patient/p2', 'Practitioner/pr1'], 'Type:* with :iterate (e1 points at p1, pr1 and org1)');

  for (const value of ['*', '*:subject', '*:*']) {
    const res = await server.fhir(`Patient?_id=p1&_revinclude=${encodeURIComponent(value)}`);
    t.equal(res.status, 400, `_revinclude=${value}: 400`);
    t.equal(res.body?.resourceType, 'OperationOutcome');
    t.match(res.body?.issue?.[0]?.diagnostics, /name the source type/);
    t.same(res.body?.issue?.[0]?.expression, ['_revinclude']);
  }
  const cs = (await server.fhir('metadata', { token: false })).body;
  const patient = cs.rest[0].resource.find((r: any) => r.type === 'Patient');
  t.ok(patient.searchRevInclude.includes('Observation:*') && patient.searchRevInclude.includes('Observation:subject'), 'the CapabilityStatement lists Type:* revincludes');
  t.notOk(patient.searchRevInclude.includes('*'));
});
