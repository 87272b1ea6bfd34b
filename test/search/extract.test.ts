// Extraction: resource → index entries, per parameter type, through the official R4 FHIRPath expressions.
import { createHash } from 'node:crypto';
import t from 'tap';
import { boundedValue, extractEntries, MAX_VALUE, sealedUnit, sealEntries } from '../../src/fhir/search/extract.ts';
import { dateRange, encodeInstant, encodeNumber } from '../../src/fhir/search/encode.ts';
import { expressionFor, paramOf, paramsOf } from '../../src/fhir/search/registry.ts';

const has = (entries: Array<{ code: string; value: string }>, code: string) => entries.filter((e) => e.code === code).map((e) => e.value).sort();
const range = (low: string, high: string) => `${encodeInstant(dateRange(low)!.low)}~${encodeInstant(dateRange(high)!.high)}`;

t.test('registry: parameters of every type from the R4 definitions', async (t) => {
  t.ok(paramsOf('Observation').size > 30);
  t.equal(paramOf('Observation', 'patient')?.type, 'reference');
  t.equal(paramOf('Patient', 'birthdate')?.expression, 'Patient.birthDate');
  t.equal(expressionFor('Observation', 'AllergyIntolerance.patient | Observation.subject.where(resolve() is Patient) | Procedure.subject'), 'Observation.subject.where(resolve() is Patient)');
  t.equal(paramOf('Binary', '_id')?.type, 'token', 'Resource-level parameters apply to every type');
  t.notOk(paramOf('Patient', '_text'), '_text is not served');
  t.equal(paramOf('Observation', 'code-value-quantity')?.components?.length, 2);
});

const CASES: Array<[string, Record<string, unknown>, string, string[]]> = [
  ['string: HumanName parts, normalized', { resourceType: 'Patient', name: [{ family: 'Müller', given: ['Anna'] }] }, 'name', ['anna', 'muller']],
  ['string: exact as written', { resourceType: 'Patient', name: [{ family: 'Müller' }] }, 'name:exact', ['Müller']],
  ['string: Address parts', { resourceType: 'Patient', address: [{ line: ['1 Main St'], city: 'Boston' }] }, 'address', ['1 main st', 'boston']],
  ['token: Coding forms', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1-8' }] } }, 'code', ['1-8', 'http://loinc.org|', 'http://loinc.org|1-8']],
  ['token: CodeableConcept text and display', { resourceType: 'Observation', status: 'final', code: { coding: [{ code: 'x', display: 'Héart Rate' }], text: 'HR' } }, 'code:text', ['heart rate', 'hr']],
  ['token: code without system', { resourceType: 'Patient', gender: 'male' }, 'gender', ['male', '|male']],
  ['token: Identifier', { resourceType: 'Patient', identifier: [{ system: 's', value: 'v' }] }, 'identifier', ['s|', 's|v', 'v']],
  ['token: boolean', { resourceType: 'Patient', active: true }, 'active', ['true']],
  ['reference: local', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Patient/1' } }, 'subject', ['1', 'Patient/1']],
  ['reference: absolute under the base', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'http://me/fhir/Patient/1/_history/3' } }, 'subject', ['1', 'Patient/1']],
  ['reference: other server', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'http://other/Patient/1' } }, 'subject', ['http://other/Patient/1']],
  ['reference: target types filter (resolve() is Patient)', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Group/1' } }, 'patient', []],
  ['reference: identifier', { resourceType: 'Observation', status: 'final', code: {}, subject: { identifier: { system: 's', value: 'v' } } }, 'subject:identifier', ['s|', 's|v', 'v']],
  ['reference: contained is not indexed', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: '#p' } }, 'subject', []],
  ['date: dateTime', { resourceType: 'Observation', status: 'final', code: {}, effectiveDateTime: '2024-01-02' }, 'date', [range('2024-01-02', '2024-01-02')]],
  ['date: Period', { resourceType: 'Observation', status: 'final', code: {}, effectivePeriod: { start: '2024-01', end: '2024-03' } }, 'date', [range('2024-01', '2024-03')]],
  ['date: open Period', { resourceType: 'Encounter', status: 'finished', class: {}, period: { start: '2024' } }, 'date', [`${encodeInstant(dateRange('2024')!.low)}~999999999999999`]],
  ['number', { resourceType: 'RiskAssessment', status: 'final', subject: {}, prediction: [{ probabilityDecimal: 0.5 }] }, 'probability', [encodeNumber(0.5)]],
  ['quantity', { resourceType: 'Observation', status: 'final', code: {}, valueQuantity: { value: 5, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }, 'value-quantity', [`#${encodeNumber(5)}`, `http://unitsofmeasure.org|mg#${encodeNumber(5)}`, `|mg#${encodeNumber(5)}`].sort()],
  ['uri', { resourceType: 'ValueSet', status: 'active', url: 'http://a/b' }, 'url', ['http://a/b']],
  ['_id and meta', { resourceType: 'Patient', id: 'x', meta: { tag: [{ system: 's', code: 'c' }] } }, '_tag', ['c', 's|', 's|c']],
];

