/**
 * The SMART scope parser and grant check (src/consent/scopes.ts) under generated scope strings: well-formed
 * scopes parse back to what they say, garbage never parses and never throws, and a grant is exactly the union
 * of the letters of the matching non-granular scopes: more scopes never take a grant away, granular scopes never
 * give one, and another context or type never leaks into this one.
 */
import t from 'tap';
import fc from 'fast-check';
import { grants, parseResourceScope, type Context } from '../../src/consent/scopes.ts';
import { holds } from './fixtures/runs.ts';

const CONTEXTS: Context[] = ['patient', 'user', 'system'];
const TYPES = ['Patient', 'Observation', 'AuditEvent', 'Encounter', '*'];
/** v2 letters: a non-empty subsequence of `cruds`. */
const v2Letters = fc.subarray([...'cruds'], { minLength: 1 }).map((l) => l.join(''));
const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };

const wellFormed = fc.record({
  context: fc.constantFrom(...CONTEXTS),
  type: fc.constantFrom(...TYPES),
  permission: fc.oneof(v2Letters, fc.constantFrom('read', 'write', '*')),
  query: fc.option(fc.constantFrom('?category=vital-signs', '?code=http://loinc.org|1', '?x'), { nil: undefined }),
});
type WellFormed = typeof wellFormed extends fc.Arbitrary<infer T> ? T : never;
const text = (s: WellFormed) => `${s.context}/${s.type}.${s.permission}${s.query ?? ''}`;

/** Nearly-scopes: one piece broken, plus free text. */
const broken = fc.oneof(
  fc.tuple(fc.constantFrom('patient', 'user', 'system', 'Patient', 'launch', '', 'system '), fc.constantFrom('/', '//', '.', ''), fc.constantFrom('Observation', '*', 'Obs1', '', '**'), fc.constantFrom('.', '', '..'), fc.constantFrom('rc', 'cc', 'x', '', 'READ', 'cruds*', 'rs ', 'sr', 'cruds', 'read'), fc.constantFrom('', '?', '?a=b')).map((parts) => parts.join('')),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('openid', 'fhirUser', 'launch/patient', 'offline_access', 'system/*.*', 'user/*.read'),
);

/** Grant as the SMART spec describes it, written independently of the module: union over matching scopes. */
function oracle(scopes: WellFormed[], type: string, letters: string, contexts: Context[]): boolean {
  const granted = new Set<string>();
  for (const s of scopes) {
    if (s.query !== undefined || !contexts.includes(s.context) || (s.type !== '*' && s.type !== type)) continue;
    for (const l of V1[s.permission] ?? s.permission) granted.add(l);
  }
  return [...letters].every((l) => granted.has(l));
}

t.test('well-formed scopes parse to what they say', async (t) => {
  await holds(
    t,
    fc.property(wellFormed, (s) => {
      const parsed = parseResourceScope(text(s));
      return parsed !== undefined && parsed.context === s.context && parsed.resourceType === s.type && parsed.letters === (V1[s.permission] ?? s.permission) && parsed.granular === (s.query !== undefined);
    }),
    1000,
  );
});

t.test('anything else is not a resource scope; the parser never throws', async (t) => {
  const SCOPE = /^(patient|user|system)\/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)(\?.+)?$/;
  await holds(
    t,
    fc.property(broken, (s) => {
      const parsed = parseResourceScope(s);
      // The only texts that parse are those the SMART grammar allows (empty v2 letters excepted).
      return parsed === undefined ? !SCOPE.test(s) || /\.(\?|$)/.test(s) : SCOPE.test(s) && /^[cruds]+$/.test(parsed.letters);
    }),
    2000,
  );
});

t.test('grants is the union of matching non-granular scopes, whatever junk surrounds them', async (t) => {
  await holds(
    t,
    fc.property(
      fc.array(wellFormed, { maxLength: 5 }),
      fc.array(broken, { maxLength: 3 }),
      fc.constantFrom('Patient', 'Observation', 'AuditEvent', 'Condition'),
      v2Letters,
      fc.subarray(CONTEXTS, { minLength: 1 }),
      fc.nat(),
      (scopes, junk, type, letters, contexts, at) => {
        const tokens = scopes.map(text);
        tokens.splice(at % (tokens.length + 1), 0, ...junk.filter((j) => parseResourceScope(j) === undefined));
        return grants(tokens, type, letters, contexts) === oracle(scopes, type, letters, contexts);
      },
    ),
    2000,
  );
});

t.test('grants is monotone: another scope never takes access away', async (t) => {
  await holds(
    t,
    fc.property(fc.array(fc.oneof(wellFormed.map(text), broken), { maxLength: 5 }), fc.oneof(wellFormed.map(text), broken), fc.constantFrom('Patient', 'Observation'), v2Letters, (tokens, extra, type, letters) => {
      return !grants(tokens, type, letters) || grants([...tokens, extra], type, letters);
    }),
    1000,
  );
});
