// null in FHIR JSON (http://hl7.org/fhir/R4/json.html#primitive): only in an array of primitives, holding the place
// of a value that has only an id or extensions in the `_name` array beside it, the two arrays lined up position by
// position. Anywhere else, and in a complex type's array, a null is an error naming the element.
import t from 'tap';
import { createValidator } from '../../src/fhir/validate.ts';

const validator = createValidator();
const errors = (resource: Record<string, unknown>) =>
  validator.validate(resource).filter((i) => i.severity === 'error').map((i) => ({ code: i.code, expression: i.expression?.[0], diagnostics: i.diagnostics }));

const patient = (body: Record<string, unknown>) => ({ resourceType: 'Patient', ...body });
const observation = (body: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...body });
const extension = { extension: [{ url: 'http://example.org/x', valueString: 'y' }] };

/** [what, resource, the expression of its one error, what the diagnostics say] */
const rejected: [string, Record<string, unknown>, string, RegExp][] = [
  // Arrays of complex values never hold null.
  ['name: [null]', patient({ name: [null] }), 'Patient.name[0]', /^Patient\.name\[0\] is null: leave it out instead \(a null is only allowed in an array of primitives/],
  ['identifier: [null, {…}]', patient({ identifier: [null, { value: 'x' }] }), 'Patient.identifier[0]', /is null: leave it out/],
  ['extension: [null]', patient({ extension: [null] }), 'Patient.extension[0]', /is null: leave it out/],
  ['meta.tag: [null]', patient({ meta: { tag: [null] } }), 'Patient.meta.tag[0]', /is null: leave it out/],
  ['code.coding: [null]', observation({ code: { coding: [null] } }), 'Observation.code.coding[0]', /is null: leave it out/],
  ['component: [null]', observation({ component: [null] }), 'Observation.component[0]', /is null: leave it out/],
  ['contact: [null] (a backbone element)', patient({ contact: [null] }), 'Patient.contact[0]', /is null: leave it out/],
  ['contained: [null]', patient({ contained: [null] }), 'Patient.contained[0]', /is null: leave it out/],
  ['a null deep in an extension', patient({ extension: [{ url: 'http://example.org/a', extension: [null] }] }), 'Patient.extension[0].extension[0]', /is null/],
  // A null member is no element at all: leave it out.
  ['_active: null', patient({ _active: null }), 'Patient.active', /^Patient\.active is null: leave the element out instead$/],
  ['gender: null', patient({ gender: null }), 'Patient.gender', /^Patient\.gender is null: leave the element out instead$/],
  ['active: null', patient({ active: null }), 'Patient.active', /is null: leave the element out/],
  ['meta: null', patient({ meta: null }), 'Patient.meta', /is null: leave the element out/],
  ['text: null', patient({ text: null }), 'Patient.text', /is null: leave the element out/],
  ['name: null', patient({ name: null }), 'Patient.name', /is null: leave the element out/],
  ['given: null', patient({ name: [{ given: null }] }), 'Patient.name[0].given', /is null: leave the element out/],
  ['_given: null', patient({ name: [{ given: ['a'], _given: null }] }), 'Patient.name[0].given', /is null: leave the element out/],
  ['an id that is null', patient({ name: [{ given: ['a'], _given: [{ id: null }] }] }), 'Patient.name[0].given[0].id', /is null: leave the element out/],
  // Arrays of primitives: a null only where the other array has something, both arrays the same length.
  [
    'given: ["a"], _given: [null, {…}] (misaligned)',
    patient({ name: [{ given: ['a'], _given: [null, { id: 'x' }] }] }),
    'Patient.name[0].given',
    /^Patient\.name\[0\]\.given: given has 1 item\(s\) but _given has 2: the two arrays line up position by position, so they must be the same length$/,
  ],
  ['given: [null] with no _given', patient({ name: [{ given: [null] }] }), 'Patient.name[0].given[0]', /^Patient\.name\[0\]\.given\[0\] is null but _given\[0\] has no id or extensions for it/],
  ['given: ["a", null] with no _given', patient({ name: [{ given: ['a', null] }] }), 'Patient.name[0].given[1]', /given\[1\] is null but _given\[1\] has no id or extensions/],
  ['null in both arrays', patient({ name: [{ given: [null], _given: [null] }] }), 'Patient.name[0].given[0]', /is null in both given and _given/],
  ['_given: [null] with no given', patient({ name: [{ _given: [null] }] }), 'Patient.name[0].given[0]', /_given\[0\] is null but given\[0\] has no value/],
  ['_given shorter', patient({ name: [{ given: ['a', 'b', 'c'], _given: [null, { id: 'x' }] }] }), 'Patient.name[0].given', /given has 3 item\(s\) but _given has 2/],
  ['a null line with {} beside it', patient({ name: [{ given: ['a', null], _given: [null, {}] }] }), 'Patient.name[0].given[1]', /is empty/],
  ['a code array', { resourceType: 'Questionnaire', status: 'draft', subjectType: ['Patient', null] }, 'Questionnaire.subjectType[1]', /is null but _subjectType\[1\] has no id/],
  // Not an object where an object belongs (the published schema let these through too).
  ['name: ["x"]', patient({ name: ['x'] }), 'Patient.name[0]', /expected an object, got the string "x"/],
  ['name: [[…]]', patient({ name: [[{ family: 'x' }]] }), 'Patient.name[0]', /expected an object, got an array/],
  ['meta: 5', patient({ meta: 5 }), 'Patient.meta', /expected an object, got the number 5/],
  ['_active: "x"', patient({ _active: 'x' }), 'Patient.active', /expected an object, got the string/],
  ['_active: [{…}]', patient({ _active: [{ id: 'a' }] }), 'Patient.active', /expected an object, got an array/],
];

t.test('rejected, with the element named', async (t) => {
  for (const [what, resource, expression, diagnostics] of rejected) {
    const found = errors(resource);
    t.same(found.map((i) => [i.code, i.expression]), [['structure', expression]], `${what}: one error at ${expression}`);
    t.match(found[0]?.diagnostics, diagnostics, `${what}: says why`);
  }
});

t.test('accepted: nulls that hold the place of a value that has only extensions', async (t) => {
  const accepted: [string, Record<string, unknown>][] = [
    ['the spec’s own form (HAPI writes it)', patient({ name: [{ given: ['a', null], _given: [null, extension] }] })],
    ['a value with extensions, then one without', patient({ name: [{ given: ['a', 'b'], _given: [{ id: 'x' }, null] }] })],
    ['every value extension-only', patient({ name: [{ given: [null, null], _given: [extension, { id: 'y' }] }] })],
    ['extensions and no values at all', patient({ name: [{ _given: [{ id: 'a' }, extension] }] })],
    ['values and no extensions', patient({ name: [{ given: ['a', 'b'] }] })],
    ['a code array', { resourceType: 'Questionnaire', status: 'draft', subjectType: ['Patient', null], _subjectType: [null, extension] }],
    ['a canonical array', patient({ meta: { profile: [null, 'http://example.org/p'], _profile: [extension, null] } })],
    ['a single primitive with only extensions', patient({ _active: extension })],
  ];
  for (const [what, resource] of accepted) t.same(errors(resource), [], what);
});