t.test('extraction per parameter type', async (t) => {
  for (const [what, resource, code, expected] of CASES) t.same(has(extractEntries(resource as never, { baseUrl: 'http://me/fhir' }), code), expected, what);
  const composite = extractEntries({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: 'a' }] }, valueQuantity: { value: 1 } } as never);
  t.ok(has(composite, 'code-value-quantity').includes(`http://loinc.org|a$#${encodeNumber(1)}`), 'composite combines its components');
  const panel = extractEntries({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: 'panel' }] },
    component: [{ code: { coding: [{ system: 'http://loinc.org', code: 'sys' }] }, valueQuantity: { value: 118 } }, { code: { coding: [{ code: 'dia' }] }, valueQuantity: { value: 76 } }],
  } as never);
  t.same(has(panel, 'combo-code-value-quantity').filter((v) => v.startsWith('http://loinc.org|')), [`http://loinc.org|$#${encodeNumber(118)}`, `http://loinc.org|sys$#${encodeNumber(118)}`], 'combo- pairs each component code with its own value');
  t.ok(has(panel, 'combo-code-value-quantity').includes(`dia$#${encodeNumber(76)}`));
  t.notOk(has(panel, 'combo-code-value-quantity').some((v) => v.startsWith('panel$')), 'the panel has no value of its own');
  t.same(extractEntries({ resourceType: 'Observation', status: 'final', code: {}, effectiveDateTime: 'not a date' } as never).filter((e) => e.code === 'date'), [], 'invalid dates are skipped, not thrown');
});

t.test('sealEntries: identifying values become keyed hashes; strings by prefixes of the ladder lengths; order-preserving values stay', async (t) => {
  const hash = (s: string) => `H(${s})`;
  const plain = extractEntries({
    resourceType: 'Patient', id: 'p', name: [{ family: 'Ann' }, { given: ['Bartholomew'] }], identifier: [{ system: 's', value: 'MRN' }], birthDate: '2000',
    generalPractitioner: [{ reference: 'Practitioner/1' }], maritalStatus: { text: 'Married' },
  } as never);
  const sealed = sealEntries('Patient', plain, hash);
  t.same(has(sealed, 'family'), ['H(a)', 'H(an)', 'H(ann)'], 'every prefix up to 4 characters of the folded string');
  t.same(has(sealed, 'given'), ['H(b)', 'H(ba)', 'H(bar)', 'H(bart)', 'H(bartho)', 'H(bartholo)'], 'then prefixes of 6 and 8 characters');
  t.same(has(sealed, 'family:exact'), ['H(Ann)']);
  t.same(has(sealed, 'identifier'), ['H(MRN)', 'H(s|)', 'H(s|MRN)']);
  t.same(has(sealed, 'general-practitioner'), ['1', 'Practitioner/1'], 'references stay clear');
  t.same(has(sealed, 'birthdate'), has(plain, 'birthdate'), 'dates stay order-preserving');
  t.same(has(sealed, '_id'), ['p', '|p'], '_id stays clear');
  t.same(has(sealed, 'marital-status:text'), [], 'display texts are not indexed');
  t.notOk(sealed.some((e) => /Ann|MRN/.test(e.value.replace(/H\([^)]*\)/g, ''))), 'no plaintext outside the hashes');
});

