import t from 'tap';
import { PrincipalCache, isFhirUserReference, principalFromClaims, splitScope } from '../../src/consent/principal.ts';
import type { Principal } from '../../src/consent/principal.ts';
import { bearerChallenge } from '../../src/consent/token.ts';

const base = { iss: 'https://idp.example', sub: 'user-1', aud: 'http://127.0.0.1:8080/fhir', exp: 1_900_000_000 };

t.test('principalFromClaims maps every claim it names', async (t) => {
  const claims = {
    ...base,
    scope: 'launch/patient  patient/Observation.rs openid',
    patient: 'pat-1',
    fhirUser: 'https://fhir.example/fhir/Practitioner/dr.who',
    client_id: 'app-1',
    azp: 'other',
    jti: 'j-1',
    extra: { nested: true },
  };
  const result = principalFromClaims(claims);
  t.ok(result.ok);
  if (!result.ok) return;
  t.same(result.principal, {
    sub: 'user-1',
    issuer: 'https://idp.example',
    scopes: ['launch/patient', 'patient/Observation.rs', 'openid'],
    patient: 'pat-1',
    fhirUser: 'https://fhir.example/fhir/Practitioner/dr.who',
    clientId: 'app-1',
    jti: 'j-1',
    expiresAt: new Date(1_900_000_000_000),
    claims,
  });
});

t.test('optional claims stay absent; azp stands in for client_id', async (t) => {
  const result = principalFromClaims({ ...base, azp: 'app-2' });
  t.ok(result.ok);
  if (!result.ok) return;
  t.same(result.principal.scopes, []);
  t.equal(result.principal.clientId, 'app-2');
  for (const key of ['patient', 'fhirUser', 'jti'] as const) t.notOk(key in result.principal, `${key} absent`);
});

t.test('unusable claims are refused, naming the claim', async (t) => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['no sub', { sub: undefined }, 'sub'],
    ['empty sub', { sub: '' }, 'sub'],
    ['numeric sub', { sub: 42 }, 'sub'],
    ['no iss', { iss: undefined }, 'iss'],
    ['no exp', { exp: undefined }, 'exp'],
    ['string exp', { exp: '1900000000' }, 'exp'],
    ['scope as array', { scope: ['patient/*.rs'] }, 'scope'],
    ['scope with a quote', { scope: 'patient/*.rs "x"' }, 'scope'],
    ['patient not an id', { patient: 'Patient/1' }, 'patient'],
    ['patient too long', { patient: 'a'.repeat(65) }, 'patient'],
    ['patient empty', { patient: '' }, 'patient'],
    ['patient number', { patient: 7 }, 'patient'],
    ['fhirUser of another type', { fhirUser: 'Organization/1' }, 'fhirUser'],
    ['fhirUser with a version', { fhirUser: 'Practitioner/1/_history/2' }, 'fhirUser'],
    ['client_id number', { client_id: 5 }, 'client_id'],
    ['azp empty', { azp: '' }, 'azp'],
    ['jti object', { jti: {} }, 'jti'],
  ];
  for (const [name, change, claim] of cases) {
    const claims: Record<string, unknown> = { ...base, ...change };
    for (const key of Object.keys(change)) if (change[key] === undefined) delete claims[key];
    t.same(principalFromClaims(claims), { ok: false, claim }, name);
  }
});

t.test('splitScope follows RFC 6749 scope-token grammar', async (t) => {
  const cases: Array<[string, string[] | undefined]> = [
    ['system/*.cruds', ['system/*.cruds']],
    ['  a   b ', ['a', 'b']],
    ['patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory', [
      'patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory',
    ]],
    ['', []],
    ['a\tb', undefined],
    ['a\\b', undefined],
    ['café', undefined],
  ];
  for (const [input, expected] of cases) t.same(splitScope(input), expected, JSON.stringify(input));
});

t.test('isFhirUserReference accepts relative and absolute user references only', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['Practitioner/123', true],
    ['PractitionerRole/a.b-c', true],
    ['Patient/1', true],
    ['RelatedPerson/1', true],
    ['Person/1', true],
    ['http://host:8080/fhir/Practitioner/1', true],
    ['Practitioner/', false],
    ['practitioner/1', false],
    ['Device/1', false],
    ['Practitioner/1?x=y', false],
    ['ftp://host/Practitioner/1', false],
    ['Practitioner/has space', false],
  ];
  for (const [input, expected] of cases) t.equal(isFhirUserReference(input), expected, input);
});

t.test('bearerChallenge quotes its parameters (RFC 6750 §3)', async (t) => {
  t.equal(bearerChallenge('http://h/fhir'), 'Bearer realm="http://h/fhir"');
  t.equal(
    bearerChallenge('http://h/fhir', { code: 'invalid_token', description: 'The access token has expired' }),
    'Bearer realm="http://h/fhir", error="invalid_token", error_description="The access token has expired"',
  );
  t.equal(bearerChallenge('a"b\\c'), 'Bearer realm="a\\"b\\\\c"');
});

t.test('PrincipalCache keeps entries until the token expires or its ttl passes, least recently used evicted first', async (t) => {
  const principal = (sub: string, expMs: number): Principal => ({
    sub, issuer: 'i', scopes: ['a'], expiresAt: new Date(expMs), claims: { sub },
  });
  const cache = new PrincipalCache(2, 60_000);
  cache.set('t1', principal('one', 1_000_000), 0, 30_000);
  t.equal(cache.get('t1', 59_999)?.sub, 'one', 'within the ttl');
  t.equal(cache.get('t1', 60_000), undefined, 'ttl passed');
  t.equal(cache.size, 0, 'dropped on the miss');

  cache.set('t2', principal('two', 10_000), 0, 30_000);
  t.equal(cache.get('t2', 39_999)?.sub, 'two', 'until exp + tolerance');
  t.equal(cache.get('t2', 40_000), undefined, 'expired');

  cache.set('gone', principal('gone', 0), 30_000, 30_000);
  t.equal(cache.size, 0, 'an already expired principal is not stored');

  cache.set('a', principal('a', 1e9), 0, 0);
  cache.set('b', principal('b', 1e9), 0, 0);
  t.equal(cache.get('a', 1)?.sub, 'a', 'a used after b was stored');
  cache.set('c', principal('c', 1e9), 0, 0);
  t.equal(cache.size, 2);
  t.equal(cache.get('b', 1), undefined, 'the least recently used evicted');
  t.equal(cache.get('c', 1)?.sub, 'c');
  t.equal(cache.get('a', 1)?.sub, 'a', 'the recently used kept');
  cache.set('b', principal('b', 1e9), 0, 0);
  const shared = cache.get('b', 1)!;
  t.ok(Object.isFrozen(shared) && Object.isFrozen(shared.scopes) && Object.isFrozen(shared.claims), 'frozen');
  t.throws(() => shared.scopes.push('system/*.cruds'), TypeError, 'no request can widen a shared principal');

  const off = new PrincipalCache(0, 60_000);
  off.set('t', principal('x', 1e9), 0, 0);
  t.equal(off.get('t', 1), undefined, 'size 0 turns the cache off');
});
