// Pure checks of single values: calendar dates, base64Binary and reference syntax (src/fhir/validation/primitives.ts).
import t from 'tap';
import { base64Error, dateError, numberError, parseReference, stringError, type ReferenceRules } from '../../src/fhir/validation/primitives.ts';
import type { DateKind } from '../../src/fhir/validation/model.ts';

const dates: [DateKind, string, RegExp | undefined][] = [
  ['date', '2023', undefined],
  ['date', '2023-02', undefined],
  ['date', '2023-02-28', undefined],
  ['date', '2024-02-29', undefined], // leap year
  ['date', '2000-02-29', undefined], // divisible by 400
  ['date', '1900-02-29', /day 29 does not exist in 1900-02/], // divisible by 100, not 400
  ['date', '2023-02-29', /day 29 does not exist in 2023-02 \(it has 28 days\)/],
  ['date', '2023-02-30', /day 30 does not exist/],
  ['date', '2023-04-31', /day 31 does not exist in 2023-04 \(it has 30 days\)/],
  ['date', '2023-13-01', /real month and day/],
  ['date', '2023-00', /real month and day/],
  ['date', '2023-1-5', /real month and day/],
  ['date', '2023-01-01T10:00:00Z', /time needs/], // a date has no time
  ['date', '0000', /real month and day/],
  ['dateTime', '2023-01-31T23:59:59Z', undefined],
  ['dateTime', '2023-01-31T23:59:59.123+14:00', undefined],
  ['dateTime', '2023-01-31T23:59:59-13:59', undefined],
  ['dateTime', '2023-01-31', undefined],
  ['dateTime', '2023-06-31T10:00:00Z', /day 31 does not exist in 2023-06/],
  ['dateTime', '2023-01-01T10:00:00+15:00', /time zone/],
  ['dateTime', '2023-01-01T10:00:00+14:30', /time zone/],
  ['dateTime', '2023-01-01T10:00:00', /time zone/], // a time needs a zone
  ['dateTime', '2023-01-01T24:00:00Z', /time needs/],
  ['dateTime', '2023-01-01T10:00Z', /time needs/], // seconds are required
  ['instant', '2023-01-01T10:00:00Z', undefined],
  ['instant', '2023-01-01', /instant needs/],
  ['instant', '2023-02-29T10:00:00Z', /day 29 does not exist/],
];

t.test('dates: format and calendar', async (t) => {
  for (const [kind, value, expected] of dates) {
    const reason = dateError(kind, value);
    if (expected) t.match(reason, expected, `${kind} ${value} is rejected`);
    else t.equal(reason, undefined, `${kind} ${value} is accepted`);
  }
});

const rules = (over: Partial<ReferenceRules> = {}): ReferenceRules => ({
  resourceTypes: new Set(['Patient', 'Observation', 'Practitioner']),
  allowConditional: false,
  allowUrn: false,
  ...over,
});

const uuid = 'urn:uuid:9a6b7e8c-0b5f-4d3e-8f1a-2c3d4e5f6a7b';

const references: [string, Partial<ReferenceRules>, { kind?: string; type?: string; error?: RegExp }][] = [
  ['Patient/123', {}, { kind: 'relative', type: 'Patient' }],
  ['Patient/a.b-C', {}, { kind: 'relative', type: 'Patient' }],
  ['Patient/123/_history/2', {}, { kind: 'relative', type: 'Patient' }],
  ['Patient/123/_history/', {}, { error: /expected Type\/id/ }],
  ['Patient/123/history/2', {}, { error: /expected Type\/id/ }],
  ['Patient', {}, { error: /expected Type\/id/ }],
  ['Patient/', {}, { error: /expected Type\/id/ }],
  ['/Patient/1', {}, { error: /expected Type\/id/ }],
  ['Patient/a b', {}, { error: /'a b' is not a valid resource id/ }],
  [`Patient/${'x'.repeat(65)}`, {}, { error: /is not a valid resource id/ }],
  ['Patient/1/_history/v 2', {}, { error: /'v 2' is not a valid version id/ }],
  ['Foo/1', {}, { error: /'Foo' is not a resource type/ }],
  ['patient/1', {}, { error: /'patient' is not a resource type/ }],
  ['#', {}, { kind: 'local' }],
  ['#med1', {}, { kind: 'local' }],
  ['#a b', {}, { error: /not a valid contained resource id/ }],
  ['http://example.org/fhir/Patient/1', {}, { kind: 'absolute', type: 'Patient' }],
  ['https://example.org/fhir/Observation/1/_history/3', {}, { kind: 'absolute', type: 'Observation' }],
  ['https://example.org/some/document', {}, { kind: 'absolute' }],
  ['ftp://example.org/Patient/1', {}, { error: /must use http or https/ }],
  ['http://', {}, { error: /not a valid absolute URL/ }],
  [uuid, {}, { error: /only be resolved inside a Bundle/ }],
  [uuid, { allowUrn: true }, { kind: 'urn' }],
  ['urn:oid:1.2.840.113619.2.1', { allowUrn: true }, { kind: 'urn' }],
  ['urn:uuid:9A6B7E8C-0B5F-4D3E-8F1A-2C3D4E5F6A7B', { allowUrn: true }, { error: /lowercase uuid/ }],
  ['urn:oid:3.1', { allowUrn: true }, { error: /urn:oid/ }],
  ['urn:isbn:0451450523', { allowUrn: true }, { error: /urn:uuid/ }],
  ['Patient?identifier=http://x|1', {}, { error: /only allowed in a transaction/ }],
  ['Patient?identifier=http://x|1', { allowConditional: true }, { kind: 'conditional', type: 'Patient' }],
  ['Patient?', { allowConditional: true }, { error: /needs search parameters/ }],
  ['Foo?x=1', { allowConditional: true }, { error: /'Foo' is not a resource type/ }],
];

