// parseSearch: filters, result parameters, chains, _has, includes, and the error codes of what it refuses.
import t from 'tap';
import { isEmptyValue, parseSearch, parseSystemSearch, withoutEmptyValues } from '../../src/fhir/search/params.ts';
import { RESOURCE_TYPES } from '../../src/fhir/validate.ts';

const q = (s: string) => {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(s)) (out[k] ??= []).push(v);
  return out;
};

t.test('filters: OR by comma inside one value, AND by repetition', async (t) => {
  const p = parseSearch('Observation', q('code=a,b&date=ge2024&date=lt2025&status:not=final&value-quantity:missing=true'));
  t.same(p.filters.map((f) => [f.kind, f.name]), [['match', 'code'], ['match', 'date'], ['match', 'date'], ['match', 'status:not'], ['missing', 'value-quantity:missing']]);
  const code = p.filters[0]!;
  t.equal(code.kind === 'match' && code.conditions.length, 2);
  t.equal(code.kind === 'match' && code.conditions[0]!.exact, 'a');
  const not = p.filters[3]!;
  t.equal(not.kind === 'match' && not.negate, true);
  const escaped = parseSearch('Patient', q('name=a\\,b'));
  t.equal(escaped.filters[0]!.kind === 'match' && (escaped.filters[0] as any).conditions.length, 1, 'an escaped comma does not split');
});

t.test('chains and _has', async (t) => {
  const p = parseSearch('Observation', q('subject:Patient.name=peter&patient.organization.name=acme'));
  t.same(p.filters[0], { kind: 'chain', name: 'subject:Patient.name', code: 'subject', targets: ['Patient'], query: { name: ['peter'] } });
  t.same(p.filters[1], { kind: 'chain', name: 'patient.organization.name', code: 'patient', targets: ['Patient'], query: { 'organization.name': ['acme'] } });
  const untyped = parseSearch('Observation', q('subject.name=x'));
  t.ok(untyped.filters[0]!.kind === 'chain' && (untyped.filters[0] as any).targets.includes('Patient'), 'targets that have the parameter');
  const has = parseSearch('Patient', q('_has:Observation:patient:code=1234'));
  t.same(has.filters[0], { kind: 'has', name: '_has:Observation:patient:code', type: 'Observation', code: 'patient', query: { code: ['1234'] } });
});

t.test('result parameters', async (t) => {
  const p = parseSearch('Observation', q('_count=10&_sort=-date,code&_include=Observation:subject&_include:iterate=Patient:organization&_revinclude=Provenance:target&_summary=data&_elements=status,code&_total=accurate&_page=abc'));
  t.equal(p.count, 10);
  t.same(p.sort, [{ code: 'date', type: 'date', descending: true }, { code: 'code', type: 'token', descending: false }]);
  t.same(p.include, [{ type: 'Observation', code: 'subject', iterate: false }, { type: 'Patient', code: 'organization', iterate: true }]);
  t.same(p.revinclude, [{ type: 'Provenance', code: 'target', iterate: false }]);
  t.equal(p.summary, 'data');
  t.same(p.elements, ['status', 'code']);
  t.equal(p.total, 'accurate');
  t.equal(p.page, 'abc');
  t.equal(parseSearch('Patient', q('_count=5000')).count, 1000, '_count is capped');
  t.same(parseSearch('Observation', q('_include=Observation:subject:Patient')).include, [{ type: 'Observation', code: 'subject', target: 'Patient', iterate: false }]);
  t.same(parseSearch('Patient', q('_revinclude=Observation:*')).revinclude, [{ type: 'Observation', code: '*', iterate: false }], 'every reference parameter of a named type');
  t.same(parseSearch('Observation', q('_include=*&_include=Observation:*')).include, [{ type: '*', code: '*', iterate: false }, { type: 'Observation', code: '*', iterate: false }]);
});

