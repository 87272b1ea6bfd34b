/**
 * FHIR's JSON and its query strings are UTF-8: a body in another charset, bytes that are not UTF-8, and query
 * escapes that are malformed or spell no UTF-8 are refused with a 4xx OperationOutcome, never decoded with
 * replacement characters into what is stored or searched for.
 */
import t from 'tap';
import { decodeBody } from '../../src/fhir/http/json-body.ts';
import { parseQuery } from '../../src/fhir/request.ts';
import { startServer } from '../helpers/server.ts';

const LATIN1_BODY = Buffer.from('{"resourceType":"Patient","id":"enc","name":[{"family":"M\u00fcller"}]}', 'latin1');
const UTF8_BODY = Buffer.from('{"resourceType":"Patient","id":"enc","name":[{"family":"M\u00fcller"}]}', 'utf8');

t.test('decodeBody: UTF-8 with or without a charset; other charsets 415; bytes that are not UTF-8 400', async (t) => {
  for (const type of [undefined, 'application/fhir+json', 'application/fhir+json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/fhir+json; charset=utf8; fhirVersion=4.0']) {
    t.equal(decodeBody(UTF8_BODY, type), UTF8_BODY.toString('utf8'), String(type));
  }
  for (const charset of ['iso-8859-1', 'latin1', 'utf-16', 'windows-1252', '"us-ascii"']) {
    t.throws(() => decodeBody(UTF8_BODY, `application/fhir+json; charset=${charset}`), { status: 415, message: /charset/ }, charset);
  }
  t.throws(() => decodeBody(LATIN1_BODY, 'application/fhir+json'), { status: 400, code: 'ERR_BODY_ENCODING', message: /byte offset 57/ });
  // Overlong encodings, surrogates and truncated sequences are not UTF-8 either.
  for (const bytes of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x22, 0xe2, 0x82]]) {
    t.throws(() => decodeBody(Buffer.from(bytes), undefined), { status: 400, message: /not valid UTF-8/ }, bytes.join(','));
  }
});

t.test('parseQuery: form decoding, with malformed or non-UTF-8 escapes refused', async (t) => {
  t.same(parseQuery('family=M%C3%BCller&given=a+b&given=c%2Bd&flag&=x&&'), { family: ['Müller'], given: ['a b', 'c+d'], flag: [''], '': ['x'] });
  t.same(parseQuery('a=1', 'a=2&b=%24'), { a: ['1', '2'], b: ['$'] });
  for (const bad of ['family=M%FCller', 'name=%zz', 'name=%', 'name=%E2%82', 'na%ZZme=x']) {
    t.throws(() => parseQuery(bad), { status: 400, code: 'ERR_QUERY_ENCODING' }, bad);
  }
});

t.test('over HTTP: nothing is stored or searched in a charset it was not sent in', async (t) => {
  const server = await startServer(t);
  const token = await server.token();
  const put = (body: Buffer, contentType: string) =>
    fetch(`${server.baseUrl}/Patient/enc`, { method: 'PUT', body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });

  const latin1Declared = await put(LATIN1_BODY, 'application/fhir+json; charset=iso-8859-1');
  t.equal(latin1Declared.status, 415);
  t.match(await latin1Declared.json(), { resourceType: 'OperationOutcome', issue: [{ diagnostics: /charset 'iso-8859-1' is not supported/ }] });
  const latin1Undeclared = await put(LATIN1_BODY, 'application/fhir+json');
  t.equal(latin1Undeclared.status, 400);
  t.match(await latin1Undeclared.json(), { issue: [{ diagnostics: /not valid UTF-8/ }] });
  t.equal((await server.fhir('Patient/enc')).status, 404, 'neither stored anything');

  t.equal((await put(UTF8_BODY, 'application/fhir+json; charset=UTF-8')).status, 201);
  t.equal((await server.fhir('Patient/enc')).body.name[0].family, 'Müller');
  t.equal((await put(LATIN1_BODY, 'application/fhir+json')).status, 400, 'an update in Latin-1 is refused too');
  t.equal((await server.fhir('Patient/enc')).body.meta.versionId, '1', 'and changed nothing');

  const found = await server.fhir('Patient?family=m%C3%BCller');
  t.equal(found.body.total, 1, 'the UTF-8 escape finds her');
  const latin1Query = await server.fhir('Patient?family=M%FCller');
  t.equal(latin1Query.status, 400, 'a Latin-1 escape is refused, not searched as M\uFFFDller');
  t.equal(latin1Query.body.resourceType, 'OperationOutcome');
  t.equal((await server.fhir('Patient?name=%zz')).status, 400, 'a malformed escape is refused, not searched literally');
  const form = await server.fhir('Patient/_search', { method: 'POST', body: 'family=M%FCller', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.equal(form.status, 400, 'the same in a POST _search form');
  const latin1Form = await server.fhir('Patient/_search', { method: 'POST', body: 'family=M%C3%BCller', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' } });
  t.equal(latin1Form.status, 415);
});
