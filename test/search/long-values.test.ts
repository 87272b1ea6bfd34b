// Values longer than the index keeps in a key (extract.ts, MAX_VALUE): exact and token searches compare whole
// values, string prefixes longer than the index holds are checked on the decrypted values, and neither a search
// value cut to the index's length nor one longer than it answers wrongly.
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { ids } from './fixtures/dataset.ts';

const family = `Longfamily${'x'.repeat(290)}`; // 300 characters
const identifierValue = `V${'y'.repeat(249)}`; // 250 characters
const code = `C${'c'.repeat(249)}`;
const valueString = `S${'s'.repeat(299)}`;
const url = `http://qa/${'u'.repeat(240)}/ValueSet/long`; // 263 characters
const reference = `http://other.example/fhir/${'r'.repeat(230)}/Patient/1`;
const unitSystem = `http://qa/units/${'q'.repeat(200)}`;
const enc = encodeURIComponent;

t.test('values longer than an index key: whole values compared, no false match on a cut value', async (t) => {
  const server = await startServer(t);
  const put = async (resource: Record<string, unknown>) => {
    const res = await server.fhir(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: resource });
    t.ok(res.status === 201 || res.status === 200, `PUT ${resource.resourceType}/${resource.id}: ${res.status} ${res.text.slice(0, 200)}`);
  };
  await put({ resourceType: 'Patient', id: 'long', name: [{ family }], identifier: [{ system: 'http://qa/long', value: identifierValue }] });
  // a patient whose values are exactly the first 200 characters of the long ones must stay apart from it
  await put({ resourceType: 'Patient', id: 'cut', name: [{ family: family.slice(0, 200) }], identifier: [{ system: 'http://qa/long', value: identifierValue.slice(0, 200) }] });
  await put({
    resourceType: 'Observation', id: 'long', status: 'final', code: { coding: [{ system: 'http://qa/codes', code }] }, valueString,
    subject: { reference },
  });
  await put({ resourceType: 'Observation', id: 'qty', status: 'final', code: { text: 'q' }, valueQuantity: { value: 5, system: unitSystem, code: 'mg' } });
  await put({ resourceType: 'ValueSet', id: 'long', status: 'active', url });

  t.same(await ids(server, `Patient?family:exact=${enc(family)}`), ['long'], ':exact with the whole value');
  t.same(await ids(server, `Patient?family:exact=${enc(family.slice(0, 200))}`), ['cut'], ':exact with the first 200 characters finds only that value');
  t.same(await ids(server, `Patient?family:exact=${enc(family.slice(0, 250))}`), [], ':exact with 250 characters matches neither');
  t.same(await ids(server, `Patient?family=${enc(family.slice(0, 250))}`), ['long'], 'starts-with beyond 200 characters');
  t.same(await ids(server, `Patient?family=${enc(family)}`), ['long'], 'starts-with the whole value');
  t.same(await ids(server, `Patient?family=${enc(family.slice(0, 200))}`), ['cut', 'long'], 'starts-with the first 200 characters: both');
  t.same(await ids(server, `Patient?family=${enc(`${family}x`)}`), [], 'a prefix longer than the value');

  t.same(await ids(server, `Patient?identifier=${enc(`http://qa/long|${identifierValue}`)}`), ['long'], 'token system|code, whole value');
  t.same(await ids(server, `Patient?identifier=${enc(identifierValue)}`), ['long'], 'token code, whole value');
  t.same(await ids(server, `Patient?identifier=${enc(identifierValue.slice(0, 200))}`), ['cut'], 'token: the cut value is another value');

  t.same(await ids(server, `Observation?code=${enc(code)}`), ['long'], 'a 250-character code');
  t.same(await ids(server, `Observation?code=${enc(code.slice(0, 200))}`), [], 'its first 200 characters are not it');
  t.same(await ids(server, `Observation?value-string=${enc(valueString)}`), ['long']);
  t.same(await ids(server, `Observation?value-string:exact=${enc(valueString)}`), ['long']);

  // clear values (references, uris, quantity units) keep a bounded key too, and still compare whole
  t.same(await ids(server, `Observation?subject=${enc(reference)}`), ['long'], 'a long absolute reference');
  t.same(await ids(server, `Observation?subject=${enc(reference.slice(0, 200))}`), [], 'its first 200 characters are not it');
  t.same(await ids(server, `ValueSet?url=${enc(url)}`), ['long'], 'a long uri');
  t.same(await ids(server, `ValueSet?url=${enc(url.slice(0, 200))}`), []);
  t.same(await ids(server, `ValueSet?url:below=${enc('http://qa/')}`), ['long'], ':below a short prefix');
  t.same(await ids(server, `ValueSet?url:below=${enc(url.slice(0, 230))}`), ['long'], ':below a prefix longer than the key keeps');
  t.same(await ids(server, `ValueSet?url:below=${enc(`${url.slice(0, 230)}z`)}`), [], ':below a long prefix the value does not have');
  t.same(await ids(server, `ValueSet?url:above=${enc(`${url}/v2`)}`), ['long'], ':above');
  t.same(await ids(server, `Observation?value-quantity=${enc(`5|${unitSystem}|mg`)}`), ['qty'], 'a quantity with a long system');
  t.same(await ids(server, `Observation?value-quantity=${enc(`5|${unitSystem.slice(0, 200)}|mg`)}`), []);

  // no index key holds more than the bound
  let longest = 0;
  for await (const key of server.app.repo.index.valueIndex.keys()) longest = Math.max(longest, key.length);
  t.ok(longest < 300, `longest search-value key: ${longest} characters`);
});
