import { createPublicKey } from 'node:crypto';
import t from 'tap';
import { UnsecuredJWT, generateKeyPair } from 'jose';
import type { JWTPayload } from 'jose';
import { FhirError } from '../../src/errors.ts';
import { loadDevIssuer } from '../../src/consent/dev-issuer.ts';
import { createTokenVerifier } from '../../src/consent/token.ts';
import { configFor, devPrivateKey, frozenClock, signToken, tempDir } from './fixtures/helpers.ts';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const dir = await tempDir(t);
const config = configFor(dir);
const clock = frozenClock();
const dev = await loadDevIssuer(config, { now: clock.now });
const verifier = await createTokenVerifier({ config, devIssuer: dev, now: clock.now });
const { key: devKey, kid } = await devPrivateKey(dir);
const realm = `Bearer realm="${config.baseUrl}"`;

/** Claims the dev issuer would sign, at the frozen clock's time. */
function claims(change: Record<string, unknown> = {}): JWTPayload {
  const iat = clock.seconds();
  const all: Record<string, unknown> = { iss: dev.issuer, sub: 'u1', aud: config.baseUrl, iat, exp: iat + 300, scope: 'system/*.rs', ...change };
  for (const name of Object.keys(change)) if (change[name] === undefined) delete all[name];
  return all;
}

async function rejects(t: Test, header: string | undefined, code: string, token?: string) {
  const error = await verifier.verify(header).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(error instanceof FhirError, `${code}: a FhirError`);
  if (!(error instanceof FhirError)) return;
  t.equal(error.code, code);
  t.equal(error.status, 401);
  t.equal(error.issueType, 'login');
  const challenge = error.headers['www-authenticate'] ?? '';
  if (code === 'ERR_TOKEN_MISSING' || code === 'ERR_TOKEN_SCHEME') {
    t.equal(challenge, realm);
  } else {
    t.match(challenge, new RegExp(`^Bearer realm="[^"]+", error="invalid_token", error_description="[^"]+"$`));
  }
  // Nothing of the token comes back: neither its parts nor any claim value.
  for (const part of (token ?? '').split('.').filter((p) => p.length > 8)) {
    t.notOk(challenge.includes(part) || error.message.includes(part), 'token not echoed');
  }
  t.notOk(/u1|system\/\*/.test(challenge + error.message), 'claim values not echoed');
}

t.test('a dev token verifies with every claim mapped', async (t) => {
  const token = await dev.sign({
    sub: 'Practitioner/dr1',
    scope: 'user/*.rs launch/patient',
    patient: 'p-1',
    fhirUser: 'Practitioner/dr1',
    clientId: 'app-7',
    ttlSeconds: 120,
  });
  const principal = await verifier.verify(`Bearer ${token}`);
  t.equal(principal.sub, 'Practitioner/dr1');
  t.equal(principal.issuer, `${config.origin}/dev-issuer`);
  t.same(principal.scopes, ['user/*.rs', 'launch/patient']);
  t.equal(principal.patient, 'p-1');
  t.equal(principal.fhirUser, 'Practitioner/dr1');
  t.equal(principal.clientId, 'app-7');
  t.equal(principal.expiresAt.getTime(), (clock.seconds() + 120) * 1000);
  t.match(principal.jti, /^[0-9a-f-]{36}$/);
  t.equal(principal.claims.aud, config.baseUrl);
  t.same(verifier.issuers, [dev.issuer]);
  t.ok(await verifier.verify(`bearer   ${token}`), 'scheme is case-insensitive, extra spaces allowed');
});

t.test('missing, foreign-scheme and malformed headers', async (t) => {
  await rejects(t, undefined, 'ERR_TOKEN_MISSING');
  await rejects(t, '', 'ERR_TOKEN_MISSING');
  await rejects(t, 'Basic dXNlcjpwYXNz', 'ERR_TOKEN_SCHEME');
  await rejects(t, 'Bearertoken', 'ERR_TOKEN_SCHEME');
  await rejects(t, 'Bearer', 'ERR_TOKEN_MALFORMED');
  await rejects(t, 'Bearer a b', 'ERR_TOKEN_MALFORMED');
  await rejects(t, 'Bearer not-a-jwt', 'ERR_TOKEN_MALFORMED');
  await rejects(t, 'Bearer e30.e30', 'ERR_TOKEN_MALFORMED');
  await rejects(t, 'Bearer a.b.c.d.e', 'ERR_TOKEN_MALFORMED');
  await rejects(t, 'Bearer !!!.???.###', 'ERR_TOKEN_MALFORMED');
  const valid = await dev.sign({ sub: 'u1', scope: 'system/*.rs' });
  const [h, , s] = valid.split('.');
  const notJson = Buffer.from('not json').toString('base64url');
  await rejects(t, `Bearer ${h}.${notJson}.${s}`, 'ERR_TOKEN_MALFORMED');
});