t.test('long values: extracted whole; keys bounded, hashed values hashed whole', async (t) => {
  const hash = (s: string) => `h${createHash('sha256').update(s).digest('base64url').slice(0, 22)}`;
  const family = `F${'x'.repeat(299)}`;
  const url = `http://a/${'u'.repeat(300)}`;
  const system = `http://units/${'s'.repeat(250)}`;
  const plain = extractEntries({ resourceType: 'Patient', id: 'p', name: [{ family }], identifier: [{ system: 's', value: url }] } as never);
  t.same(has(plain, 'family:exact'), [family], 'the plaintext entry is the whole value (the decrypted-value checks compare it)');
  const sealed = sealEntries('Patient', plain, hash);
  t.same(has(sealed, 'family:exact'), [hash(family)], ':exact is the hash of the whole value');
  t.ok(has(sealed, 'identifier').includes(hash(`s|${url}`)), 'token forms are hashed whole');
  const vs = sealEntries('ValueSet', extractEntries({ resourceType: 'ValueSet', status: 'active', url } as never), hash);
  t.same(has(vs, 'url'), [url.slice(0, MAX_VALUE) + hash(url)], 'a long clear value: its first MAX_VALUE characters and the hash of the whole');
  t.same(boundedValue('http://short', hash), 'http://short', 'a short one stays as it is');
  t.ok(boundedValue(url, hash).length > MAX_VALUE, 'a bounded key is longer than any short value, so never equal to one');
  const obs = sealEntries('Observation', extractEntries({ resourceType: 'Observation', status: 'final', code: {}, valueQuantity: { value: 5, system, code: 'mg' } } as never), hash);
  const n = encodeNumber(5);
  t.same(has(obs, 'value-quantity'), [`#${n}`, `${hash(`${system}|mg`)}#${n}`, `|mg#${n}`].sort(), 'a long quantity unit is hashed, its number stays clear');
  t.equal(sealedUnit(`${system}|mg`, hash), hash(`${system}|mg`));
  t.equal(sealedUnit('http://unitsofmeasure.org|mg', hash), 'http://unitsofmeasure.org|mg');
  for (const e of [...sealed, ...vs, ...obs]) t.ok(e.value.length <= MAX_VALUE + 23, `${e.code}: ${e.value.length} characters`);
});

t.test('escapes in stored forms: token parts escape \\ and |, composite components \\ and $', async (t) => {
  const plain = extractEntries({ resourceType: 'Patient', id: 'p', identifier: [{ system: 'http://qa/esc', value: 'x|y' }, { system: 's', value: 'p$q' }] } as never);
  t.same(has(plain, 'identifier'), ['http://qa/esc|', 'http://qa/esc|x\\|y', 'p$q', 's|', 's|p$q', 'x\\|y'], 'a code holding | is never read as system|code');
  const obs = extractEntries({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://qa/codes', code: 'a$b|c' }] }, valueString: 'v$w' } as never);
  t.ok(has(obs, 'code-value-string').includes('http://qa/codes|a\\$b\\\\|c$v\\$w'), 'each component escaped, then joined by $');
  const hash = (s: string) => `H(${s})`;
  t.ok(has(sealEntries('Observation', obs, hash), 'code-value-string').includes('H(http://qa/codes|a\\$b\\\\|c)$H(v\\$w)'), 'sealing hashes each component as its own parameter would');
});
