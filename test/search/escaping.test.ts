// Backslash escapes in search values (http://hl7.org/fhir/R4/search.html#escaping): `\$`, `\|`, `\,` and `\\` stand
// for the literal characters in every parameter type: token systems and codes apart, strings, uris, references
// and composite components.
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { ids } from './fixtures/dataset.ts';

const enc = encodeURIComponent;

t.test('escaped separators are literal characters in every parameter type', async (t) => {
  const server = await startServer(t);
  const put = async (resource: Record<string, unknown>) => {
    const res = await server.fhir(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: resource });
    t.ok(res.status === 201 || res.status === 200, `PUT ${resource.resourceType}/${resource.id}: ${res.status} ${res.text.slice(0, 200)}`);
  };
  await put({
    resourceType: 'Patient', id: 'esc', name: [{ family: 'Comma,Pipe|Dollar$', given: ['Dollar$sign', 'Back\\slash'] }],
    identifier: [{ system: 'http://qa/esc', value: 'x|y' }, { system: 'http://qa/esc', value: 'p$q' }, { system: 'http://qa/esc', value: 'c,d' }, { system: 'http://qa/esc', value: 'b\\s' }],
  });
  // a code `y` under the system `x` must not be taken for the code `x|y`
  await put({ resourceType: 'Patient', id: 'xy', identifier: [{ system: 'x', value: 'y' }] });
  await put({ resourceType: 'ValueSet', id: 'esc', status: 'active', url: 'http://qa/vs|$,x' });
  await put({
    resourceType: 'Observation', id: 'esc', status: 'final', code: { coding: [{ system: 'http://qa/codes', code: 'a$b|c' }] },
    valueString: 'v$w', subject: { reference: 'http://qa/ref$x' },
  });

  t.same(await ids(server, `Patient?identifier=${enc('http://qa/esc|x\\|y')}`), ['esc'], 'system|code with an escaped | in the code');
  t.same(await ids(server, `Patient?identifier=${enc('x\\|y')}`), ['esc'], 'code alone with an escaped |');
  t.same(await ids(server, `Patient?identifier=${enc('x|y')}`), ['xy'], 'unescaped: system x, code y');
  t.same(await ids(server, `Patient?identifier=${enc('p\\$q')}`), ['esc'], 'an escaped $ in a code');
  t.same(await ids(server, `Patient?identifier=${enc('http://qa/esc|p\\$q')}`), ['esc']);
  t.same(await ids(server, `Patient?identifier=${enc('c\\,d')}`), ['esc'], 'an escaped comma');
  t.same(await ids(server, `Patient?identifier=${enc('b\\\\s')}`), ['esc'], 'an escaped backslash');
  t.same(await ids(server, `Patient?identifier=${enc('nope,x\\|y')}`), ['esc'], 'OR by comma still splits around escapes');
  t.same(await ids(server, `Patient?identifier:not=${enc('http://qa/esc|x\\|y')}`), ['xy']);

  t.same(await ids(server, `Patient?given:exact=${enc('Dollar\\$sign')}`), ['esc'], 'string :exact');
  t.same(await ids(server, `Patient?given=${enc('dollar\\$s')}`), ['esc'], 'string starts-with');
  t.same(await ids(server, `Patient?given=${enc('back\\\\')}`), ['esc'], 'string with an escaped backslash');
  t.same(await ids(server, `Patient?family=${enc('comma\\,pipe\\|dollar\\$')}`), ['esc'], 'string with every escape');
  t.same(await ids(server, `Patient?family:contains=${enc('e\\|d')}`), ['esc'], 'string :contains');

  t.same(await ids(server, `ValueSet?url=${enc('http://qa/vs\\|\\$\\,x')}`), ['esc'], 'uri');
  t.same(await ids(server, `ValueSet?url:below=${enc('http://qa/vs\\|')}`), ['esc'], 'uri :below');
  t.same(await ids(server, `Observation?subject=${enc('http://qa/ref\\$x')}`), ['esc'], 'reference');
  t.same(await ids(server, `Observation?code=${enc('http://qa/codes|a\\$b\\|c')}`), ['esc'], 'token with both escapes');
  t.same(await ids(server, `Observation?value-string=${enc('v\\$w')}`), ['esc']);
  t.same(await ids(server, `Observation?code-value-string=${enc('http://qa/codes|a\\$b\\|c$v\\$w')}`), ['esc'], 'composite: escapes inside components');
  t.same(await ids(server, `Observation?code-value-string=${enc('a\\$b\\|c$v\\$w')}`), ['esc'], 'composite: the code alone');
  t.same(await ids(server, `Observation?code-value-string=${enc('a\\$b\\|c$w')}`), []);
  // The string component matches by its start, as a string parameter does (search.html#composite), folded.
  t.same(await ids(server, `Observation?code-value-string=${enc('a\\$b\\|c$V')}`), ['esc'], 'composite: a string component by its start');
  t.same(await ids(server, `Observation?code-value-string=${enc('a\\$b\\|c$v\\$')}`), ['esc'], 'composite: a start ending in an escaped $');
  t.same(await ids(server, `Observation?code-value-string=${enc('other$v')}`), [], 'composite: the code still has to match');
});
