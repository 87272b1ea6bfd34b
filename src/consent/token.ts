/**
 * Bearer token verification (RFC 6750, RFC 9068 JWT access tokens) with jose: the token's `iss` picks one of
 * the trusted issuers, whose JWKS and algorithm list then verify it fully (signature, `iss`, `aud` = the FHIR
 * base URL, `exp` required). Every failure is a 401 with a stable code and a WWW-Authenticate challenge that
 * never echoes the token; an issuer whose keys cannot be fetched is a 503, not the caller's fault.
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors as jose, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { ConfigError } from '../config.ts';
import type { Config } from '../config.ts';
import { FhirError, errors } from '../errors.ts';
import { loadDevIssuer } from './dev-issuer.ts';
import type { DevIssuer } from './dev-issuer.ts';
import { PrincipalCache, principalFromClaims } from './principal.ts';
import type { Principal } from './principal.ts';

/** Asymmetric algorithms only: never `none`, never HS* (a shared secret cannot belong to a public JWKS). */
export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'PS256', 'ES256', 'ES384', 'EdDSA'];
export const CLOCK_TOLERANCE_SECONDS = 30;
/** Verified tokens remembered (see PrincipalCache); bounds how long a key removed from a JWKS still works. */
export const TOKEN_CACHE_SECONDS = 60;
/** A file JWKS is re-read on an unknown kid (key rotation) at most this often. */
export const FILE_JWKS_RELOAD_SECONDS = 30;
/** `typ` values accepted (RFC 9068 §2.1 `at+jwt`, plain `JWT`, or absent), compared case-insensitively. */
const ACCEPTED_TYPES = new Set(['at+jwt', 'application/at+jwt', 'jwt', 'application/jwt']);
/** RFC 6750 §2.1: `Bearer` 1*SP b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

const DESCRIPTIONS: Record<string, string> = {
  ERR_TOKEN_MISSING: 'An access token is required',
  ERR_TOKEN_SCHEME: 'The Authorization header must use the Bearer scheme',
  ERR_TOKEN_MALFORMED: 'The access token is not a well-formed signed JWT',
  ERR_TOKEN_ALGORITHM: 'The access token is signed with an algorithm this server does not accept',
  ERR_TOKEN_ISSUER: 'The access token was not issued by a trusted issuer',
  ERR_TOKEN_KEY: "The access token's signing key is not among its issuer's keys",
  ERR_TOKEN_SIGNATURE: 'The access token signature is invalid',
  ERR_TOKEN_EXPIRED: 'The access token has expired',
  ERR_TOKEN_NOT_YET_VALID: 'The access token is not valid yet',
  ERR_TOKEN_AUDIENCE: 'The access token is not meant for this server',
  ERR_TOKEN_TYPE: 'The access token type is not accepted',
  ERR_TOKEN_CLAIMS: 'The access token lacks a required claim or has an invalid one',
};

/** Claim names that may appear in a description: ours, never a value from the token. */
const NAMED_CLAIMS = new Set(['exp', 'sub', 'iat', 'nbf', 'scope', 'patient', 'fhirUser', 'client_id', 'azp', 'jti']);

export interface TokenVerifierOptions {
  config: Pick<Config, 'baseUrl' | 'origin' | 'dataDir' | 'devIssuer' | 'trustedIssuers'>;
  /** The already loaded development issuer; loaded from the data dir when the config enables it and none is given. */
  devIssuer?: DevIssuer;
  /** Clock for exp/nbf checks and file JWKS reloads (tests freeze it). */
  now?: () => Date;
  /** How many verified tokens to remember (default 10,000; 0 turns the cache off). */
  cacheSize?: number;
}

export interface TokenVerifier {
  /** Verifies an `Authorization` header value; throws a 401 FhirError (or 503 when an issuer's keys are unreachable). */
  verify(authorization: string | undefined): Promise<Principal>;
  /** The trusted issuer identifiers, dev issuer first when enabled. */
  readonly issuers: string[];
}

