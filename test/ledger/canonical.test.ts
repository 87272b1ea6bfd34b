import t from 'tap';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { canonicalBytes, canonicalString, decodeUtf8, parseCanonical } from '../../src/ledger/canonical.ts';

t.test('RFC 8785 examples', async (t) => {
  // §3.2.2 (numbers, string escapes, literals), with the input given as text so the source spelling counts.
  const input = JSON.parse(
    '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
      '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
  );
  t.equal(
    canonicalString(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
  // §3.2.3 (member order by UTF-16 code units)
  const sorting = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  const sorted = canonicalString(sorting);
  t.equal(
    sorted,
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  );
  t.same(parseCanonical(sorted), sorting, 'an integer-like key in canonical place is still canonical');
});

t.test('bytes are the UTF-8 of the canonical text', async (t) => {
  t.equal(Buffer.from(canonicalBytes({ b: 'é', a: [1, 2.5] })).toString('hex'), Buffer.from('{"a":[1,2.5],"b":"é"}').toString('hex'));
  t.equal(canonicalString({ a: undefined, b: 1 }), '{"b":1}', 'undefined members are absent, as in JSON');
});

t.test('values JSON cannot represent are refused', async (t) => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const cases: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['function', () => 1],
    ['symbol', Symbol('s')],
    ['NaN', { n: NaN }],
    ['Infinity', [Infinity]],
    ['-Infinity', -Infinity],
    ['BigInt', { n: 1n }],
    ['lone surrogate', { s: '\ud800' }],
    ['cycle', cyclic],
  ];
  for (const [name, value] of cases) {
    t.throws(() => canonicalBytes(value), { code: 'ERR_CANONICAL_JSON' }, name);
  }
});

t.test('strict UTF-8 decoding', async (t) => {
  t.equal(decodeUtf8(new TextEncoder().encode('{"a":"ü"}')), '{"a":"ü"}');
  t.throws(() => decodeUtf8(Uint8Array.of(0x7b, 0xff, 0x7d)), { code: 'ERR_CANONICAL_JSON' }, 'invalid byte');
  t.throws(() => decodeUtf8(Uint8Array.of(0xef, 0xbb, 0xbf, 0x7b, 0x7d)), { code: 'ERR_CANONICAL_JSON' }, 'byte-order mark');
});

/** The slow definition the fast check must agree with. */
function isCanonicalSlow(text: string): boolean {
  try {
    return canonicalize(JSON.parse(text)) === text;
  } catch {
    return false;
  }
}

t.test('parseCanonical agrees with canonicalize(JSON.parse(text)) === text', async (t) => {
  const handmade = [
    '{"a":1,"b":2}', '{"b":2,"a":1}', '{"a":1, "b":2}', ' {"a":1}', '{"a":1.0}', '{"a":1e2}', '{"a":100}',
    '{"a":"\\u0041"}', '{"a":"A"}', '{"a":"\\u001f"}', '{"a":"\\u001F"}', '{"a":1,"a":1}', '{"10":1,"9":2}',
    '{"9":2,"10":1}', '{"a":"\\ud800"}', '[]', '{}', 'null', '"x"', '-0', '0', '{"a":[{"b":1,"a":2}]}',
    '{"a":"\\/"}', '{"":1,"a":{}}', 'not json', '{"a":1}\n',
  ];
  const mismatches = handmade.filter((text) => (parseCanonical(text) !== undefined) !== isCanonicalSlow(text));
  t.same(mismatches, []);
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const text = canonicalString(value);
      return parseCanonical(text) !== undefined && (parseCanonical(JSON.stringify(value)) !== undefined) === isCanonicalSlow(JSON.stringify(value));
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.json(), (text) => (parseCanonical(text) !== undefined) === isCanonicalSlow(text)),
    { numRuns: 500 },
  );
});
