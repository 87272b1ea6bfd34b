import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose';
import {
  DEV_TOKEN_DEFAULT_CLIENT_ID,
  DEV_TOKEN_DEFAULT_TTL,
  devIssuerKeyPath,
  loadDevIssuer,
} from '../../src/consent/dev-issuer.ts';
import { configFor, frozenClock, tempDir } from './fixtures/helpers.ts';

t.test('the key is created once, private to its owner, and reused', async (t) => {
  const dir = await tempDir(t);
  const config = configFor(dir);
  const first = await loadDevIssuer(config);
  const file = devIssuerKeyPath(dir);
  t.equal((await fs.stat(file)).mode & 0o777, 0o600);
  t.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
  t.equal(first.issuer, `${config.origin}/dev-issuer`);
  t.equal(first.jwksUri, `${config.origin}/dev-issuer/jwks.json`);

  t.equal(first.jwks.keys.length, 1);
  const publicJwk = first.jwks.keys[0]!;
  t.same(Object.keys(publicJwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'], 'public members only');
  t.equal(publicJwk.kid, await calculateJwkThumbprint(publicJwk), 'kid is the RFC 7638 thumbprint');
  t.equal(first.kid, publicJwk.kid);

  const before = await fs.readFile(file, 'utf8');
  const second = await loadDevIssuer(config);
  t.equal(second.kid, first.kid);
  t.equal(await fs.readFile(file, 'utf8'), before, 'file untouched on reuse');
});

t.test('loaders racing on a fresh data dir agree on one key', async (t) => {
  const dir = await tempDir(t);
  const issuers = await Promise.all(Array.from({ length: 8 }, () => loadDevIssuer(configFor(dir))));
  t.same(new Set(issuers.map((issuer) => issuer.kid)).size, 1);
  t.same(await fs.readdir(path.join(dir, 'keys')), ['dev-issuer.jwk.json'], 'no temp files left');
});

t.test('tokens carry the RFC 9068 header and claims', async (t) => {
  const dir = await tempDir(t);
  const clock = frozenClock();
  const config = configFor(dir, { BASE_URL: 'https://fhir.example:8443/fhir' });
  const issuer = await loadDevIssuer(config, { now: clock.now });

  const token = await issuer.sign({ sub: 'dev-cli', scope: 'system/*.cruds' });
  t.same(decodeProtectedHeader(token), { alg: 'ES256', kid: issuer.kid, typ: 'at+jwt' });
  const claims = decodeJwt(token);
  t.same(Object.keys(claims).sort(), ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub']);
  t.match(claims, {
    iss: 'https://fhir.example:8443/dev-issuer',
    sub: 'dev-cli',
    aud: 'https://fhir.example:8443/fhir',
    iat: clock.seconds(),
    exp: clock.seconds() + DEV_TOKEN_DEFAULT_TTL,
    scope: 'system/*.cruds',
    client_id: DEV_TOKEN_DEFAULT_CLIENT_ID,
  });

  const full = decodeJwt(
    await issuer.sign({ sub: 's', scope: 'patient/*.rs', ttlSeconds: 5, patient: 'p1', fhirUser: 'Patient/p1', clientId: 'c' }),
  );
  t.match(full, { exp: clock.seconds() + 5, patient: 'p1', fhirUser: 'Patient/p1', client_id: 'c' });
  t.not(full.jti, claims.jti, 'a fresh jti per token');
});

t.test('bad token requests are refused before signing', async (t) => {
  const issuer = await loadDevIssuer(configFor(await tempDir(t)));
  const ok = { sub: 's', scope: 'system/*.rs' };
  const cases: Array<[string, Record<string, unknown>]> = [
    ['ttl 0', { ttlSeconds: 0 }],
    ['ttl over a day', { ttlSeconds: 86_401 }],
    ['fractional ttl', { ttlSeconds: 1.5 }],
    ['empty scope', { scope: '  ' }],
    ['scope with a quote', { scope: 'a"b' }],
    ['empty sub', { sub: '' }],
    ['patient reference instead of id', { patient: 'Patient/1' }],
    ['fhirUser of a wrong type', { fhirUser: 'Organization/1' }],
    ['empty client id', { clientId: '' }],
  ];
  for (const [name, change] of cases) {
    await t.rejects(issuer.sign({ ...ok, ...change }), { code: 'ERR_DEV_TOKEN_REQUEST', status: 400 }, name);
  }
});

t.test('an unusable key file is reported, never replaced', async (t) => {
  const dir = await tempDir(t);
  const config = configFor(dir);
  const good = await loadDevIssuer(config);
  const file = devIssuerKeyPath(dir);
  const original = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, string>;
  const variants: Array<[string, string]> = [
    ['not JSON', '{'],
    ['public key only', JSON.stringify({ ...good.jwks.keys[0] })],
    ['kid edited', JSON.stringify({ ...original, kid: 'mine' })],
    ['wrong curve', JSON.stringify({ ...original, crv: 'P-384' })],
    ['private scalar garbled', JSON.stringify({ ...original, d: 'AAAA' })],
  ];
  for (const [name, body] of variants) {
    await fs.writeFile(file, body);
    await t.rejects(loadDevIssuer(config), { code: 'ERR_DEV_ISSUER_KEY' }, name);
    t.equal(await fs.readFile(file, 'utf8'), body, `${name}: left as found`);
  }
});

t.test('DEV_ISSUER: on (default) or off; anything else stops the server rather than leaving the issuer on', async (t) => {
  const { ConfigError, loadConfig: load } = await import('../../src/config.ts');
  t.equal(load({}).devIssuer, true);
  t.equal(load({ DEV_ISSUER: 'on' }).devIssuer, true);
  t.equal(load({ DEV_ISSUER: 'off' }).devIssuer, false);
  for (const bad of ['false', '0', 'no', 'OFF', 'disabled', 'true']) {
    t.throws(() => load({ DEV_ISSUER: bad }), ConfigError, bad);
  }
});