interface TrustedKeys {
  getKey: JWTVerifyGetKey;
  algorithms: string[];
}

/** RFC 6750 §3 challenge; realm and description are quoted-strings. */
export function bearerChallenge(realm: string, error?: { code: string; description: string }): string {
  const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;
  const challenge = `Bearer realm=${quote(realm)}`;
  return error ? `${challenge}, error=${quote(error.code)}, error_description=${quote(error.description)}` : challenge;
}

/** Marks errors of an issuer's key source (network, bad JWKS document) apart from errors of the token. */
class KeySourceError extends Error {}

async function readJwksFile(issuer: string, uri: string): Promise<JSONWebKeySet> {
  const bad = (why: string, cause?: unknown) =>
    new ConfigError(`JWKS of trusted issuer ${issuer} (${uri}) ${why}`, cause === undefined ? undefined : { cause });
  let parsed: JSONWebKeySet;
  try {
    parsed = JSON.parse(await fs.readFile(fileURLToPath(uri), 'utf8')) as JSONWebKeySet;
  } catch (error) {
    throw bad('cannot be read as JSON', error);
  }
  try {
    createLocalJWKSet(parsed);
  } catch (error) {
    throw bad('is not a JSON Web Key Set', error);
  }
  const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];
  if (parsed.keys.some((key) => privateMembers.some((member) => member in key))) {
    throw bad('holds private or symmetric key material; publish public keys only');
  }
  return parsed;
}

/** A file JWKS that is read again when a token names a kid it lacks, so a rotated key needs no restart. */
async function fileKeys(issuer: string, uri: string, now: () => Date): Promise<JWTVerifyGetKey> {
  let current = createLocalJWKSet(await readJwksFile(issuer, uri));
  let loadedAt = now().getTime();
  let reload: Promise<void> | undefined;
  return async (header, token) => {
    try {
      return await current(header, token);
    } catch (error) {
      if (!(error instanceof jose.JWKSNoMatchingKey)) throw error;
      if (reload === undefined) {
        // The cooldown starts before the read, so a file that fails to load is not re-read on every request.
        if (now().getTime() - loadedAt < FILE_JWKS_RELOAD_SECONDS * 1000) throw error;
        loadedAt = now().getTime();
        reload = readJwksFile(issuer, uri)
          .then((jwks) => {
            current = createLocalJWKSet(jwks);
          })
          .finally(() => {
            reload = undefined;
          });
      }
      try {
        await reload;
      } catch (cause) {
        throw new KeySourceError('file JWKS reload failed', { cause });
      }
      return current(header, token);
    }
  };
}

function remoteKeys(uri: string): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(uri));
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (error instanceof jose.JWKSNoMatchingKey || error instanceof jose.JWKSMultipleMatchingKeys) throw error;
      if (error instanceof jose.JOSENotSupported || error instanceof jose.JOSEAlgNotAllowed) throw error;
      throw new KeySourceError('remote JWKS unavailable', { cause: error });
    }
  };
}

function codeOf(error: unknown): { code: string; claim?: string } {
  if (error instanceof jose.JWTExpired) return { code: 'ERR_TOKEN_EXPIRED' };
  if (error instanceof jose.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return { code: 'ERR_TOKEN_AUDIENCE' };
    if (error.claim === 'iss') return { code: 'ERR_TOKEN_ISSUER' };
    if (error.claim === 'nbf') return { code: 'ERR_TOKEN_NOT_YET_VALID' };
    return { code: 'ERR_TOKEN_CLAIMS', claim: error.claim };
  }
  if (error instanceof jose.JWSSignatureVerificationFailed) return { code: 'ERR_TOKEN_SIGNATURE' };
  if (error instanceof jose.JWKSNoMatchingKey || error instanceof jose.JWKSMultipleMatchingKeys) return { code: 'ERR_TOKEN_KEY' };
  if (error instanceof jose.JOSEAlgNotAllowed || error instanceof jose.JOSENotSupported) return { code: 'ERR_TOKEN_ALGORITHM' };
  return { code: 'ERR_TOKEN_MALFORMED' };
}