t.test('what is refused, with stable codes; lenient handling ignores only unknown parameters', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['Patient', 'nope=1', 'ERR_UNKNOWN_PARAMETER'],
    ['Patient', '_text=x', 'ERR_UNSUPPORTED_PARAMETER'],
    ['Patient', '_content=x', 'ERR_UNSUPPORTED_PARAMETER'],
    ['Patient', '_filter=x', 'ERR_UNSUPPORTED_PARAMETER'],
    ['Patient', 'name:below=x', 'ERR_UNKNOWN_MODIFIER'],
    ['Patient', 'name:exact:contains=x', 'ERR_UNKNOWN_MODIFIER'],
    ['Observation', 'code:in=http://vs', 'ERR_UNKNOWN_MODIFIER'],
    ['Observation', 'subject:Nope=1', 'ERR_UNKNOWN_MODIFIER'],
    ['Patient', 'gender:missing=yes', 'ERR_SEARCH_VALUE'],
    ['Patient', 'gender=male,', 'ERR_SEARCH_VALUE'],
    ['Patient', 'name=,smith', 'ERR_SEARCH_VALUE'],
    ['Patient', '_sort=name,', 'ERR_SEARCH_VALUE'],
    ['Patient', '_elements=gender,', 'ERR_SEARCH_VALUE'],
    ['Patient', 'nope=', 'ERR_UNKNOWN_PARAMETER'],
    ['Patient', 'name:below=', 'ERR_UNKNOWN_MODIFIER'],
    ['Patient', '_has:Observation:code=', 'ERR_INVALID_CHAIN'],
    ['Patient', 'name.family=', 'ERR_INVALID_CHAIN'],
    ['Patient', '_include:bogus=', 'ERR_UNKNOWN_PARAMETER'],
    ['Observation', 'date=2024-1-1', 'ERR_INVALID_DATE'],
    ['Observation', 'subject=Nope/1', 'ERR_INVALID_REFERENCE'],
    ['Observation', 'subject=a/b/c', 'ERR_INVALID_REFERENCE'],
    ['Observation', 'value-quantity=1|2', 'ERR_INVALID_QUANTITY'],
    ['Patient', '_count=-1', 'ERR_INVALID_COUNT'],
    ['Patient', '_count=1&_count=2', 'ERR_SEARCH_VALUE'],
    ['Patient', '_sort=nope', 'ERR_UNKNOWN_PARAMETER'],
    ['Patient', '_summary=all', 'ERR_SEARCH_VALUE'],
    ['Patient', '_elements=a.b', 'ERR_SEARCH_VALUE'],
    ['Observation', '_include=Patient:organization', 'ERR_INVALID_INCLUDE'],
    ['Observation', '_include=Observation:code', 'ERR_INVALID_INCLUDE'],
    ['Observation', '_include=Observation', 'ERR_INVALID_INCLUDE'],
    ['Observation', '_include:recursive=Observation:subject', 'ERR_UNKNOWN_PARAMETER'],
    ['Patient', '_revinclude=*', 'ERR_INVALID_INCLUDE'],
    ['Patient', '_revinclude=*:subject', 'ERR_INVALID_INCLUDE'],
    ['Patient', '_revinclude:iterate=*:*', 'ERR_INVALID_INCLUDE'],
    ['Patient', 'name.family=x', 'ERR_INVALID_CHAIN'],
    ['Patient', '_has:Observation:code=1', 'ERR_INVALID_CHAIN'],
    ['Patient', '_has:Observation:encounter:code=1', 'ERR_INVALID_CHAIN'],
    ['Patient', '_has:Observation:patient:nope=1', 'ERR_UNKNOWN_PARAMETER'],
    ['Observation', 'code-value-quantity=a', 'ERR_SEARCH_VALUE'],
    ['Observation', 'code-value-quantity=a$gt1$2', 'ERR_SEARCH_VALUE'],
  ];
  for (const [type, query, code] of cases) t.throws(() => parseSearch(type, q(query)), { status: 400, code }, `${type}?${query}`);
  const lenient = parseSearch('Patient', q('nope=1&_text=x&name:below=x&gender=male'), { lenient: true });
  t.same(lenient.ignored, ['nope', '_text', 'name:below']);
  t.equal(lenient.filters.length, 1);
  t.throws(() => parseSearch('Patient', q('birthdate=xx'), { lenient: true }), { code: 'ERR_INVALID_DATE' }, 'malformed values are never ignored');
});

t.test('references: forms accepted', async (t) => {
  const exact = (s: string, base?: string) => (parseSearch('Observation', q(s), base ? { baseUrl: base } : {}).filters[0] as any).conditions[0].exact;
  t.equal(exact('subject=Patient/1'), 'Patient/1');
  t.equal(exact('subject=1'), '1');
  t.equal(exact('subject:Patient=1'), 'Patient/1');
  t.equal(exact('subject=http://me/fhir/Patient/1', 'http://me/fhir'), 'Patient/1');
  t.equal(exact('subject=http://other/fhir/Patient/1', 'http://me/fhir'), 'http://other/fhir/Patient/1');
  t.equal(exact('subject=Patient/1/_history/2'), 'Patient/1');
  t.equal((parseSearch('Observation', q('subject:identifier=s|v')).filters[0] as any).conditions[0].code, 'subject:identifier');
});

