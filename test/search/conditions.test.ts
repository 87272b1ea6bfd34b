// The pure core of search values: date ranges per precision, number precision, prefixes, and the invariant that
// a condition's scan range [lower, upper) holds every stored value its test accepts (so a scan never misses).
import { createHash } from 'node:crypto';
import t from 'tap';
import {
  conditionFor, dateCondition, numberCondition, quantityCondition, splitEscaped, splitKeepingEscapes, splitPrefix, tokenForm, unescapeValue,
} from '../../src/fhir/search/conditions.ts';
import { dateRange, decodeNumber, encodeInstant, encodeNumber, normalizeString, numberRange, unrepresentable } from '../../src/fhir/search/encode.ts';
import { boundedValue, MAX_VALUE } from '../../src/fhir/search/extract.ts';
import { paramsOf } from '../../src/fhir/search/registry.ts';

const iso = (ms: number) => new Date(ms).toISOString();

t.test('dateRange: the instants a date covers at its precision', async (t) => {
  const cases: Array<[string, string, string] | [string, undefined]> = [
    ['2024', '2024-01-01T00:00:00.000Z', '2024-12-31T23:59:59.999Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['2023-02', '2023-02-01T00:00:00.000Z', '2023-02-28T23:59:59.999Z'],
    ['2024-12', '2024-12-01T00:00:00.000Z', '2024-12-31T23:59:59.999Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z', '2024-02-29T23:59:59.999Z'],
    ['2024-01-01T10:00Z', '2024-01-01T10:00:00.000Z', '2024-01-01T10:00:59.999Z'],
    ['2024-01-01T10:00:00Z', '2024-01-01T10:00:00.000Z', '2024-01-01T10:00:00.999Z'],
    ['2024-01-01T10:00:00.5Z', '2024-01-01T10:00:00.500Z', '2024-01-01T10:00:00.599Z'],
    ['2024-01-01T10:00:00.123Z', '2024-01-01T10:00:00.123Z', '2024-01-01T10:00:00.123Z'],
    ['2024-01-01T10:00:00.123456Z', '2024-01-01T10:00:00.123Z', '2024-01-01T10:00:00.123Z'],
    ['2024-01-01T10:30:00+02:00', '2024-01-01T08:30:00.000Z', '2024-01-01T08:30:00.999Z'],
    ['2024-01-01T00:30:00-05:30', '2024-01-01T06:00:00.000Z', '2024-01-01T06:00:00.999Z'],
    ['2024-01-01T10:00:00', '2024-01-01T10:00:00.000Z', '2024-01-01T10:00:00.999Z'],
    // Years below 100 exactly (Date.UTC would read them as 19xx, as the AuditEvent view once did), and no rollover.
    ['0099', '0099-01-01T00:00:00.000Z', '0099-12-31T23:59:59.999Z'],
    ['0096-02-29', '0096-02-29T00:00:00.000Z', '0096-02-29T23:59:59.999Z'],
    ['0099-02-29', undefined],
    ['0000', undefined],
    ['2026-11-00', undefined],
    ['2026-00-22', undefined],
    ['2026-10-53', undefined],
    ['2023-02-29', undefined],
    ['2024-13', undefined],
    ['2024-00', undefined],
    ['2024-01-32', undefined],
    ['2024-01-01T24:00:00Z', undefined],
    ['2024-01-01T10', undefined],
    ['2024-01-01T10:60Z', undefined],
    ['2024-01-01T10:00:00+15:00', undefined],
    ['24', undefined],
    ['20240101', undefined],
    ['', undefined],
  ];
  for (const [text, low, high] of cases) {
    const r = dateRange(text);
    if (low === undefined) t.equal(r, undefined, `${text} is not a date`);
    else t.same(r && [iso(r.low), iso(r.high)], [low, high], text);
  }
  t.same(dateRange('0001') && iso(dateRange('0001')!.low), '0001-01-01T00:00:00.000Z', 'year 1');
  t.ok(encodeInstant(dateRange('0001')!.low) < encodeInstant(dateRange('9999')!.high), 'instants encode in order');
});

t.test('prefixes and escapes', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['2024', 'eq', '2024'], ['eq2024', 'eq', '2024'], ['ne2024', 'ne', '2024'], ['gt2024', 'gt', '2024'], ['lt2024', 'lt', '2024'],
    ['ge2024', 'ge', '2024'], ['le2024', 'le', '2024'], ['sa2024', 'sa', '2024'], ['eb2024', 'eb', '2024'], ['ap2024', 'ap', '2024'],
    ['gt-5', 'gt', '-5'], ['lt.5', 'lt', '.5'], ['-5', 'eq', '-5'], ['xx2024', 'eq', 'xx2024'], ['ge', 'eq', 'ge'], ['GE2024', 'eq', 'GE2024'],
  ];
  for (const [raw, prefix, rest] of cases) t.same(splitPrefix(raw), [prefix, rest], raw);
  t.same(splitEscaped('a,b\\,c,d', ','), ['a', 'b,c', 'd']);
  t.same(splitEscaped('5.4|http://u|mg', '|'), ['5.4', 'http://u', 'mg']);
  t.same(splitEscaped('a\\$b$c', '$'), ['a$b', 'c']);
});