/** Builds the verifier for the trusted issuers of `config`; reads file JWKS (and the dev key) now, so a bad one fails at start. */
export async function createTokenVerifier(options: TokenVerifierOptions): Promise<TokenVerifier> {
  const { config } = options;
  const now = options.now ?? (() => new Date());
  const trusted = new Map<string, TrustedKeys>();

  if (config.devIssuer) {
    const dev = options.devIssuer ?? (await loadDevIssuer(config));
    // The dev issuer signs with one ES256 key; accepting anything else for it would only widen the attack surface.
    trusted.set(dev.issuer, { getKey: createLocalJWKSet(dev.jwks), algorithms: ['ES256'] });
  }
  for (const { issuer, jwksUri } of config.trustedIssuers) {
    if (trusted.has(issuer)) throw new ConfigError(`Issuer ${issuer} is configured twice (or clashes with the dev issuer)`);
    const getKey = jwksUri.startsWith('file:') ? await fileKeys(issuer, jwksUri, now) : remoteKeys(jwksUri);
    trusted.set(issuer, { getKey, algorithms: TOKEN_ALGORITHMS });
  }

  const cache = new PrincipalCache(options.cacheSize ?? 10_000, TOKEN_CACHE_SECONDS * 1000);
  const realm = config.baseUrl;
  // The jose error is not kept as `cause`: it carries the token's claims, which must not reach the logs.
  const fail = (code: string, claim?: string): FhirError => {
    const base = DESCRIPTIONS[code] ?? DESCRIPTIONS.ERR_TOKEN_MALFORMED!;
    const description = claim !== undefined && NAMED_CLAIMS.has(claim) ? `${base}: ${claim}` : base;
    const challenge =
      code === 'ERR_TOKEN_MISSING' || code === 'ERR_TOKEN_SCHEME'
        ? bearerChallenge(realm)
        : bearerChallenge(realm, { code: 'invalid_token', description });
    return errors.unauthorized(description, code, challenge);
  };

  async function verify(authorization: string | undefined): Promise<Principal> {
    if (authorization === undefined || authorization.trim() === '') throw fail('ERR_TOKEN_MISSING');
    if (!/^Bearer(?:\s|$)/i.test(authorization.trimStart())) throw fail('ERR_TOKEN_SCHEME');
    const token = BEARER.exec(authorization.trim())?.[1];
    if (token === undefined) throw fail('ERR_TOKEN_MALFORMED');
    const at = now();
    const cached = cache.get(token, at.getTime());
    if (cached !== undefined) return cached;

    // Unverified, and used for one thing only: choosing whose keys verify the token.
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw fail('ERR_TOKEN_MALFORMED');
    }
    const keys = typeof iss === 'string' ? trusted.get(iss) : undefined;
    if (keys === undefined || typeof iss !== 'string') throw fail('ERR_TOKEN_ISSUER');

    let verified;
    try {
      verified = await jwtVerify(token, keys.getKey, {
        algorithms: keys.algorithms,
        issuer: iss,
        audience: config.baseUrl,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: at,
      });
    } catch (error) {
      if (error instanceof KeySourceError) {
        throw errors.unavailable(`The keys of token issuer ${iss} cannot be fetched`, 'ERR_TOKEN_JWKS_UNAVAILABLE', error.cause);
      }
      const { code, claim } = codeOf(error);
      throw fail(code, claim);
    }
    const typ = verified.protectedHeader.typ;
    if (typ !== undefined && (typeof typ !== 'string' || !ACCEPTED_TYPES.has(typ.toLowerCase()))) throw fail('ERR_TOKEN_TYPE');

    const mapped = principalFromClaims(verified.payload);
    if (!mapped.ok) throw fail('ERR_TOKEN_CLAIMS', mapped.claim);
    cache.set(token, mapped.principal, at.getTime(), CLOCK_TOLERANCE_SECONDS * 1000);
    return mapped.principal;
  }

  return { verify, issuers: [...trusted.keys()] };
}
