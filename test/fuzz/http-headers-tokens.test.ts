/**
 * Fuzzing headers and tokens over real HTTP (fixtures/http.ts has the invariants): odd Accept, If-Match,
 * If-None-Match, If-None-Exist, Prefer, If-Modified-Since, _format and _pretty on reads and writes; and bearer
 * tokens that are forged, expired, for another server or issuer, unsigned (`alg: none`), HMAC-signed with a
 * guessable secret, signed by another key under the real kid, or plain garbage: every one a 401 that stores nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import t from 'tap';
import fc from 'fast-check';
import { generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { SEEDED, startFuzzServer, type FuzzRequest } from './fixtures/http.ts';
import { holds } from './fixtures/runs.ts';

const JSON_TYPE = { 'content-type': 'application/fhir+json' };
/** Header values a client can put on the wire: printable ASCII. */
const headerText = fc.string({ maxLength: 30 }).filter((s) => /^[\x20-\x7e]*$/.test(s));

const HEADER_VALUES: Record<string, string[]> = {
  accept: ['application/fhir+json', 'application/json', 'application/fhir+json, application/xml', 'application/xml', 'application/fhir+xml', '*/*', 'text/html', 'application/fhir+json;q=0', 'application/json;q=0.5, */*;q=0.1', '', ';;', 'application/fhir+json; fhirVersion=3.0', 'application/*', 'text/*;q=1.5', ',,,'],
  'if-match': ['', '*', 'W/"1"', '"1"', 'W/"abc"', 'W/"', 'W/"1", W/"2"', 'W/"99999999999999999999"', 'W/"-1"', 'W/"1.5"', '"', 'W/""'],
  'if-none-match': ['*', 'W/"1"', '"1"', 'W/"x"', '', 'W/"1", *'],
  'if-none-exist': ['identifier=urn:fuzz|p1', 'bogus=1', '=', '&&', 'gender=male', '_count=x', '%zz', 'identifier', 'name:exact=', '_id=fz-pat-1', '?identifier=x', 'birthdate=ge2024-02-30'],
  prefer: ['return=minimal', 'return=representation', 'return=OperationOutcome', 'handling=lenient', 'handling=strict', 'respond-async', 'return=', 'return=minimal; return=x', 'return = minimal', ';', 'handling=lenient, return=minimal'],
  'if-modified-since': ['Sat, 21 Nov 2026 08:00:00 GMT', 'Mon, 01 Jan 1990 00:00:00 GMT', '0', '-1', '2024-13-45', 'Invalid Date', '99999999999999', 'Thu, 01 Jan 9999 00:00:00 GMT', '2024-01-01T00:00:00Z', ''],
};

const headers = fc.dictionary(
  fc.constantFrom(...Object.keys(HEADER_VALUES)),
  fc.constant(null),
  { maxKeys: 4 },
).chain((keys) =>
  fc.record(Object.fromEntries(Object.keys(keys).map((k) => [k, fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...HEADER_VALUES[k]!) }, headerText)]))) as fc.Arbitrary<Record<string, string>>,
);

// Mostly formats the server speaks, so the headers behind them get exercised rather than a 406.
const queryFlags = fc.record({ _format: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('json', 'application/fhir+json', 'application/json', 'application/fhir json') }, fc.constantFrom('xml', 'text/turtle', 'x', '')), _pretty: fc.constantFrom('true', 'false', 'yes', '') }, { requiredKeys: [] });

