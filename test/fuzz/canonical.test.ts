/**
 * RFC 8785 properties of src/ledger/canonical.ts over generated JSON: the canonical form is a function of the
 * value alone (member order never matters), canonicalizing twice changes nothing, the text parses back to the
 * value, numbers are spelled as ECMAScript spells them, and anything JSON cannot carry is refused with
 * ERR_CANONICAL_JSON rather than silently rewritten.
 */
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { FhirError } from '../../src/errors.ts';
import { canonicalBytes, canonicalString, decodeUtf8, parseCanonical } from '../../src/ledger/canonical.ts';
import { holds } from './fixtures/runs.ts';

/** JSON values with full Unicode keys and strings, integer-like keys included (JS objects reorder those). */
const json = fc.oneof(
  fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }),
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(fc.oneof(fc.nat().map(String), fc.string({ unit: 'binary', maxLength: 4 })), fc.jsonValue({ maxDepth: 2 })),
);

/** The value JSON.parse gives back: RFC 8785 writes -0 as 0. */
function jsonNormal(value: unknown): unknown {
  if (typeof value === 'number') return value === 0 ? 0 : value;
  if (Array.isArray(value)) return value.map(jsonNormal);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonNormal(v)]));
  }
  return value;
}

/** The same value with every object's members inserted in another order. */
function reorder(value: unknown, pick: (n: number) => number): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, pick));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    const out: [string, unknown][] = [];
    while (entries.length) out.push(entries.splice(pick(entries.length), 1)[0]!);
    return Object.fromEntries(out.map(([k, v]) => [k, reorder(v, pick)]));
  }
  return value;
}

const isCanonicalError = (err: unknown) => err instanceof FhirError && err.code === 'ERR_CANONICAL_JSON';

t.test('parse(canonical(x)) deep-equals x, and canonicalizing twice changes nothing', async (t) => {
  await holds(
    t,
    fc.property(json, (value) => {
      const text = canonicalString(value);
      const back = JSON.parse(text);
      return isDeepStrictEqual(back, jsonNormal(value)) && canonicalString(back) === text && isDeepStrictEqual(parseCanonical(text), back);
    }),
    400,
  );
});

t.test('member order does not change the canonical form', async (t) => {
  await holds(
    t,
    fc.property(json, fc.infiniteStream(fc.nat()), (value, stream) => {
      const it = stream[Symbol.iterator]();
      const shuffled = reorder(value, (n) => it.next().value! % n);
      return canonicalString(shuffled) === canonicalString(value);
    }),
    400,
  );
});

t.test('members are sorted by UTF-16 code units at every level', async (t) => {
  await holds(
    t,
    fc.property(fc.dictionary(fc.string({ unit: 'binary', maxLength: 5 }), fc.nat(), { maxKeys: 8 }), (object) => {
      const keys = Object.keys(JSON.parse(canonicalString({ o: object })).o);
      // JSON.parse keeps integer-like keys first, so compare the text's order instead of the object's.
      const text = canonicalString(object);
      const order = Object.keys(object).sort().map((k) => text.indexOf(JSON.stringify(k) + ':'));
      return keys.length === Object.keys(object).length && order.every((pos, i) => i === 0 || pos > order[i - 1]!);
    }),
    300,
  );
});

t.test('numbers are spelled as ECMAScript Number.prototype.toString spells them', async (t) => {
  const ecmaNumber = /^-?(0|[1-9]\d*)(\.\d*[1-9])?(e[+-][1-9]\d*)?$/;
  await holds(
    t,
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
      const text = canonicalString(n);
      return ecmaNumber.test(text) && text === (Object.is(n, -0) ? '0' : String(n)) && Number(text) === n;
    }),
    1000,
  );
});

t.test('values JSON cannot carry are refused with ERR_CANONICAL_JSON, never something else', async (t) => {
  const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
  const poison = fc.oneof(
    fc.constantFrom(NaN, Infinity, -Infinity, 1n),
    fc.tuple(fc.string({ maxLength: 3 }), loneSurrogate, fc.string({ maxLength: 3 })).map(([a, s, b]) => a + s + b),
  );
  // A poison value somewhere inside otherwise valid JSON: as a member value, as a key, or in an array.
  const poisoned = fc.tuple(fc.jsonValue({ maxDepth: 2 }), poison, fc.constantFrom('value', 'key', 'array')).map(([base, p, where]) => {
    if (where === 'array') return [base, p];
    if (where === 'key') return typeof p === 'string' ? { [p]: base } : { x: p };
    return { a: base, b: p };
  });
  await holds(
    t,
    fc.property(poisoned, (value) => {
      try {
        canonicalString(value);
        return false;
      } catch (err) {
        return isCanonicalError(err);
      }
    }),
    300,
  );
});

t.test('decodeUtf8 round-trips well-formed UTF-8 and refuses the rest with ERR_CANONICAL_JSON', async (t) => {
  await holds(
    t,
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.string({ unit: 'binary' }).map((s) => canonicalBytes(s))), (bytes) => {
      try {
        const text = decodeUtf8(bytes);
        return Buffer.from(text, 'utf8').equals(Buffer.from(bytes)) && text.charCodeAt(0) !== 0xfeff;
      } catch (err) {
        return isCanonicalError(err);
      }
    }),
    1000,
  );
});

t.test('parseCanonical never throws and accepts exactly the canonical texts', async (t) => {
  await holds(
    t,
    fc.property(fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ unit: 'binary', maxLength: 30 }), json.map((v) => canonicalString(v))), (text) => {
      const parsed = parseCanonical(text);
      let canonical: boolean;
      try {
        canonical = canonicalString(JSON.parse(text)) === text;
      } catch {
        canonical = false;
      }
      return canonical ? isDeepStrictEqual(parsed, JSON.parse(text)) : parsed === undefined;
    }),
    500,
  );
});
