/**
 * The search-parameter parser (src/fhir/search/params.ts) and the conditions it builds (conditions.ts) under
 * generated queries: real parameter names with valid and bogus modifiers, chains, _has, result parameters, and
 * values built from prefixes, dates, numbers, quantities, tokens, references and plain garbage. Whatever comes
 * in, the parser either returns a parse whose conditions can be evaluated on any index value without throwing,
 * or throws a 400 FhirError naming the offending parameter. Never a TypeError, never a 500.
 */
import t from 'tap';
import fc from 'fast-check';
import { FhirError } from '../../src/errors.ts';
import { conditionFor, splitEscaped, splitPrefix, PREFIXES } from '../../src/fhir/search/conditions.ts';
import { extractEntries } from '../../src/fhir/search/extract.ts';
import { parseSearch, type ParsedSearch } from '../../src/fhir/search/params.ts';
import { paramsOf } from '../../src/fhir/search/registry.ts';
import { RESOURCE_TYPES } from '../../src/fhir/validate.ts';
import { holds } from './fixtures/runs.ts';
import { codesOf, garbage, query, value } from './fixtures/search.ts';

const indexValue = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('000000000000000~999999999999999', '~', '#', '#8000000000000000', 'x|mg#bff0000000000000', 'Patient/1', 'a$b'));

function evaluateAll(parsed: ParsedSearch, samples: string[]): void {
  for (const filter of parsed.filters) {
    if (filter.kind !== 'match' && filter.kind !== 'residual') continue;
    for (const c of filter.conditions) {
      if (typeof c.lower !== 'string' || typeof c.upper !== 'string') throw new Error(`bad bounds on ${filter.name}`);
      for (const v of samples) {
        if (typeof c.test(v) !== 'boolean' || typeof (c.plain ?? c.test)(v) !== 'boolean') throw new Error(`non-boolean test on ${filter.name}`);
      }
    }
  }
}

t.test('parseSearch: a usable parse, or a 400 that names one of the parameters', async (t) => {
  await holds(
    t,
    fc.property(query, fc.array(indexValue, { maxLength: 4 }), ([type, q, lenient], samples) => {
      let parsed: ParsedSearch;
      try {
        parsed = parseSearch(type, q, { lenient, baseUrl: 'http://localhost/fhir', maxCount: 500 });
      } catch (err) {
        if (!(err instanceof FhirError) || err.status !== 400) throw err;
        const named = err.issues.flatMap((i) => i.expression ?? []);
        if (!named.some((n) => Object.hasOwn(q, n))) throw new Error(`400 names ${JSON.stringify(named)}, not a parameter of ${JSON.stringify(Object.keys(q))}`);
        if (lenient && ['ERR_UNKNOWN_PARAMETER', 'ERR_UNSUPPORTED_PARAMETER', 'ERR_UNKNOWN_MODIFIER'].includes(err.code)) {
          throw new Error(`lenient handling threw ${err.code}`);
        }
        return true;
      }
      evaluateAll(parsed, samples);
      if (parsed.count !== undefined && !(Number.isInteger(parsed.count) && parsed.count >= 0 && parsed.count <= 500)) return false;
      return parsed.ignored.every((n) => lenient && Object.hasOwn(q, n));
    }),
    800,
  );
});

t.test('parseSearch on every resource type: random registry parameter and value', async (t) => {
  const anyType = fc.constantFrom(...RESOURCE_TYPES).filter((ty) => paramsOf(ty).size > 0);
  await holds(
    t,
    fc.property(anyType.chain((ty) => fc.tuple(fc.constant(ty), fc.constantFrom(...codesOf(ty)), value)), ([type, code, v]) => {
      try {
        parseSearch(type, { [code]: [v] });
      } catch (err) {
        if (!(err instanceof FhirError) || err.status !== 400) throw err;
      }
      return true;
    }),
    800,
  );
});

t.test('splitEscaped undoes backslash-escaping of parts joined by a separator', async (t) => {
  const escape = (s: string, sep: string) => s.replace(/\\/g, '\\\\').replaceAll(sep, `\\${sep}`);
  await holds(
    t,
    fc.property(fc.array(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 5 }), fc.constantFrom(',', '|', '$'), (parts, sep) => {
      const joined = parts.map((p) => escape(p, sep)).join(sep);
      return JSON.stringify(splitEscaped(joined, sep)) === JSON.stringify(parts);
    }),
    1000,
  );
});

t.test('splitPrefix only ever splits off one of the nine prefixes', async (t) => {
  await holds(
    t,
    fc.property(fc.oneof(value, garbage), (raw) => {
      const [prefix, rest] = splitPrefix(raw);
      return (PREFIXES as readonly string[]).includes(prefix) && (rest === raw || (raw === prefix + rest && rest !== ''));
    }),
    1000,
  );
});

t.test('conditionFor: a date/number equality condition accepts the value it was built from', async (t) => {
  const birthdate = paramsOf('Patient').get('birthdate')!;
  const probability = paramsOf('RiskAssessment').get('probability')!;
  await holds(
    t,
    fc.property(fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), fc.double({ noNaN: true, noDefaultInfinity: true }), (d, n) => {
      const day = d.toISOString().slice(0, 10);
      const [date] = conditionFor(birthdate, 'birthdate', undefined, day);
      const [num] = conditionFor(probability, 'probability', undefined, String(n));
      // Stored forms as the index writes them (extract.ts): `low~high` instants for dates, 16 hex digits for numbers.
      const start = Date.parse(`${day}T00:00:00Z`);
      const enc = (ms: number) => String(ms + 62_167_219_200_000).padStart(15, '0');
      const view = new DataView(new ArrayBuffer(8));
      view.setFloat64(0, n === 0 ? 0 : n);
      const hi = view.getUint32(0);
      const lo = view.getUint32(4);
      const [h, l] = n < 0 ? [~hi >>> 0, ~lo >>> 0] : [(hi ^ 0x80000000) >>> 0, lo];
      const hex = h.toString(16).padStart(8, '0') + l.toString(16).padStart(8, '0');
      return date!.test(`${enc(start)}~${enc(start + 86_399_999)}`) && num!.test(hex);
    }),
    1000,
  );
});

t.test('an escaped token or string search value looks up exactly the key the index stores for that value', async (t) => {
  // the client side of search.html#escaping: a backslash before \, |, $ and ,
  const escapeSearch = (s: string) => s.replace(/[\\|$,]/g, '\\$&');
  const text = fc.string({ minLength: 1, maxLength: 8 }).filter((s) => s.trim() !== '');
  await holds(
    t,
    fc.property(fc.option(text, { nil: undefined }), text, (system, value) => {
      const stored = extractEntries({ resourceType: 'Patient', identifier: [{ system, value }], name: [{ given: [value] }] } as never);
      const identifiers = stored.filter((e) => e.code === 'identifier').map((e) => e.value);
      const query = system === undefined ? escapeSearch(value) : `${escapeSearch(system)}|${escapeSearch(value)}`;
      const [token] = parseSearch('Patient', { identifier: [query] }).filters;
      const [exactGiven] = parseSearch('Patient', { 'given:exact': [escapeSearch(value)] }).filters;
      const conditions = (f: unknown) => (f as { conditions: Array<{ exact?: string }> }).conditions;
      return (
        conditions(token).length === 1 && identifiers.includes(conditions(token)[0]!.exact!) &&
        conditions(exactGiven).length === 1 && stored.some((e) => e.code === 'given:exact' && e.value === conditions(exactGiven)[0]!.exact)
      );
    }),
    1000,
  );
});