t.test('headers and tokens over HTTP', async (t) => {
  const fz = await startFuzzServer(t);

  await t.test('odd conditional, negotiation and preference headers on reads and writes', async (t) => {
    const patient2 = SEEDED[1];
    const target = fc.constantFrom<FuzzRequest>(
      { method: 'GET', path: 'Patient/fz-pat-1' },
      { method: 'HEAD', path: 'Patient/fz-pat-1' },
      { method: 'GET', path: 'Patient/fz-pat-1/_history/1' },
      { method: 'GET', path: 'Patient?name=fuzz' },
      { method: 'GET', path: 'metadata' },
      { method: 'PUT', path: 'Patient/fz-pat-2', headers: JSON_TYPE, body: JSON.stringify(patient2) },
      { method: 'POST', path: 'Patient', headers: JSON_TYPE, body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:fuzz', value: 'p1' }] }) },
      { method: 'PATCH', path: 'Patient/fz-pat-2', headers: { 'content-type': 'application/json-patch+json' }, body: '[{"op":"replace","path":"/gender","value":"male"}]' },
      { method: 'DELETE', path: 'Patient?identifier=urn:fuzz|nobody' },
      { method: 'GET', path: 'Nope/1' },
    );
    await holds(
      t,
      fc.asyncProperty(target, headers, queryFlags, async (tgt, extra, flags) => {
        const query = new URLSearchParams(flags as Record<string, string>).toString();
        const sep = tgt.path.includes('?') ? '&' : '?';
        await fz.check({ ...tgt, path: query ? `${tgt.path}${sep}${query}` : tgt.path, headers: { ...tgt.headers, ...extra } });
      }),
      40,
      0.3,
    );
    await fz.settle(t, 'headers');
  });

  await t.test('forged, expired, foreign, unsigned and garbage tokens are a 401 that stores nothing', async (t) => {
    const jwk = JSON.parse(fs.readFileSync(path.join(fz.server.dataDir, 'keys', 'dev-issuer.jwk.json'), 'utf8')) as JWK;
    const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
    const other = (await generateKeyPair('ES256')).privateKey;
    const issuer = `${fz.origin}/dev-issuer`;
    const now = Math.floor(Date.now() / 1000);
    const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

    type Variant = 'aud' | 'iss' | 'expired' | 'nbf' | 'no-exp' | 'no-sub' | 'empty-sub' | 'scope-type' | 'patient' | 'typ' | 'none' | 'hs256' | 'other-key' | 'flip-signature' | 'flip-payload' | 'swap-payload';
    const sign = async (variant: Variant, at: number): Promise<string> => {
      const claims: Record<string, unknown> = { scope: 'system/*.cruds', client_id: 'fuzz', jti: randomUUID() };
      let iss = issuer;
      let aud = fz.server.baseUrl;
      let sub: string | undefined = 'fuzzer';
      let exp: number | undefined = now + 600;
      let typ = 'at+jwt';
      if (variant === 'aud') aud = ['http://other.example/fhir', `${fz.server.baseUrl}/`, fz.origin, ''][at % 4]!;
      if (variant === 'iss') iss = ['http://evil.example/dev-issuer', `${issuer}/`, fz.origin, ''][at % 4]!;
      if (variant === 'expired') exp = now - 31 - (at % 100_000);
      if (variant === 'no-exp') exp = undefined;
      if (variant === 'no-sub') sub = undefined;
      if (variant === 'empty-sub') sub = '';
      if (variant === 'scope-type') claims.scope = [['system/*.cruds'], 7, { a: 1 }, 'system/*.cruds "quoted"'][at % 4];
      if (variant === 'patient') claims.patient = ['', 'a b', 'x'.repeat(65), 7][at % 4];
      if (variant === 'typ') typ = ['JOSE', 'id+jwt', 'dpop+jwt'][at % 3]!;
      const payload: Record<string, unknown> = { ...claims, iss, aud, iat: now, ...(sub === undefined ? {} : { sub }), ...(exp === undefined ? {} : { exp }) };
      if (variant === 'nbf') payload.nbf = now + 120 + (at % 10_000);
      if (variant === 'none') return `${b64({ alg: 'none', typ })}.${b64(payload)}.`;
      if (variant === 'hs256') {
        const secret = new TextEncoder().encode(['secret', JSON.stringify(jwk), jwk.x ?? 'x'][at % 3]!);
        return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: jwk.kid!, typ }).sign(secret);
      }
      const signed = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ }).sign(variant === 'other-key' ? other : key);
      const [h, p, s] = signed.split('.') as [string, string, string];
      // The last base64url character of a 64-byte signature carries padding bits: flip one before it.
      const flip = (text: string, i: number) => text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
      if (variant === 'flip-signature') return `${h}.${p}.${flip(s, at % (s.length - 1))}`;
      if (variant === 'flip-payload') return `${h}.${flip(p, at % (p.length - 1))}.${s}`;
      if (variant === 'swap-payload') return `${h}.${b64({ ...payload, scope: 'system/*.cruds', sub: 'someone-else' })}.${s}`;
      return signed;
    };
    const variant = fc.constantFrom<Variant>('aud', 'iss', 'expired', 'nbf', 'no-exp', 'no-sub', 'empty-sub', 'scope-type', 'patient', 'typ', 'none', 'hs256', 'other-key', 'flip-signature', 'flip-payload', 'swap-payload');
    const authorization = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(variant, fc.nat()).map(([v, at]) => ({ kind: 'token' as const, v, at })) },
      { weight: 2, arbitrary: fc.constantFrom('', 'Bearer', 'Bearer ', 'Basic Zm9vOmJhcg==', 'Bearer a.b.c', 'Bearer ...', 'Bearer eyJhbGciOiJub25lIn0.e30.', 'Token abc', 'Bearer abc def', 'Bearer "abc"', 'Bearer a=b', 'Bearer ' + 'a'.repeat(9000), 'Digest x').map((raw) => ({ kind: 'raw' as const, raw })) },
      { weight: 1, arbitrary: headerText.map((raw) => ({ kind: 'raw' as const, raw: `Bearer ${raw}x` })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'missing' as const }) },
      { weight: 1, arbitrary: fc.nat().map((at) => ({ kind: 'prefix' as const, at })) },
    );
    const target = fc.constantFrom<FuzzRequest>(
      { method: 'POST', path: 'Patient', headers: JSON_TYPE, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Intruder' }] }) },
      { method: 'PUT', path: 'Patient/fz-pat-1', headers: JSON_TYPE, body: JSON.stringify({ ...SEEDED[0], gender: 'female' }) },
      { method: 'DELETE', path: 'Observation/fz-obs' },
      { method: 'GET', path: 'Patient/fz-pat-1' },
      { method: 'GET', path: 'Observation?subject=Patient/fz-pat-1' },
      { method: 'POST', path: '', headers: JSON_TYPE, body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: 'Patient/fz-pat-1' } }] }) },
      { method: 'GET', path: 'AuditEvent' },
    );
    await holds(
      t,
      fc.asyncProperty(target, authorization, async (tgt, auth) => {
        let value: string | null;
        if (auth.kind === 'missing') value = null;
        else if (auth.kind === 'raw') value = auth.raw;
        else if (auth.kind === 'prefix') value = `Bearer ${fz.token.slice(0, auth.at % fz.token.length)}`; // a valid token, cut short
        else value = `Bearer ${await sign(auth.v, auth.at)}`;
        const res = await fz.check({ ...tgt, authorization: value }, { status: (s) => s === 401 });
        if (!/^Bearer realm=/.test(res.headers.get('www-authenticate') ?? '')) throw new Error(`401 without a Bearer challenge: ${res.headers.get('www-authenticate')}`);
      }),
      40,
      0.3,
    );
    await fz.settle(t, 'tokens');
  });

  await t.test('the auditor API under odd parameters: proofs, entries, checkpoints and bundles', async (t) => {
    const size = fz.server.app.ledger.size();
    const number = fc.oneof(
      fc.integer({ min: 0, max: size + 5 }).map(String),
      fc.constantFrom('-1', '0', '01', '1.0', '1e3', '9007199254740991', '9007199254740992', '99999999999999999999', '', ' 1', '0x10', 'NaN', '%00'),
      fc.string({ maxLength: 6 }).filter((s) => /^[\x21-\x7e]*$/.test(s)).map(encodeURIComponent),
    );
    const endpoint = fc.constantFrom(
      ['checkpoints', ['from', 'limit']],
      ['entries', ['start', 'end']],
      ['proof/inclusion', ['index', 'size']],
      ['proof/consistency', ['from', 'to']],
      ['bundle', ['index']],
    ) as fc.Arbitrary<[string, string[]]>;
    await holds(
      t,
      fc.asyncProperty(endpoint, fc.array(fc.tuple(fc.oneof({ weight: 5, arbitrary: fc.nat({ max: 2 }) }, fc.constant(-1)), number), { maxLength: 4 }), async ([name, params], pairs) => {
        const qs = pairs.map(([i, v]) => `${i === -1 ? 'bogus' : params[i % params.length]}=${v}`).join('&');
        await fz.check({ method: 'GET', path: `/ledger/${name}${qs ? `?${qs}` : ''}` });
      }),
      30,
      0.3,
    );
    await fz.settle(t, 'auditor API');
  });
});