t.test('numberRange: implicit precision of a search number', async (t) => {
  const cases: Array<[string, number, number] | [string, undefined]> = [
    ['100', 99.5, 100.5], ['100.00', 99.995, 100.005], ['1e2', 95, 105], ['0.25', 0.245, 0.255], ['-1.5', -1.55, -1.45], ['2.5E-1', 0.2495, 0.2505], // exponent form: as the spec's 1e2 → [95, 105), half a unit of the next digit
    ['abc', undefined], ['1,2', undefined], ['', undefined], ['1.', undefined], ['0x10', undefined],
  ];
  for (const [text, low, high] of cases) {
    const r = numberRange(text);
    if (low === undefined) t.equal(r, undefined, `${text} is not a number`);
    else {
      t.ok(r && Math.abs(r.low - low) < 1e-9, `${text} low ${r?.low}`);
      t.ok(r && Math.abs(r.high - high!) < 1e-9, `${text} high ${r?.high}`);
    }
  }
});

t.test('number bounds are decimal: a stored value written as a bound is compared as that bound', async (t) => {
  // in doubles 5.4 - 0.05 is 5.3500000000000005 and 8.7 + 0.87 is 9.569999999999999
  const holds = (query: string, x: number) => numberCondition('n', 'n', query, '').test(encodeNumber(x));
  t.ok(holds('5.4', 5.35), 'eq5.4 holds 5.35, its inclusive lower bound');
  t.notOk(holds('5.4', 5.45), 'eq5.4 does not hold 5.45, its exclusive upper bound');
  t.notOk(holds('ne5.4', 5.35));
  t.ok(holds('ap8.7', 9.57), 'ap8.7 holds 8.7 + 10%');
  t.ok(holds('ap8.7', 7.83), 'ap8.7 holds 8.7 - 10%');
  t.notOk(holds('ap8.7', 9.5700001));
  t.ok(holds('ap-8.7', -9.57));
  t.ok(holds('2.98e1', 29.795), 'the exponent form too');
  t.ok(quantityCondition('q', 'q', 'ap8.7|http://unitsofmeasure.org|mg/dL').test(`http://unitsofmeasure.org|mg/dL#${encodeNumber(9.57)}`));
  const r = numberRange('0.3')!;
  t.same([r.low, r.high, r.approxLow, r.approxHigh], [0.25, 0.35, 0.27, 0.33]);
});

t.test('encodeNumber sorts like the numbers and round-trips', async (t) => {
  const values = [-1e300, -1e10, -2.5, -1, -0.1, -1e-300, 0, 1e-300, 0.1, 1, 2.5, 100, 1e10, 1e300];
  const encoded = values.map(encodeNumber);
  t.same([...encoded].sort(), encoded);
  for (const v of values) t.equal(decodeNumber(encodeNumber(v)), v);
  t.equal(encodeNumber(-0), encodeNumber(0));
});

t.test('normalizeString folds case, accents and spaces', async (t) => {
  t.equal(normalizeString('  Müller-Lüdenscheidt  Ève '), 'muller-ludenscheidt eve');
  t.equal(normalizeString('ÅSA'), 'asa');
});

// Stored date values as the extractor writes them
const stored = (low: string, high: string) => {
  const a = dateRange(low)!;
  const b = dateRange(high)!;
  const lo = encodeInstant(a.low);
  const hi = encodeInstant(b.high);
  return { byLow: `${lo}~${hi}`, byHigh: `${hi}~${lo}` };
};

