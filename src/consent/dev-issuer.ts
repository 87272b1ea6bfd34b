/**
 * The node's own development token issuer: one ES256 key in `<dataDir>/keys/dev-issuer.jwk.json`, created on
 * first use and reused after, so tokens from `npm run token` keep working across restarts and whether or not
 * the server is running. Tokens are RFC 9068 JWT access tokens for this server's FHIR base URL.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK } from 'jose';
import type { Config } from '../config.ts';
import { errors } from '../errors.ts';
import { makeDirectory } from '../storage/make-dir.ts';
import { FHIR_ID, isFhirUserReference, splitScope } from './principal.ts';

export const DEV_ISSUER_PATH = '/dev-issuer';
export const DEV_ISSUER_JWKS_PATH = '/dev-issuer/jwks.json';
export const DEV_TOKEN_DEFAULT_TTL = 3600;
export const DEV_TOKEN_MAX_TTL = 86_400;
export const DEV_TOKEN_DEFAULT_CLIENT_ID = 'sealed-fhir-dev';
const ALG = 'ES256';

export interface DevTokenRequest {
  sub: string;
  /** Space-separated scopes (SMART grammar is checked where access is decided, not here). */
  scope: string;
  /** Lifetime in seconds, 1 … DEV_TOKEN_MAX_TTL; default DEV_TOKEN_DEFAULT_TTL. */
  ttlSeconds?: number;
  patient?: string;
  fhirUser?: string;
  /** Default DEV_TOKEN_DEFAULT_CLIENT_ID (RFC 9068 requires a client_id). */
  clientId?: string;
}

export interface DevIssuer {
  /** `${origin}/dev-issuer`: the `iss` of its tokens. */
  issuer: string;
  /** Where the server serves `jwks`: `${origin}/dev-issuer/jwks.json`. */
  jwksUri: string;
  kid: string;
  /** Public key only; safe to serve. */
  jwks: JSONWebKeySet;
  sign(request: DevTokenRequest): Promise<string>;
}

export interface DevIssuerOptions {
  /** Clock for `iat`/`exp` (tests freeze it). */
  now?: () => Date;
}

export function devIssuerKeyPath(dataDir: string): string {
  return path.join(dataDir, 'keys', 'dev-issuer.jwk.json');
}

export function devIssuerUrl(origin: string): string {
  return `${origin}${DEV_ISSUER_PATH}`;
}

function keyFileError(file: string, why: string, cause?: unknown) {
  return errors.internal(`Development issuer key ${file} is unusable: ${why}`, 'ERR_DEV_ISSUER_KEY', cause);
}

async function createKeyFile(file: string): Promise<void> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const body = `${JSON.stringify({ ...jwk, kid, alg: ALG, use: 'sig' }, null, 2)}\n`;
  // Written whole to a private temp file, then linked into place: link() fails if the key already exists, so a
  // server and a CLI starting together agree on one key and nobody ever reads a half-written file.
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await fs.unlink(temp);
  }
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function readKeyFile(file: string): Promise<{ kid: string; privateKey: CryptoKey; publicJwk: JWK }> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(await fs.readFile(file, 'utf8')) as JWK;
  } catch (error) {
    throw keyFileError(file, 'not a JSON Web Key', error);
  }
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d || !jwk.x || !jwk.y) {
    throw keyFileError(file, 'expected a private EC P-256 key');
  }
  const publicJwk: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  // The kid is the thumbprint; a mismatch means the file was edited by hand and tokens would not verify.
  if (jwk.kid !== kid) throw keyFileError(file, 'its kid is not the RFC 7638 thumbprint of the key');
  let privateKey: CryptoKey;
  try {
    privateKey = (await importJWK({ ...jwk, ext: false }, ALG)) as CryptoKey;
  } catch (error) {
    throw keyFileError(file, 'the key does not import', error);
  }
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: ALG, use: 'sig' } };
}

function checkRequest(request: DevTokenRequest): number {
  const bad = (message: string) => errors.badRequest(message, undefined, 'ERR_DEV_TOKEN_REQUEST');
  const ttl = request.ttlSeconds ?? DEV_TOKEN_DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > DEV_TOKEN_MAX_TTL) {
    throw bad(`ttl must be a whole number of seconds from 1 to ${DEV_TOKEN_MAX_TTL}`);
  }
  if (request.sub === '') throw bad('sub must not be empty');
  const scopes = splitScope(request.scope);
  if (scopes === undefined || scopes.length === 0) {
    throw bad('scope must be one or more space-separated scope tokens (printable ASCII, no quotes or backslashes)');
  }
  if (request.patient !== undefined && !FHIR_ID.test(request.patient)) {
    throw bad('patient must be a FHIR id (letters, digits, "-" and ".", at most 64)');
  }
  if (request.fhirUser !== undefined && !isFhirUserReference(request.fhirUser)) {
    throw bad('fhirUser must be a reference such as Practitioner/123 (Patient, Practitioner, PractitionerRole, RelatedPerson or Person)');
  }
  if (request.clientId === '') throw bad('clientId must not be empty');
  return ttl;
}

/** Loads the development issuer's key from the data dir, creating it on first use. */
export async function loadDevIssuer(
  config: Pick<Config, 'origin' | 'baseUrl' | 'dataDir'>,
  options: DevIssuerOptions = {},
): Promise<DevIssuer> {
  const now = options.now ?? (() => new Date());
  const file = devIssuerKeyPath(config.dataDir);
  await makeDirectory(path.dirname(file), 0o700);
  try {
    await fs.access(file);
  } catch {
    await createKeyFile(file);
  }
  const { kid, privateKey, publicJwk } = await readKeyFile(file);
  const issuer = devIssuerUrl(config.origin);

  return {
    issuer,
    jwksUri: `${config.origin}${DEV_ISSUER_JWKS_PATH}`,
    kid,
    jwks: { keys: [publicJwk] },
    async sign(request) {
      const ttl = checkRequest(request);
      const iat = Math.floor(now().getTime() / 1000);
      const claims: Record<string, string> = {
        scope: request.scope,
        client_id: request.clientId ?? DEV_TOKEN_DEFAULT_CLIENT_ID,
      };
      if (request.patient !== undefined) claims.patient = request.patient;
      if (request.fhirUser !== undefined) claims.fhirUser = request.fhirUser;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: ALG, kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setSubject(request.sub)
        .setAudience(config.baseUrl)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttl)
        .setJti(randomUUID())
        .sign(privateKey);
    },
  };
}
