/**
 * The pure parts of conditional interactions: parsing conditions, the spec's outcome for 0, 1 or many matches,
 * the lock key and conditional references (http://hl7.org/fhir/R4/http.html#ccreate, #cond-update, #3.1.0.7.1).
 */
import t from 'tap';
import { FhirError } from '../../src/errors.ts';
import { conditionalOutcome, conditionalReference, conditionLockKey, criteriaOf, parseCondition, type ConditionalKind } from '../../src/fhir/conditional.ts';

function failure(fn: () => unknown): FhirError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  return undefined;
}

t.test('conditionalOutcome: the spec table for 0, 1 and many matches', async (t) => {
  const cases: Array<[ConditionalKind, string[], unknown]> = [
    ['create', [], { action: 'create' }],
    ['create', ['a'], { action: 'match', id: 'a' }],
    ['create', ['a', 'b'], 'ERR_CONDITION_MULTIPLE_MATCHES'],
    ['update', [], { action: 'create' }],
    ['update', ['a'], { action: 'match', id: 'a' }],
    ['update', ['a', 'b'], 'ERR_CONDITION_MULTIPLE_MATCHES'],
    ['delete', [], { action: 'none' }],
    ['delete', ['a'], { action: 'match', id: 'a' }],
    ['delete', ['a', 'b'], 'ERR_CONDITION_MULTIPLE_MATCHES'],
    ['patch', [], 'ERR_CONDITION_NO_MATCH'],
    ['patch', ['a'], { action: 'match', id: 'a' }],
    ['patch', ['a', 'b'], 'ERR_CONDITION_MULTIPLE_MATCHES'],
  ];
  for (const [kind, ids, expected] of cases) {
    const label = `${kind} with ${ids.length} match(es)`;
    if (typeof expected === 'string') {
      const error = failure(() => conditionalOutcome(kind, ids, 'x'));
      t.equal(error?.code, expected, label);
      t.equal(error?.status, expected.endsWith('NO_MATCH') ? 404 : 412, `${label}: status`);
    } else {
      t.same(conditionalOutcome(kind, ids, 'x'), expected, label);
    }
  }
});

t.test('parseCondition: If-None-Exist forms, type check, criteria required', async (t) => {
  t.same(parseCondition('identifier=http://hl7.org/fhir/sid/us-npi|9999999989', 'Practitioner', 'h'), { identifier: ['http://hl7.org/fhir/sid/us-npi|9999999989'] });
  t.same(parseCondition('Patient?identifier=a|b&name=x', 'Patient', 'h'), { identifier: ['a|b'], name: ['x'] });
  t.same(parseCondition('http://example.org/fhir/Patient?identifier=a%7Cb', 'Patient', 'h'), { identifier: ['a|b'] });
  t.same(parseCondition('?birthdate=ge2000&birthdate=le2010', 'Patient', 'h'), { birthdate: ['ge2000', 'le2010'] });
  const code = (fn: () => unknown) => failure(fn)?.code;
  t.equal(code(() => parseCondition('Observation?code=x', 'Patient', 'h')), 'ERR_CONDITION_TYPE');
  t.equal(code(() => parseCondition('', 'Patient', 'h')), 'ERR_CONDITION_EMPTY');
  t.equal(code(() => parseCondition('_format=json', 'Patient', 'h')), 'ERR_CONDITION_EMPTY');
  t.equal(code(() => criteriaOf({ _pretty: ['true'] }, 'u')), 'ERR_CONDITION_EMPTY');
  t.same(criteriaOf({ _format: ['json'], identifier: ['x'] }, 'u'), { identifier: ['x'] });
  // a search ignores an empty value; a condition refuses it rather than acting on what the rest matches
  t.equal(code(() => criteriaOf({ identifier: [''] }, 'u')), 'ERR_CONDITION_EMPTY');
  t.equal(code(() => criteriaOf({ identifier: [' '], birthdate: ['2000'] }, 'u')), 'ERR_CONDITION_EMPTY');
  t.equal(code(() => parseCondition('identifier=&birthdate=2000', 'Patient', 'h')), 'ERR_CONDITION_EMPTY');
  // Result parameters choose what a search returns, not what matches: alone they are no criteria.
  for (const only of ['_count=1', '_sort=name', '_summary=count', '_elements=id', '_include=Patient:organization', '_total=accurate', '_count=1&_sort=-_lastUpdated']) {
    t.equal(code(() => parseCondition(only, 'Patient', 'h')), 'ERR_CONDITION_EMPTY', `${only} alone`);
  }
  t.same(parseCondition('identifier=a|b&_count=1&_sort=name', 'Patient', 'h'), { identifier: ['a|b'] }, 'and beside criteria they are dropped');
});

t.test('conditionLockKey: same criteria in any order give one key; keys sort before resource keys', async (t) => {
  const a = conditionLockKey('Patient', { identifier: ['a|1'], name: ['x', 'y'] });
  const b = conditionLockKey('Patient', { name: ['y', 'x'], identifier: ['a|1'] });
  t.equal(a, b);
  t.not(a, conditionLockKey('Patient', { identifier: ['a|2'] }));
  t.not(conditionLockKey('Patient', { identifier: ['a'] }), conditionLockKey('Practitioner', { identifier: ['a'] }));
  // `a=b&c` vs `a=b%26c`: encoding keeps values with separators apart
  t.not(conditionLockKey('Patient', { a: ['b&c=d'] }), conditionLockKey('Patient', { a: ['b'], c: ['d'] }));
  t.ok(a < 'AllergyIntolerance/1', 'condition keys are taken before resource keys');
});

t.test('conditionalReference recognises Type?params only', async (t) => {
  t.same(conditionalReference('Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999989'), { resourceType: 'Practitioner', search: 'identifier=http://hl7.org/fhir/sid/us-npi|9999999989' });
  t.equal(conditionalReference('Patient/123'), undefined);
  t.equal(conditionalReference('urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a'), undefined);
  t.equal(conditionalReference('http://example.org/fhir/Patient?x=1'), undefined);
  t.equal(conditionalReference('Patient?'), undefined);
});
