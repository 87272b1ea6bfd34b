import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { ConfigError } from '../../src/config.ts';
import { createTokenVerifier, FILE_JWKS_RELOAD_SECONDS } from '../../src/consent/token.ts';
import { configFor, frozenClock, signToken, tempDir } from './fixtures/helpers.ts';

const IDP = 'https://idp.example/realms/hospital';

async function keyPair(alg: string): Promise<{ privateKey: CryptoKey; jwk: JWK; kid: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, jwk: { ...jwk, kid, alg, use: 'sig' }, kid };
}

async function writeJwks(file: string, keys: JWK[]) {
  await fs.writeFile(file, JSON.stringify({ keys }));
}

const dir = await tempDir(t);
const clock = frozenClock();
const jwksFile = path.join(dir, 'idp-jwks.json');
const rsa = await keyPair('RS256');
const ed = await keyPair('EdDSA');
await writeJwks(jwksFile, [rsa.jwk, ed.jwk]);
const trusted = JSON.stringify([{ issuer: IDP, jwksUri: pathToFileURL(jwksFile).href }]);
const config = configFor(dir, { TRUSTED_ISSUERS: trusted, DEV_ISSUER: 'off' });
const verifier = await createTokenVerifier({ config, now: clock.now });

function claims(change: JWTPayload = {}): JWTPayload {
  const iat = clock.seconds();
  return { iss: IDP, sub: 'svc-1', aud: config.baseUrl, iat, exp: iat + 300, azp: 'ehr', scope: 'system/Patient.rs', ...change };
}

t.test('an external issuer with a file:/// JWKS verifies RS256 and EdDSA tokens', async (t) => {
  t.same(verifier.issuers, [IDP]);
  for (const key of [rsa, ed]) {
    const token = await signToken(key.privateKey, { alg: key.jwk.alg!, kid: key.kid, typ: 'JWT' }, claims());
    const principal = await verifier.verify(`Bearer ${token}`);
    t.equal(principal.issuer, IDP);
    t.equal(principal.sub, 'svc-1');
    t.equal(principal.clientId, 'ehr', 'azp maps to clientId');
    t.same(principal.scopes, ['system/Patient.rs']);
  }
});

t.test('a foreign key, issuer or algorithm is refused', async (t) => {
  // RSA key generation is slow; an Ed25519 stranger exercises the same paths.
  const stranger = await keyPair('EdDSA');
  const sameKid = await signToken(stranger.privateKey, { alg: 'EdDSA', kid: ed.kid }, claims());
  await t.rejects(verifier.verify(`Bearer ${sameKid}`), { code: 'ERR_TOKEN_SIGNATURE', status: 401 });
  const ownKid = await signToken(stranger.privateKey, { alg: 'EdDSA', kid: stranger.kid }, claims());
  await t.rejects(verifier.verify(`Bearer ${ownKid}`), { code: 'ERR_TOKEN_KEY', status: 401 });
  const noKid = await signToken(stranger.privateKey, { alg: 'EdDSA' }, claims());
  await t.rejects(verifier.verify(`Bearer ${noKid}`), { code: 'ERR_TOKEN_SIGNATURE' }, 'the one EdDSA key is tried');
  const otherIss = await signToken(rsa.privateKey, { alg: 'RS256', kid: rsa.kid }, claims({ iss: 'https://idp.example/realms/other' }));
  await t.rejects(verifier.verify(`Bearer ${otherIss}`), { code: 'ERR_TOKEN_ISSUER' });
  // ES512 is a fine algorithm, but not on the explicit list: refused before any key is looked up.
  const es512 = await keyPair('ES512');
  const es512Token = await signToken(es512.privateKey, { alg: 'ES512', kid: es512.kid }, claims());
  await t.rejects(verifier.verify(`Bearer ${es512Token}`), { code: 'ERR_TOKEN_ALGORITHM' });
});

t.test('a rotated file JWKS is picked up after the reload cooldown', async (t) => {
  const rotated = await keyPair('ES256');
  await writeJwks(jwksFile, [rotated.jwk]);
  const token = await signToken(rotated.privateKey, { alg: 'ES256', kid: rotated.kid }, claims({ exp: clock.seconds() + 3600 }));
  await t.rejects(verifier.verify(`Bearer ${token}`), { code: 'ERR_TOKEN_KEY' }, 'within the cooldown');
  clock.advance(FILE_JWKS_RELOAD_SECONDS + 1);
  t.equal((await verifier.verify(`Bearer ${token}`)).sub, 'svc-1');
  const old = await signToken(rsa.privateKey, { alg: 'RS256', kid: rsa.kid }, claims());
  await t.rejects(verifier.verify(`Bearer ${old}`), { code: 'ERR_TOKEN_KEY' }, 'the removed key is gone');

  await fs.writeFile(jwksFile, 'not json');
  clock.advance(FILE_JWKS_RELOAD_SECONDS + 1);
  await t.rejects(verifier.verify(`Bearer ${old}`), { code: 'ERR_TOKEN_JWKS_UNAVAILABLE', status: 503 });
  t.equal((await verifier.verify(`Bearer ${token}`)).sub, 'svc-1', 'known keys keep working');
  await writeJwks(jwksFile, [rsa.jwk, ed.jwk]);
});

t.test('an unreachable https JWKS is a 503, not the caller’s fault', async (t) => {
  const remote = configFor(dir, {
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: IDP, jwksUri: 'https://127.0.0.1:1/jwks.json' }]),
    DEV_ISSUER: 'off',
  });
  const remoteVerifier = await createTokenVerifier({ config: remote, now: clock.now });
  const token = await signToken(rsa.privateKey, { alg: 'RS256', kid: rsa.kid }, claims());
  const error = await remoteVerifier.verify(`Bearer ${token}`).catch((e: unknown) => e);
  t.match(error, { code: 'ERR_TOKEN_JWKS_UNAVAILABLE', status: 503, headers: { 'retry-after': '1' } });
});

t.test('bad issuer configuration fails at start', async (t) => {
  const build = (issuers: unknown, env: Record<string, string> = {}) =>
    createTokenVerifier({ config: configFor(dir, { TRUSTED_ISSUERS: JSON.stringify(issuers), ...env }) });
  const privateFile = path.join(dir, 'private.json');
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  await writeJwks(privateFile, [await exportJWK(privateKey)]);
  await t.rejects(build([{ issuer: IDP, jwksUri: pathToFileURL(privateFile).href }], { DEV_ISSUER: 'off' }), ConfigError);
  await t.rejects(build([{ issuer: IDP, jwksUri: pathToFileURL(path.join(dir, 'absent.json')).href }], { DEV_ISSUER: 'off' }), ConfigError);
  const notASet = path.join(dir, 'not-a-set.json');
  await fs.writeFile(notASet, JSON.stringify({ kty: 'EC' }));
  await t.rejects(build([{ issuer: IDP, jwksUri: pathToFileURL(notASet).href }], { DEV_ISSUER: 'off' }), ConfigError);
  const good = { issuer: IDP, jwksUri: pathToFileURL(jwksFile).href };
  await t.rejects(build([good, good], { DEV_ISSUER: 'off' }), ConfigError, 'an issuer twice');
  await t.rejects(build([{ ...good, issuer: `${config.origin}/dev-issuer` }]), ConfigError, 'clashes with the dev issuer');
});