t.test('empty values are ignored, as R4 has it (search.html#errors), once the name is known to be valid', async (t) => {
  const empty = [
    'name=', 'name:exact=', 'name:contains=', 'name=%20', '_id=%20', 'gender=', 'gender:not=', 'gender:missing=', 'identifier=',
    'birthdate=', 'general-practitioner=', 'general-practitioner:identifier=', 'organization.name=', '_has:Observation:patient:code=',
    '_count=', '_sort=', '_summary=', '_elements=', '_total=', '_page=', '_include=', '_revinclude=',
  ];
  for (const query of empty) {
    const p = parseSearch('Patient', q(query));
    t.same([p.filters, p.count, p.sort, p.include, p.revinclude, p.summary, p.elements, p.total, p.page], [[], undefined, [], [], [], undefined, undefined, undefined, undefined], query);
  }
  t.same(parseSearch('Library', q('url:below=')).filters, []);
  t.same(parseSearch('Observation', q('code=&date=&subject=&value-quantity=&code-value-quantity=')).filters, []);
  const mixed = parseSearch('Patient', q('name=&name=smith&gender=male'));
  t.same(mixed.filters.map((f) => f.name), ['name', 'gender'], 'an empty repetition adds nothing; the others stay');
  t.same(withoutEmptyValues(q('name=&name=smith&_count=&gender=male')), { name: ['smith'], gender: ['male'] }, 'the query links repeat');
  t.ok(isEmptyValue(' ') && isEmptyValue('') && !isEmptyValue('a'));
  const lenient = parseSearch('Patient', q('nope=&name=&gender=male'), { lenient: true });
  t.same(lenient.ignored, ['nope'], 'lenient handling still reports an unknown name, empty or not');
  t.equal(lenient.filters.length, 1);
});

t.test('parseSystemSearch: with _type, each type by its own parameters; without, the common ones', async (t) => {
  const both = parseSystemSearch(['Patient', 'Practitioner', 'Patient'], q('_type=Patient,Practitioner&name=drake&_include=Patient:organization&_sort=-name'));
  t.same(both.types.map((x) => x.type), ['Patient', 'Practitioner'], 'each listed type once');
  t.same(both.types.map((x) => x.filters.map((f) => f.name)), [['name'], ['name']]);
  t.same(both.parsed.include, [{ type: 'Patient', code: 'organization', iterate: false }]);
  t.same(both.parsed.sort, [{ code: 'name', type: 'string', descending: true }]);
  t.same(both.parsed.filters, [], 'filters live per type');
  t.throws(() => parseSystemSearch(['Patient', 'Observation'], q('gender=male')), { code: 'ERR_UNKNOWN_PARAMETER', message: /'gender' for Observation, one of the _type types/ });
  t.throws(() => parseSystemSearch(['Patient'], q('_include=Observation:patient')), { code: 'ERR_INVALID_INCLUDE' });
  t.throws(() => parseSystemSearch(['ValueSet', 'MedicationStatement'], q('_sort=context')), { code: 'ERR_SEARCH_VALUE', message: /token parameter for ValueSet but a reference parameter for MedicationStatement/ });
  const lenient = parseSystemSearch(['Patient', 'Observation'], q('gender=male&_id=x&_sort=gender'), { lenient: true });
  t.same(lenient.parsed.ignored.sort(), ['_sort', 'gender'], 'lenient: what one type lacks is ignored for all');
  t.same(lenient.types.map((x) => x.filters.map((f) => f.name)), [['_id'], ['_id']]);
  t.same(lenient.parsed.sort, []);
  const all = parseSystemSearch(undefined, q('_id=x&_include=Observation:patient'));
  t.equal(all.types.length, RESOURCE_TYPES.length, 'without _type: every type');
  t.ok(all.types.every((x) => x.filters.length === 1 && x.filters[0]!.name === '_id'));
  t.same(all.parsed.include, [{ type: 'Observation', code: 'patient', iterate: false }], 'and _include from any type');
  t.throws(() => parseSystemSearch(undefined, q('gender=male')), { code: 'ERR_UNKNOWN_PARAMETER', message: /for every resource type \(name the types with _type/ });
});