t.test('references: syntax and where each kind is allowed', async (t) => {
  for (const [ref, over, expected] of references) {
    const parsed = parseReference(ref, rules(over));
    if (expected.error) {
      t.ok('error' in parsed, `${ref} is rejected`);
      if ('error' in parsed) t.match(parsed.error, expected.error, ref);
    } else {
      t.same(parsed, { kind: expected.kind, ...(expected.type ? { type: expected.type } : {}) }, `${ref} is accepted`);
    }
  }
});

// The R4 pattern ^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$ as XML Schema reads it: groups of four, whitespace between them.
const base64: [string, RegExp | undefined][] = [
  ['AAAA', undefined],
  ['SGVsbG8=', undefined],
  ['SGVsbG8gd29ybGQ=', undefined],
  ['  AAAA\r\nAAAA\tAA==\n', undefined], // MIME line breaks between groups
  ['+/==', undefined],
  ['', /it is empty/],
  ['   ', /it is empty/],
  ['AAA', /not a multiple of four/],
  ['AAAAA', /not a multiple of four/],
  ['AA AA', /whitespace at position 2 splits a group/],
  ['AAAA!', /'!' at position 4 is not a base64 character/],
  ['AAAA-_AA', /'-' at position 4/], // base64url is not base64
  ['AAAA\u00a0AAAA', /'\u00a0' at position 4/], // only XML whitespace separates groups
  ['AAAA\u{1F600}', /'\u{1F600}' at position 4/u],
  [`${'AAAA '.repeat(40)}!`, /'!' at position 200/], // a backtracking pattern takes hours on this one
];

t.test('base64Binary: groups of four, whitespace only between groups, in one pass', async (t) => {
  for (const [value, expected] of base64) {
    const reason = base64Error(value);
    if (expected) t.match(reason, expected, `${JSON.stringify(value.slice(0, 24))} is rejected`);
    else t.equal(reason, undefined, `${JSON.stringify(value)} is accepted`);
  }
  const big = Buffer.alloc(3 << 20, 7).toString('base64');
  t.equal(base64Error(big), undefined, '4 MiB of base64');
  t.match(base64Error(`${big}A`), /not a multiple of four/, '4 MiB and one character more');
});

t.test('numbers: 32-bit integer ranges and no infinity', async (t) => {
  const table: [string, number, RegExp | undefined][] = [
    ['integer', 0, undefined],
    ['integer', -2147483648, undefined],
    ['integer', 2147483647, undefined],
    ['integer', 2147483648, /from -2147483648 to 2147483647/],
    ['integer', -2147483649, /from -2147483648/],
    ['integer', 1.5, /a whole number/],
    ['integer', 1e21, /a whole number/],
    ['unsignedInt', 0, undefined],
    ['unsignedInt', -1, /from 0 to 2147483647/],
    ['positiveInt', 1, undefined],
    ['positiveInt', 0, /from 1 to 2147483647/],
    ['decimal', 1.5, undefined],
    ['decimal', -0, undefined],
    ['decimal', 1e308, undefined],
    ['decimal', Infinity, /too large: JSON.parse reads it as infinity/],
    ['decimal', -Infinity, /too large/],
    ['decimal', NaN, /not a number/],
    ['integer', Infinity, /too large/],
  ];
  for (const [type, value, expected] of table) {
    const reason = numberError(type, value);
    if (expected) t.match(reason, expected, `${type} ${value} is rejected`);
    else t.equal(reason, undefined, `${type} ${value} is accepted`);
  }
});

t.test('strings: well-formed Unicode, at most 1 MB where limited', async (t) => {
  t.equal(stringError('Ada \u{1F600}', true), undefined, 'a surrogate pair');
  t.match(stringError('a\ud800', true), /lone UTF-16 surrogate/, 'a high surrogate alone');
  t.match(stringError('\udc00a', false), /lone UTF-16 surrogate/, 'a low surrogate alone, even unlimited');
  t.equal(stringError('x'.repeat(1024 * 1024), true), undefined, '1 MiB of ASCII');
  t.match(stringError('x'.repeat(1024 * 1024 + 1), true), /longer than 1048576 bytes/, 'one byte more');
  t.match(stringError('é'.repeat(524_289), true), /longer than/, 'counted in UTF-8 bytes, not characters');
  t.equal(stringError('x'.repeat(2 * 1024 * 1024), false), undefined, 'no limit where not limited');
});