t.test('signature, issuer, key and algorithm failures', async (t) => {
  const valid = await dev.sign({ sub: 'u1', scope: 'system/*.rs' });
  const [h, p, s] = valid.split('.') as [string, string, string];
  const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
  await rejects(t, `Bearer ${h}.${p}.${flipped}`, 'ERR_TOKEN_SIGNATURE', valid);
  const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: 'system/*.cruds' })).toString('base64url');
  await rejects(t, `Bearer ${h}.${widened}.${s}`, 'ERR_TOKEN_SIGNATURE');

  const other = await generateKeyPair('ES256');
  const forged = await signToken(other.privateKey, { alg: 'ES256', kid, typ: 'at+jwt' }, claims());
  await rejects(t, `Bearer ${forged}`, 'ERR_TOKEN_SIGNATURE', forged);
  const unknownKid = await signToken(devKey, { alg: 'ES256', kid: 'no-such-key' }, claims());
  await rejects(t, `Bearer ${unknownKid}`, 'ERR_TOKEN_KEY', unknownKid);

  const untrusted = await signToken(devKey, { alg: 'ES256', kid }, claims({ iss: 'https://evil.example' }));
  await rejects(t, `Bearer ${untrusted}`, 'ERR_TOKEN_ISSUER', untrusted);
  const noIss = await signToken(devKey, { alg: 'ES256', kid }, claims({ iss: undefined }));
  await rejects(t, `Bearer ${noIss}`, 'ERR_TOKEN_ISSUER', noIss);

  const none = new UnsecuredJWT(claims()).encode();
  await rejects(t, `Bearer ${none}`, 'ERR_TOKEN_ALGORITHM', none);
  // The classic key-confusion attack: HS256 keyed with the issuer's public key bytes.
  const publicPem = createPublicKey({ key: dev.jwks.keys[0]!, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  for (const secret of [Buffer.from(publicPem), Buffer.from(JSON.stringify(dev.jwks.keys[0]))]) {
    const hs = await signToken(new Uint8Array(secret), { alg: 'HS256', kid }, claims());
    await rejects(t, `Bearer ${hs}`, 'ERR_TOKEN_ALGORITHM', hs);
  }
  const es384 = await generateKeyPair('ES384');
  const wrongAlg = await signToken(es384.privateKey, { alg: 'ES384', kid }, claims());
  await rejects(t, `Bearer ${wrongAlg}`, 'ERR_TOKEN_ALGORITHM', wrongAlg);
});

t.test('time, audience, type and claim failures', async (t) => {
  const token = await dev.sign({ sub: 'u1', scope: 'system/*.rs', ttlSeconds: 60 });
  clock.advance(60 + 29);
  t.ok(await verifier.verify(`Bearer ${token}`), 'within the 30 s clock tolerance');
  clock.advance(2);
  await rejects(t, `Bearer ${token}`, 'ERR_TOKEN_EXPIRED', token);

  const early = await signToken(devKey, { alg: 'ES256', kid }, claims({ nbf: clock.seconds() + 120 }));
  await rejects(t, `Bearer ${early}`, 'ERR_TOKEN_NOT_YET_VALID', early);

  for (const aud of ['http://127.0.0.1:8080/fhir/', 'https://other.example/fhir', ['x', 'y']]) {
    const wrongAud = await signToken(devKey, { alg: 'ES256', kid }, claims({ aud }));
    await rejects(t, `Bearer ${wrongAud}`, 'ERR_TOKEN_AUDIENCE', wrongAud);
  }
  const listAud = await signToken(devKey, { alg: 'ES256', kid }, claims({ aud: ['x', config.baseUrl] }));
  t.ok(await verifier.verify(`Bearer ${listAud}`), 'aud list containing the base URL');

  for (const typ of ['JWT', 'at+JWT', 'application/at+jwt', undefined]) {
    const header = typ === undefined ? { alg: 'ES256', kid } : { alg: 'ES256', kid, typ };
    const typed = await signToken(devKey, header, claims());
    t.ok(await verifier.verify(`Bearer ${typed}`), `typ ${typ}`);
  }
  for (const typ of ['dpop+jwt', 'JOSE']) {
    const typed = await signToken(devKey, { alg: 'ES256', kid, typ }, claims());
    await rejects(t, `Bearer ${typed}`, 'ERR_TOKEN_TYPE', typed);
  }

  const cases: Array<[Record<string, unknown>, string]> = [
    [{ exp: undefined }, ': exp'],
    [{ sub: undefined }, ': sub'],
    [{ patient: 'Patient/1' }, ': patient'],
    [{ scope: ['system/*.rs'] }, ': scope'],
  ];
  for (const [change, named] of cases) {
    const bad = await signToken(devKey, { alg: 'ES256', kid }, claims(change));
    await rejects(t, `Bearer ${bad}`, 'ERR_TOKEN_CLAIMS', bad);
    const error = (await verifier.verify(`Bearer ${bad}`).catch((e: unknown) => e)) as FhirError;
    t.ok(error.headers['www-authenticate']?.includes(named), `names ${named}`);
  }
});

t.test('a verified token is remembered, frozen, and still expires on time', async (t) => {
  const token = await dev.sign({ sub: 'u1', scope: 'system/*.rs', ttlSeconds: 600 });
  const first = await verifier.verify(`Bearer ${token}`);
  t.equal(await verifier.verify(`Bearer ${token}`), first, 'the same principal, without a second signature check');
  t.ok(Object.isFrozen(first));
  const uncached = await createTokenVerifier({ config, devIssuer: dev, now: clock.now, cacheSize: 0 });
  t.not(await uncached.verify(`Bearer ${token}`), await uncached.verify(`Bearer ${token}`), 'cacheSize 0: verified each time');
  clock.advance(600 + 31);
  await rejects(t, `Bearer ${token}`, 'ERR_TOKEN_EXPIRED', token);
});

t.test('the dev issuer is trusted only when the config enables it', async (t) => {
  const off = await createTokenVerifier({ config: { ...config, devIssuer: false }, now: clock.now });
  t.same(off.issuers, []);
  const token = await dev.sign({ sub: 'u1', scope: 'system/*.rs' });
  await t.rejects(off.verify(`Bearer ${token}`), { code: 'ERR_TOKEN_ISSUER' });
  const loaded = await createTokenVerifier({ config, now: clock.now });
  t.equal((await loaded.verify(`Bearer ${token}`)).sub, 'u1', 'loads the same key from the data dir');
});