t.test('date prefixes against targets of every precision (R4 search.html#prefix)', async (t) => {
  // [query, target low, target high, expected]
  const cases: Array<[string, string, string, boolean]> = [
    ['2024-01-01', '2024-01-01T10:00:00Z', '2024-01-01T10:00:00Z', true],
    ['2024-01-01', '2024-01-01', '2024-01-02', false], // the target reaches beyond the day
    ['2024-01', '2024-01-31', '2024-01-31', true],
    ['2024-01-01T10:00Z', '2024-01-01T10:00:30Z', '2024-01-01T10:00:30Z', true],
    ['ne2024', '2023-12-31', '2023-12-31', true],
    ['ne2024', '2024-06-01', '2024-06-01', false],
    ['gt2024-01-01', '2024-01-01', '2024-01-01', false],
    ['gt2024-01-01', '2023-12-31', '2024-01-02', true], // a period reaching beyond
    ['gt2024-01-01', '2024-01-02', '2024-01-02', true],
    ['ge2024-01-01', '2024-01-01T23:59:59Z', '2024-01-01T23:59:59Z', true],
    ['ge2024-01-01', '2023-12-31', '2023-12-31', false],
    ['lt2024-01-01', '2023-12-31T23:59:59Z', '2023-12-31T23:59:59Z', true],
    ['lt2024-01-01', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', false],
    ['lt2024-01-01', '2023', '2023', true],
    ['le2024-01-01', '2024-01-01T12:00:00Z', '2024-01-01T12:00:00Z', true],
    ['le2024-01-01', '2024-01-02', '2024-01-02', false],
    ['sa2024-01-01', '2024-01-02', '2024-01-05', true],
    ['sa2024-01-01', '2024-01-01T23:00:00Z', '2024-01-05', false], // starts inside: not after
    ['eb2024-01-01', '2023-12-30', '2023-12-31', true],
    ['eb2024-01-01', '2023-12-30', '2024-01-01T01:00:00Z', false], // ends inside: not before
    ['gt2024', '2024-06-01', '2025-06-01', true],
    ['lt2024-03-03', '2024-03-01', '2024-03-05', true],
    ['2024-01-01T10:30:00+02:00', '2024-01-01T08:30:00Z', '2024-01-01T08:30:00Z', true],
  ];
  for (const [query, low, high, expected] of cases) {
    const c = dateCondition('date', 'date', query);
    const s = stored(low, high);
    const value = c.code.endsWith(':hi') ? s.byHigh : s.byLow;
    t.equal(c.test(value), expected, `${query} vs [${low}, ${high}]`);
    if (expected) t.ok(value >= c.lower && value < c.upper, `${query}: the scan range holds [${low}, ${high}]`);
  }
  // ap: within 10% of the distance from now (at least a day)
  const now = Date.parse('2024-01-11T00:00:00Z');
  const ap = dateCondition('date', 'date', 'ap2024-01-01', now);
  t.ok(ap.test(stored('2024-01-01', '2024-01-01').byLow));
  t.ok(ap.test(stored('2024-01-01T23:00:00Z', '2024-01-02T00:30:00Z').byLow), 'within a day after');
  t.notOk(ap.test(stored('2024-01-05', '2024-01-05').byLow), 'four days off');
  t.throws(() => dateCondition('date', 'date', 'ge2024-02-30'), { code: 'ERR_INVALID_DATE', status: 400 });
  t.throws(() => dateCondition('date', 'date', 'zz2024'), { code: 'ERR_INVALID_DATE' });
});

t.test('number and quantity prefixes; scan ranges hold every match', async (t) => {
  const targets = [-3, 0, 0.25, 0.3, 0.34, 0.35, 99.5, 100, 100.49, 100.5, 1000];
  const cases: Array<[string, number[]]> = [
    ['100', [99.5, 100, 100.49]],
    ['0.3', [0.25, 0.3, 0.34]],
    ['ne100', [-3, 0, 0.25, 0.3, 0.34, 0.35, 100.5, 1000]],
    ['gt100', [100.49, 100.5, 1000]],
    ['ge100', [100, 100.49, 100.5, 1000]],
    ['lt0.3', [-3, 0, 0.25]],
    ['le0.3', [-3, 0, 0.25, 0.3]],
    ['sa100', [100.49, 100.5, 1000]],
    ['eb0', [-3]],
    ['ap100', [99.5, 100, 100.49, 100.5]],
    ['gt-5', [-3, 0, 0.25, 0.3, 0.34, 0.35, 99.5, 100, 100.49, 100.5, 1000]],
  ];
  for (const [query, expected] of cases) {
    const c = numberCondition('n', 'n', query, '');
    const hits = targets.filter((x) => c.test(encodeNumber(x)));
    t.same(hits, expected, query);
    for (const x of hits) t.ok(encodeNumber(x) >= c.lower && encodeNumber(x) < c.upper, `${query}: scan holds ${x}`);
  }
  const q = quantityCondition('q', 'q', 'gt5|http://unitsofmeasure.org|mg');
  t.ok(q.test(`http://unitsofmeasure.org|mg#${encodeNumber(6)}`));
  t.notOk(q.test(`http://unitsofmeasure.org|kg#${encodeNumber(6)}`));
  t.notOk(q.test(`http://unitsofmeasure.org|mg#${encodeNumber(5)}`));
  t.ok(quantityCondition('q', 'q', '5||mg').test(`|mg#${encodeNumber(5)}`));
  t.ok(quantityCondition('q', 'q', '5').test(`#${encodeNumber(5.4)}`));
  for (const bad of ['5|a', 'x|a|b', '5|a|', 'gt', '5|a|b|c']) t.throws(() => quantityCondition('q', 'q', bad), { code: 'ERR_INVALID_QUANTITY', status: 400 }, bad);
  t.throws(() => numberCondition('n', 'n', 'abc', ''), { code: 'ERR_INVALID_NUMBER' });
});

t.test('clear values longer than a key holds: bounded keys, whole-value equality, long prefixes checked on plaintext', async (t) => {
  const hash = (s: string) => `h${createHash('sha256').update(s).digest('base64url').slice(0, 22)}`;
  const url = `http://a/${'u'.repeat(300)}`;
  const key = boundedValue(url, hash);
  const vsUrl = paramsOf('ValueSet').get('url')!;
  const [eq] = conditionFor(vsUrl, 'url', undefined, url, undefined, hash);
  t.equal(eq!.exact, key, 'equality looks up the bounded key');
  t.notOk(eq!.test(url.slice(0, MAX_VALUE)), 'not the value cut to MAX_VALUE characters');
  t.ok((eq!.plain ?? eq!.test)(url), 'on plaintext: the whole value');
  t.notOk((eq!.plain ?? eq!.test)(url.slice(0, 250)));
  const [cut] = conditionFor(vsUrl, 'url', undefined, url.slice(0, MAX_VALUE), undefined, hash);
  t.notOk(cut!.test(key), 'the cut value does not find the long one');

  const [short] = conditionFor(vsUrl, 'url', 'below', 'http://a/', undefined, hash);
  t.ok(short!.test(key) && key >= short!.lower && key < short!.upper, ':below a short prefix scans the long key');
  t.notOk(short!.lossy);
  const [long] = conditionFor(vsUrl, 'url', 'below', url.slice(0, 250), undefined, hash);
  t.ok(long!.lossy, ':below a prefix longer than a key keeps is only necessary on the index');
  t.ok(long!.test(key) && key >= long!.lower && key < long!.upper, 'its scan finds the long key');
  t.ok(long!.plain!(url) && !long!.plain!(`${url.slice(0, 249)}z`), 'and the plaintext decides');

  const subject = paramsOf('Observation').get('subject')!;
  const ref = `http://other/${'r'.repeat(250)}/Patient/1`;
  const [r] = conditionFor(subject, 'subject', undefined, ref, undefined, hash);
  t.equal(r!.exact, boundedValue(ref, hash), 'absolute references: the bounded key');
  t.equal(r!.plainExact, ref);

  const system = `http://units/${'s'.repeat(250)}`;
  const q = quantityCondition('q', 'q', `5|${system}|mg`, hash);
  t.ok(q.test(`${hash(`${system}|mg`)}#${encodeNumber(5)}`), 'a long quantity unit: its hash, as the index keys it');
  t.notOk(q.test(`${system}|mg#${encodeNumber(5)}`));
});

t.test('escapes: split keeping them, unescape per part; token values parse into the stored forms', async (t) => {
  t.same(splitKeepingEscapes('a\\,b,c\\|d|e', ','), ['a\\,b', 'c\\|d|e'], 'a comma split keeps every escape');
  t.same(splitKeepingEscapes('a\\\\,b', ','), ['a\\\\', 'b'], 'an escaped backslash does not escape the comma after it');
  t.equal(unescapeValue('a\\$b\\|c\\,d\\\\e'), 'a$b|c,d\\e');
  t.equal(unescapeValue('trailing\\'), 'trailing\\', 'a lone trailing backslash stays');
  const cases: Array<[string, string]> = [
    ['code', 'code'],
    ['sys|code', 'sys|code'],
    ['|code', '|code'],
    ['sys|', 'sys|'],
    ['x\\|y', 'x\\|y'], // the code `x|y`, stored with its | escaped
    ['http://qa/esc|x\\|y', 'http://qa/esc|x\\|y'],
    ['p\\$q', 'p$q'],
    ['c\\,d', 'c,d'],
    ['a\\\\|b', 'a\\\\|b'], // the system `a\`, the code `b`
    ['a|b|c', 'a|b\\|c'], // a further unescaped | belongs to the code
  ];
  for (const [raw, form] of cases) t.equal(tokenForm('t', raw), form, raw);
  for (const bad of ['', '|']) t.throws(() => tokenForm('t', bad), { code: 'ERR_SEARCH_VALUE', status: 400 }, JSON.stringify(bad));
  const identifier = paramsOf('Patient').get('identifier')!;
  t.equal(conditionFor(identifier, 'identifier', undefined, 'x\\|y')[0]!.exact, 'x\\|y');
  t.equal(conditionFor(identifier, 'identifier', 'text', 'A\\|B')[0]!.plain!('a|b'), true, ':text unescapes too');
  const given = paramsOf('Patient').get('given')!;
  t.equal(conditionFor(given, 'given', 'exact', 'Dollar\\$sign')[0]!.exact, 'Dollar$sign');
  t.equal(conditionFor(given, 'given', undefined, 'dollar\\$s')[0]!.exact, 'dollar$s', 'an 8-character prefix: one exact lookup');
  const url = paramsOf('ValueSet').get('url')!;
  t.equal(conditionFor(url, 'url', undefined, 'http://x/a\\|b')[0]!.exact, 'http://x/a|b');
  const subject = paramsOf('Observation').get('subject')!;
  t.equal(conditionFor(subject, 'subject', undefined, 'http://x/a\\$b')[0]!.exact, 'http://x/a$b');
  const q = quantityCondition('q', 'q', '5|http://u|m\\|g');
  t.ok(q.test(`http://u|m\\|g#${encodeNumber(5)}`), 'a quantity unit holding a | is stored escaped, as token parts are');
  const codeValueString = paramsOf('Observation').get('code-value-string')!;
  const c = conditionFor(codeValueString, 'code-value-string', undefined, 'a\\$b\\|c$v\\$w')[0]!;
  // the token form `a$b\|c` and the string `v$w`, each with `\` and `$` escaped, joined by `$`
  t.ok(c.test('a\\$b\\\\|c$v\\$w'), 'composite: components escaped in the stored value (`\\` and `$`)');
  t.ok(c.plain!('a\\$b\\\\|c$v\\$w'));
  t.notOk(c.plain!('a\\$b\\\\|c$v$w'), 'an unescaped $ after the head is another component');
  // A string component matches by its start, which the hashed whole value in the key cannot tell: the index only
  // narrows to the code's values, and the decrypted value decides.
  t.ok(c.lossy, 'a string last component is checked on the decrypted value');
  t.ok(c.plain!('a\\$b\\\\|c$v\\$wxyz'), 'by its start');
  t.notOk(c.plain!('a\\$b\\\\|c$xv\\$w'));
});

t.test('numbers no double stands for are refused, not compared as 0 or infinity', async (t) => {
  for (const text of ['1e-400', '-1e-400', '0.' + '0'.repeat(400) + '1', '1e400', '-1e400', '1' + '0'.repeat(400)]) {
    t.equal(numberRange(text), undefined, `${text.slice(0, 20)}: no range`);
    t.ok(unrepresentable(text), `${text.slice(0, 20)}: unrepresentable`);
    t.throws(() => numberCondition('n', 'n', text, ''), { code: 'ERR_INVALID_NUMBER', message: /underflow to 0 or overflow to infinity/ }, text.slice(0, 20));
    t.throws(() => numberCondition('n', 'n', `gt${text}`, ''), { code: 'ERR_INVALID_NUMBER' }, `gt${text.slice(0, 20)}`);
    t.throws(() => quantityCondition('q', 'q', `${text}|http://unitsofmeasure.org|mg`), { code: 'ERR_INVALID_QUANTITY', message: /underflow/ }, `quantity ${text.slice(0, 20)}`);
  }
  const composite = paramsOf('Observation').get('code-value-quantity')!;
  t.throws(() => conditionFor(composite, 'code-value-quantity', undefined, '8480-6$1e-400'), { code: 'ERR_INVALID_QUANTITY' }, 'the number part of a composite');
  for (const zero of ['0', '0.000', '0e-400', '-0', '0e400']) {
    t.notOk(unrepresentable(zero), `${zero} is zero`);
    t.ok(numberCondition('n', 'n', zero, '').test(encodeNumber(0)), `${zero} finds 0`);
  }
  t.notOk(unrepresentable('1e-320'), 'a subnormal is a double, if imprecise');
  t.notOk(unrepresentable('abc'), 'malformed is another error');
});
