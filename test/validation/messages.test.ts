// Each kind of validation failure: the issue's severity, code, FHIRPath expression and plain-words message.
import t from 'tap';
import { createValidator, type ValidateOptions } from '../../src/fhir/validate.ts';
import { pointerToFhirPath } from '../../src/fhir/validation/schema-errors.ts';

const validator = createValidator();

type Resource = Record<string, unknown>;
const obs = (extra: Resource): Resource => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...extra });
const uuid = 'urn:uuid:9a6b7e8c-0b5f-4d3e-8f1a-2c3d4e5f6a7b';

interface Case {
  name: string;
  resource: unknown;
  options?: ValidateOptions;
  /** The one issue expected: [severity, code, expression, message pattern]. */
  issue: [string, string, string | undefined, RegExp];
}

const cases: Case[] = [
  // The schema (ajv), translated
  { name: 'unknown element', resource: { resourceType: 'Patient', foo: 1 }, issue: ['error', 'structure', 'Patient.foo', /^Unknown element 'foo' in Patient$/] },
  { name: 'unknown nested element', resource: { resourceType: 'Patient', name: [{ family: 'x' }, { family: 'y', foo: 2 }] }, issue: ['error', 'structure', 'Patient.name[1].foo', /^Unknown element 'foo' in Patient.name\[1\]$/] },
  { name: 'wrong JSON type', resource: { resourceType: 'Patient', active: 'yes' }, issue: ['error', 'structure', 'Patient.active', /^Patient.active: expected true or false, got the string "yes"$/] },
  { name: 'single where an array is needed', resource: { resourceType: 'Patient', name: { family: 'x' } }, issue: ['error', 'structure', 'Patient.name', /expected an array \(this element repeats\), got an object/] },
  { name: 'array where a single value is needed', resource: { resourceType: 'Patient', gender: ['male'] }, issue: ['error', 'structure', 'Patient.gender', /expected a code \(male, female, other, unknown\), got an array/] },
  { name: 'code not in a required binding', resource: { resourceType: 'Patient', gender: 'mal' }, issue: ['error', 'code-invalid', 'Patient.gender', /'mal' is not one of the allowed codes \(male, female, other, unknown\)/] },
  { name: 'null value', resource: { resourceType: 'Patient', gender: null }, issue: ['error', 'structure', 'Patient.gender', /is null: leave the element out/] },
  { name: 'decimal as a string', resource: obs({ valueQuantity: { value: '1.0' } }), issue: ['error', 'structure', 'Observation.valueQuantity.value', /expected a number, got the string "1.0"/] },
  { name: 'invalid id', resource: { resourceType: 'Patient', id: 'a b' }, issue: ['error', 'value', 'Patient.id', /'a b' is not a valid id/] },
  { name: 'id too long', resource: { resourceType: 'Patient', id: 'a'.repeat(65) }, issue: ['error', 'value', 'Patient.id', /is not a valid id/] },
  { name: 'empty string', resource: { resourceType: 'Patient', name: [{ family: '' }] }, issue: ['error', 'value', 'Patient.name[0].family', /'' is not a valid string/] },
  { name: 'base64Binary with a bad character', resource: { resourceType: 'Binary', contentType: 'text/plain', data: 'SGVsbG8=!' }, issue: ['error', 'value', 'Binary.data', /^Binary.data: 'SGVsbG8=!' is not a valid base64Binary \('!' at position 8 is not a base64 character\)$/] },
  { name: 'base64Binary in a choice element, crafted to make a backtracking pattern run for hours', resource: { resourceType: 'Patient', extension: [{ url: 'http://example.org/x', valueBase64Binary: `${'AAAA '.repeat(40)}!` }] }, issue: ['error', 'value', 'Patient.extension[0].valueBase64Binary', /is not a valid base64Binary \('!' at position 200/] },
  { name: 'base64Binary of a length that is not a multiple of four', resource: { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain', data: 'SGVsbG8' } }] }, issue: ['error', 'value', 'DocumentReference.content[0].attachment.data', /not a multiple of four/] },
  { name: 'integer that is not whole', resource: obs({ valueInteger: 1.5 }), issue: ['error', 'value', 'Observation.valueInteger', /^Observation.valueInteger: 1.5 is not a valid integer \(expected a whole number from -2147483648 to 2147483647\)$/] },
  { name: 'integer beyond 32 bits', resource: obs({ valueInteger: 2147483648 }), issue: ['error', 'value', 'Observation.valueInteger', /2147483648 is not a valid integer/] },
  { name: 'positiveInt 0', resource: { resourceType: 'ImmunizationRecommendation', patient: { reference: 'Patient/1' }, date: '2020-01-01', recommendation: [{ targetDisease: { text: 'x' }, forecastStatus: { text: 'x' }, doseNumberPositiveInt: 0 }] }, issue: ['error', 'value', 'ImmunizationRecommendation.recommendation[0].doseNumberPositiveInt', /0 is not a valid positiveInt \(expected a whole number from 1 to 2147483647\)/] },
  { name: 'unsignedInt below 0', resource: { resourceType: 'Bundle', type: 'searchset', total: -1 }, issue: ['error', 'value', 'Bundle.total', /-1 is not a valid unsignedInt \(expected a whole number from 0 to 2147483647\)/] },
  { name: 'decimal JSON.parse read as infinity (1e400)', resource: obs({ valueQuantity: { value: JSON.parse('1e400') } }), issue: ['error', 'value', 'Observation.valueQuantity.value', /Infinity is not a valid decimal \(it is too large: JSON.parse reads it as infinity\)/] },
  { name: 'a lone surrogate', resource: JSON.parse('{"resourceType":"Patient","name":[{"text":"a\\ud800b"}]}'), issue: ['error', 'value', 'Patient.name[0].text', /^Patient.name\[0\].text: 'a\uFFFDb' is not a valid string \(it holds a lone UTF-16 surrogate/] },
  { name: 'a string over 1 MB', resource: { resourceType: 'Patient', name: [{ text: 'é'.repeat(600_000) }] }, issue: ['error', 'value', 'Patient.name[0].text', /is longer than 1048576 bytes, the R4 limit for strings/] },
  { name: 'uri with spaces', resource: { resourceType: 'Patient', identifier: [{ system: 'a b', value: '1' }] }, issue: ['error', 'value', 'Patient.identifier[0].system', /^Patient.identifier\[0\].system: 'a b' is not a valid uri/] },
  { name: 'unknown contained resource type', resource: obs({ contained: [{ resourceType: 'Project', id: 'p' }], focus: [{ reference: '#p' }] }), issue: ['error', 'structure', 'Observation.contained[0].resourceType', /'Project' is not a FHIR R4 resource type/] },
  { name: 'Bundle entry error, path through the entry', resource: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', birthDate: 5 } }] }, issue: ['error', 'structure', 'Bundle.entry[0].resource.birthDate', /expected a string, got the number 5/] },

  // Required elements (min >= 1) the schema does not enforce
  { name: 'required primitive', resource: { resourceType: 'Observation', code: { text: 'x' } }, issue: ['error', 'required', 'Observation.status', /^Observation.status is required$/] },
  { name: 'required complex', resource: { resourceType: 'Observation', status: 'final' }, issue: ['error', 'required', 'Observation.code', /^Observation.code is required$/] },
  { name: 'required in a backbone element', resource: obs({ component: [{ code: { text: 'a' } }, { valueString: 'v' }] }), issue: ['error', 'required', 'Observation.component[1].code', /^Observation.component\[1\].code is required$/] },
  { name: 'required choice', resource: { resourceType: 'Questionnaire', status: 'draft', useContext: [{ code: { code: 'focus' } }] }, issue: ['error', 'required', 'Questionnaire.useContext[0].value[x]', /^Questionnaire.useContext\[0\].value\[x\] is required$/] },
  { name: 'a data type is not a resource', resource: { resourceType: 'Extension' }, issue: ['fatal', 'not-supported', 'resourceType', /'Extension' is not a FHIR R4 resource type/] },
  { name: 'required choice in a type', resource: { resourceType: 'Patient', extension: [{ url: 'http://example.org/x' }] }, issue: ['error', 'invariant', 'Patient.extension[0]', /neither a value\[x\] nor nested extensions.*\(ext-1\)/] },
  { name: 'required element of a data type', resource: { resourceType: 'Patient', extension: [{ valueString: 'x' }] }, issue: ['error', 'required', 'Patient.extension[0].url', /^Patient.extension\[0\].url is required$/] },
  { name: 'required inside a recursive backbone (contentReference)', resource: { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'group', item: [{ type: 'string' }] }] }, issue: ['error', 'required', 'Questionnaire.item[0].item[0].linkId', /linkId is required/] },
  { name: 'required inside a contained resource', resource: obs({ contained: [{ resourceType: 'Observation', id: 'o', code: { text: 'y' } }], hasMember: [{ reference: '#o' }] }), issue: ['error', 'required', 'Observation.contained[0].status', /^Observation.contained\[0\].status is required$/] },
  { name: 'required primitive given only by its extension is present', resource: { resourceType: 'Observation', _status: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] }, code: { text: 'x' }, subject: { reference: 'Patient/1' }, valueString: 'x', dataAbsentReason: { text: 'y' } }, issue: ['error', 'invariant', 'Observation', /\(obs-6: /] },

  // Dates
  { name: 'impossible date', resource: { resourceType: 'Patient', birthDate: '2023-02-30' }, issue: ['error', 'value', 'Patient.birthDate', /^Patient.birthDate: '2023-02-30' is not a valid date \(day 30 does not exist in 2023-02/] },
  { name: 'month 13', resource: { resourceType: 'Patient', birthDate: '2023-13-01' }, issue: ['error', 'value', 'Patient.birthDate', /^Patient.birthDate: '2023-13-01' is not a valid date/] },
  { name: 'bad time zone', resource: obs({ effectiveDateTime: '2020-01-01T10:00:00+15:00' }), issue: ['error', 'value', 'Observation.effectiveDateTime', /is not a valid dateTime \(.*time zone/] },
  { name: 'instant without zone', resource: obs({ issued: '2020-01-01T10:00:00' }), issue: ['error', 'value', 'Observation.issued', /is not a valid instant/] },
  { name: 'date deep in a data type', resource: { resourceType: 'Patient', name: [{ family: 'x', period: { start: '2021-02-29' } }] }, issue: ['error', 'value', 'Patient.name[0].period.start', /day 29 does not exist in 2021-02/] },
  { name: 'date inside an extension of a primitive', resource: { resourceType: 'Patient', _birthDate: { extension: [{ url: 'http://example.org/x', valueDate: '2021-04-31' }] } }, issue: ['error', 'value', 'Patient.birthDate.extension[0].valueDate', /day 31 does not exist in 2021-04/] },

  // References
  { name: 'malformed reference', resource: obs({ subject: { reference: 'Patient/a b' } }), issue: ['error', 'value', 'Observation.subject.reference', /'Patient\/a b' is not a valid reference \('a b' is not a valid resource id\)/] },
  { name: 'reference to an unknown type', resource: obs({ subject: { reference: 'Foo/1' } }), issue: ['error', 'value', 'Observation.subject.reference', /'Foo' is not a resource type/] },
  { name: 'reference to a type the element does not allow', resource: obs({ subject: { reference: 'Medication/1' } }), issue: ['error', 'value', 'Observation.subject.reference', /a reference to a Medication is not allowed here \(allowed: Patient, Group, Device, Location\)/] },
  { name: 'Reference.type disagrees', resource: obs({ subject: { reference: 'Patient/1', type: 'Group' } }), issue: ['error', 'value', 'Observation.subject.type', /is 'Group' but the reference points to a Patient/] },
  { name: 'conditional reference outside a transaction', resource: obs({ subject: { reference: 'Patient?identifier=http://x|1' } }), issue: ['error', 'value', 'Observation.subject.reference', /conditional references are only allowed in a transaction/] },
  { name: 'urn:uuid outside a Bundle', resource: obs({ subject: { reference: uuid } }), issue: ['error', 'value', 'Observation.subject.reference', /only be resolved inside a Bundle/] },
  { name: 'local reference without a contained resource (ref-1)', resource: obs({ subject: { reference: '#p1' } }), issue: ['error', 'invariant', 'Observation.subject.reference', /'#p1' does not match the id of any contained resource \(ref-1\)/] },
  { name: 'contained resource nobody refers to (dom-3)', resource: obs({ contained: [{ resourceType: 'Patient', id: 'p1' }] }), issue: ['error', 'invariant', 'Observation.contained[0]', /\('#p1'\) is not referred to from anywhere in the resource \(dom-3\)/] },

  // ele-1, ext-1, choices
  { name: 'empty object (ele-1)', resource: { resourceType: 'Patient', name: [{}] }, issue: ['error', 'structure', 'Patient.name[0]', /is empty: an element needs a value or child elements/] },
  { name: 'empty array', resource: { resourceType: 'Patient', name: [] }, issue: ['error', 'structure', 'Patient.name', /is an empty array/] },
  { name: 'extension with value and extensions (ext-1)', resource: { resourceType: 'Patient', extension: [{ url: 'http://x', valueString: 'a', extension: [{ url: 'y', valueString: 'b' }] }] }, issue: ['error', 'invariant', 'Patient.extension[0]', /both a value\[x\] and nested extensions/] },
  { name: 'choice with two types', resource: obs({ valueString: 'a', valueBoolean: true }), issue: ['error', 'structure', 'Observation.value[x]', /has more than one type \(valueString, valueBoolean\)/] },

  // FHIRPath invariants of the base definitions
  { name: 'obs-6', resource: obs({ valueString: 'a', dataAbsentReason: { text: 'x' } }), issue: ['error', 'invariant', 'Observation', /dataAbsentReason SHALL only be present if Observation.value\[x\] is not present \(obs-6/] },
  { name: 'per-1 in a data type', resource: { resourceType: 'Patient', name: [{ family: 'x', period: { start: '2020-01-01', end: '2019-01-01' } }] }, issue: ['error', 'invariant', 'Patient.name[0].period', /start SHALL have a lower value than end \(per-1/] },
  { name: 'obs-3 in a backbone element', resource: obs({ referenceRange: [{ appliesTo: [{ text: 'x' }] }] }), issue: ['error', 'invariant', 'Observation.referenceRange[0]', /\(obs-3: /] },
  { name: 'dom-4 on a contained resource', resource: obs({ contained: [{ resourceType: 'Patient', id: 'p', meta: { versionId: '1' } }], subject: { reference: '#p' } }), issue: ['error', 'invariant', 'Observation', /SHALL NOT have a meta.versionId or a meta.lastUpdated \(dom-4/] },
  { name: 'eld-3 on a primitive', resource: { resourceType: 'StructureDefinition', url: 'http://example.org/sd', name: 'X', status: 'draft', kind: 'resource', abstract: false, type: 'Patient', baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient', derivation: 'constraint', differential: { element: [{ id: 'Patient', path: 'Patient', max: '-1' }] } }, issue: ['error', 'invariant', 'StructureDefinition.differential.element[0].max', /Max SHALL be a number or "\*" \(eld-3: /] },
  { name: 'pat-1 (only when contact is present)', resource: { resourceType: 'Patient', contact: [{ gender: 'male' }] }, issue: ['error', 'invariant', 'Patient.contact[0]', /SHALL at least contain a contact's details or a reference to an organization \(pat-1: /] },

  // Not a resource at all (fatal: assertValid answers 400)
  { name: 'not an object', resource: [1], issue: ['fatal', 'structure', undefined, /expected a JSON object/] },
  { name: 'no resourceType', resource: { id: 'x' }, issue: ['fatal', 'structure', undefined, /it has no resourceType/] },
  { name: 'Medplum-only type', resource: { resourceType: 'Project' }, issue: ['fatal', 'not-supported', 'resourceType', /'Project' is not a FHIR R4 resource type/] },
  { name: 'type differs from the URL', resource: { resourceType: 'Patient' }, options: { expectedType: 'Observation' }, issue: ['fatal', 'invalid', 'Patient', /is a Patient but the URL is for Observation/] },
  { name: 'id differs from the URL', resource: { resourceType: 'Patient', id: 'a' }, options: { expectedType: 'Patient', expectedId: 'b' }, issue: ['fatal', 'invalid', 'Patient.id', /'a' does not match the id in the URL 'b'/] },
  { name: 'update without an id', resource: { resourceType: 'Patient' }, options: { expectedId: 'b' }, issue: ['fatal', 'required', 'Patient.id', /is required in an update/] },
  { name: 'nested too deep', resource: { resourceType: 'Patient', extension: [{ url: 'http://x', extension: [{ url: 'http://y', valueString: 'a' }] }] }, options: { maxDepth: 4 }, issue: ['fatal', 'too-long', undefined, /deeper than 4 levels/] },
];

t.test('each kind of failure: one issue, its expression and its message', async (t) => {
  for (const c of cases) {
    const issues = validator.validate(c.resource, c.options);
    const [severity, code, expression, message] = c.issue;
    t.equal(issues.length, 1, `${c.name}: exactly one issue (${issues.map((i) => i.diagnostics).join(' | ')})`);
    const issue = issues[0];
    if (!issue) continue;
    t.equal(issue.severity, severity, `${c.name}: severity`);
    t.equal(issue.code, code, `${c.name}: code`);
    t.same(issue.expression, expression === undefined ? undefined : [expression], `${c.name}: expression`);
    t.match(issue.diagnostics, message, `${c.name}: message`);
  }
});

t.test('several problems are all reported, in one list', async (t) => {
  const issues = validator.validate({ resourceType: 'Observation', foo: 1, issued: '2020-02-30T00:00:00Z', subject: { reference: 'x' } });
  t.same(issues.map((i) => i.expression?.[0]).sort(), ['Observation.code', 'Observation.foo', 'Observation.issued', 'Observation.status', 'Observation.subject.reference']);
});

t.test('what is accepted', async (t) => {
  const accepted: [string, unknown, ValidateOptions?][] = [
    ['minimal Patient', { resourceType: 'Patient' }],
    ['conditional reference in a transaction', obs({ subject: { reference: 'Patient?identifier=http://x|1' } }), { allowConditionalReferences: true }],
    ['urn:uuid reference between Bundle entries', { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: uuid, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }, { resource: obs({ subject: { reference: uuid } }), request: { method: 'POST', url: 'Observation' } }] }],
    ['urn:uuid reference when the caller allows it', obs({ subject: { reference: uuid } }), { allowUrnReferences: true }],
    ['contained resource referred to', obs({ contained: [{ resourceType: 'Patient', id: 'p1' }], subject: { reference: '#p1' } })],
    ['contained resource referring to its container', obs({ contained: [{ resourceType: 'Provenance', id: 'prov', target: [{ reference: '#' }], recorded: '2020-01-01T00:00:00Z', agent: [{ who: { display: 'x' } }] }] })],
    ['absolute reference', obs({ subject: { reference: 'https://other.example/fhir/Patient/1' } })],
    ['logical reference (identifier only)', obs({ subject: { identifier: { system: 'http://x', value: '1' } } })],
    ['leap day', { resourceType: 'Patient', birthDate: '2024-02-29' }],
    ['partial dates', { resourceType: 'Patient', birthDate: '1970-01', deceasedDateTime: '2020' }],
    ['id and expected id agree', { resourceType: 'Patient', id: 'p-1.a' }, { expectedType: 'Patient', expectedId: 'p-1.a' }],
    // The schema's patterns are XML Schema's: \s is space, tab, CR and LF only, so other Unicode spaces are text.
    ['a no-break space in a string (as in the official v2-0220 code system)', { resourceType: 'Patient', name: [{ family: '\u00a0Seul' }] }],
    ['an ideographic space in a name', { resourceType: 'Patient', name: [{ text: '山田\u3000太郎', family: '山田', given: ['太郎'] }] }],
    ['a string of spaces only', { resourceType: 'Patient', name: [{ text: '  ' }] }],
    ['a no-break space in a code', { resourceType: 'Patient', maritalStatus: { coding: [{ system: 'http://example.org/cs', code: 'M\u00a0S' }] } }],
    ['an id on a repeating canonical (ActivityDefinition._library)', { resourceType: 'ActivityDefinition', status: 'draft', library: ['http://example.org/Library/a', 'http://example.org/Library/b'], _library: [null, { id: 'b' }] }],
    ['a string of 1 MB exactly', { resourceType: 'Patient', name: [{ text: 'x'.repeat(1024 * 1024) }] }],
    ['base64Binary beyond 1 MB (no string limit)', { resourceType: 'Binary', contentType: 'text/plain', data: 'AAAA'.repeat(300_000) }],
    ['surrogate pairs (emoji)', { resourceType: 'Patient', name: [{ text: 'Ada \u{1F600}' }] }],
    ['the extreme integers', obs({ component: [{ code: { text: 'a' }, valueInteger: -2147483648 }, { code: { text: 'b' }, valueInteger: 2147483647 }] })],
    ['base64Binary with MIME line breaks', { resourceType: 'Binary', contentType: 'text/plain', data: 'SGVs\r\nbG8g\r\nd29y\r\nbGQ=' }],
    ['primitive array aligned with its extensions by null', { resourceType: 'Patient', name: [{ given: ['A', 'B'], _given: [null, { extension: [{ url: 'http://x', valueString: 'y' }] }] }] }],
  ];
  for (const [name, resource, options] of accepted) t.same(validator.validate(resource, options), [], name);
});

t.test('extensions on canonical elements, which the published schema leaves out', async (t) => {
  // No error; at most a warning for a profile the server does not hold.
  const cases: [string, unknown][] = [
    ['extensions on a canonical (meta._profile)', { resourceType: 'Patient', meta: { profile: ['http://hl7.org/fhir/StructureDefinition/Patient'], _profile: [{ extension: [{ url: 'http://example.org/x', valueString: 'y' }] }] } }],
    ['extensions on a canonical (StructureDefinition._baseDefinition)', { resourceType: 'StructureDefinition', url: 'http://example.org/sd', name: 'X', status: 'draft', kind: 'resource', abstract: false, type: 'Patient', baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient', _baseDefinition: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/structuredefinition-codegen-super', valueString: 'MetadataResource' }] }, derivation: 'constraint', differential: { element: [{ id: 'Patient', path: 'Patient' }] } }],
  ];
  for (const [name, resource] of cases) {
    const issues = validator.validate(resource);
    t.same(issues.filter((i) => i.severity !== 'warning'), [], name);
    t.ok(issues.every((i) => i.code === 'not-supported'), `${name}: only the unknown profile is mentioned`);
  }
});

t.test('JSON pointers become FHIRPath', async (t) => {
  const table: [string, string][] = [
    ['', 'Patient'],
    ['/birthDate', 'Patient.birthDate'],
    ['/name/0/given/1', 'Patient.name[0].given[1]'],
    ['/_birthDate/extension/0', 'Patient.birthDate.extension[0]'],
    ['/contained/2/code', 'Patient.contained[2].code'],
    ['/a~1b', 'Patient.a/b'],
  ];
  for (const [pointer, path] of table) t.equal(pointerToFhirPath('Patient', pointer), path, pointer || '(root)');
});
