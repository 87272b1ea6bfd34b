/**
 * Duplicate member names in a JSON body (json-body.ts jsonTextProblem): JSON.parse keeps the last silently, so the
 * server refuses them with a 400 that points at the object, and stores nothing. Held against an independent
 * reference: a tokenizer that builds each object's names decoded, written here without sharing any code.
 */
import fc from 'fast-check';
import t from 'tap';
import { jsonTextProblem, parseJsonBody } from '../../src/fhir/http/json-body.ts';
import { parseEntry } from '../../src/ledger/entry.ts';
import { startServer } from '../helpers/server.ts';

/** The reference: a recursive-descent JSON reader that reports the first object holding a name twice. */
function referenceDuplicate(text: string): string | undefined {
  let i = 0;
  let found: string | undefined;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): void => {
    ws();
    if (text[i] === '{') {
      i++;
      const names = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const name = str();
        if (names.has(name)) found ??= name;
        names.add(name);
        ws();
        i++; // :
        value();
        ws();
        if (text[i++] === '}') return;
      }
    } else if (text[i] === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    } else if (text[i] === '"') {
      str();
    } else {
      while (i < text.length && !/[,}\]\s]/.test(text[i]!)) i++;
    }
  };
  value();
  return found;
}

/** JSON texts with objects whose names are drawn from a small pool (so repeats are common), escapes included. */
const jsonWithRepeats = fc
  .letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constantFrom('1', 'true', 'null', '"x"', '"{\\"a\\":1,\\"a\\":2}"'), tie('object'), tie('array')),
    array: fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${(items as string[]).join(',')}]`),
    object: fc
      .array(fc.tuple(fc.constantFrom('"a"', '"b"', '"\\u0061"', '"a\\"b"', '"ab"', '"c"', '"é"', '"\\u00e9"'), tie('value')), { maxLength: 5 })
      .map((members) => `{${(members as Array<[string, string]>).map(([n, v]) => `${n} : ${v}`).join(', ')}}`),
  }))
  .object as fc.Arbitrary<string>;

t.test('jsonTextProblem finds exactly the duplicates an independent reader finds', async (t) => {
  fc.assert(
    fc.property(jsonWithRepeats, (text) => {
      JSON.parse(text); // the generator writes JSON
      const problem = jsonTextProblem(text, 100);
      const expected = referenceDuplicate(text);
      return problem?.kind === 'duplicate' ? problem.member === expected : expected === undefined;
    }),
    { numRuns: 3000 },
  );
});

t.test('names are compared decoded, strings that are values are not names, and the path locates the object', async (t) => {
  t.same(jsonTextProblem('{"a":1,"\\u0061":2}', 10), { kind: 'duplicate', member: 'a', path: '' });
  t.equal(jsonTextProblem('{"a":"a","b":"a"}', 10), undefined, 'values may repeat');
  t.equal(jsonTextProblem('{"a":{"a":1},"b":[{"a":1},{"a":2}]}', 10), undefined, 'the same name in different objects');
  t.equal(jsonTextProblem('{"s":"{\\"a\\":1,\\"a\\":2}"}', 10), undefined, 'braces and quotes inside a string');
  t.same(jsonTextProblem('{"entry":[{"resource":{}},{"resource":{"name":[{"family":"A"},{"given":["B"],"family":"C","family":"D"}]}}]}', 10), {
    kind: 'duplicate',
    member: 'family',
    path: 'entry[1].resource.name[1]',
  });
  const wide = `{${Array.from({ length: 40 }, (_, k) => `"m${k}":${k}`).join(',')},"m7":0}`;
  t.same(jsonTextProblem(wide, 10), { kind: 'duplicate', member: 'm7', path: '' }, 'an object wider than the linear check');
  t.same(jsonTextProblem('[[[[1]]]]', 3), { kind: 'depth' });
  t.equal(jsonTextProblem('[[["[[[[["]]]', 3), undefined, 'brackets inside strings do not count');
});

t.test('parseJsonBody: 400 naming the member and the element, after syntax errors', async (t) => {
  t.throws(() => parseJsonBody('{"resourceType":"Patient","name":[{"family":"A","family":"B"}]}', 50), {
    status: 400,
    code: 'ERR_JSON_DUPLICATE_MEMBER',
    message: /member 'family' twice in one object \(Patient\.name\[0\]\)/,
  });
  t.throws(() => parseJsonBody('{"a":1,"a":2', 50), { code: 'ERR_JSON_SYNTAX' }, 'text that is not JSON is a syntax error first');
  t.same(parseJsonBody('{"resourceType":"Patient","id":"x"}', 50), { resourceType: 'Patient', id: 'x' });
});

t.test('over HTTP: a body with a repeated member stores nothing and changes nothing', async (t) => {
  const server = await startServer(t);
  const body = '{"resourceType":"Patient","id":"dup","name":[{"family":"Chalmers","family":"Smith"}]}';
  const before = server.app.ledger.size();
  const created = await server.fhir('Patient/dup', { method: 'PUT', body, headers: { 'content-type': 'application/fhir+json' } });
  t.equal(created.status, 400);
  t.match(created.body, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', expression: ['Patient.name[0].family'], diagnostics: /twice/ }] });
  const recorded = (await server.app.ledger.getEntries(before, server.app.ledger.size())).map((e) => parseEntry(e.bytes));
  t.match(recorded, [{ interaction: 'update', status: 400, error: 'ERR_JSON_DUPLICATE_MEMBER' }], 'the refusal is in the ledger');
  t.equal((await server.fhir('Patient/dup')).status, 404, 'nothing was stored');

  const good = await server.fhir('Patient/dup', { method: 'PUT', body: '{"resourceType":"Patient","id":"dup","name":[{"family":"Chalmers"}]}', headers: { 'content-type': 'application/fhir+json' } });
  t.equal(good.status, 201);
  const again = await server.fhir('Patient/dup', { method: 'PUT', body, headers: { 'content-type': 'application/fhir+json' } });
  t.equal(again.status, 400, 'an update with a repeated member is refused too');
  const read = await server.fhir('Patient/dup');
  t.equal(read.body.meta.versionId, '1', 'and left the stored version alone');
  t.equal(read.body.name[0].family, 'Chalmers');

  const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true,"active":false},"request":{"method":"POST","url":"Patient"}}]}`;
  const posted = await server.fhir('', { method: 'POST', body: bundle, headers: { 'content-type': 'application/fhir+json' } });
  t.equal(posted.status, 400);
  t.match(posted.body, { issue: [{ expression: ['Bundle.entry[0].resource.active'] }] });
});
