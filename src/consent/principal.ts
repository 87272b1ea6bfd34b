/**
 * Who is asking: the verified access token's claims mapped to the fields the rest of the server uses
 * (SMART App Launch 2.2 context claims, RFC 9068 access-token claims). Pure: no I/O, no clock.
 */
import type { JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';

export interface Principal {
  /** `sub`: the user or, for backend services, the client. Required (the ledger records it as the agent). */
  sub: string;
  /** `iss`, already checked against the trusted issuers. */
  issuer: string;
  /** `scope` split on spaces; empty when the token carries none (it then grants nothing). */
  scopes: string[];
  /** SMART `patient` launch context: a FHIR resource id. */
  patient?: string;
  /** SMART `fhirUser`: a `Type/id` reference, relative or absolute. */
  fhirUser?: string;
  /** RFC 9068 `client_id`, else OIDC `azp`. */
  clientId?: string;
  expiresAt: Date;
  jti?: string;
  /** The whole verified claims set, for claims this mapping does not name. */
  claims: Readonly<JWTPayload>;
}

/** FHIR R4 `id` datatype. */
export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Resource types SMART allows as `fhirUser` (App Launch 2.2, "fhirUser"). */
export const FHIR_USER_TYPES = ['Patient', 'Practitioner', 'PractitionerRole', 'RelatedPerson', 'Person'] as const;

const USER_REFERENCE = new RegExp(`^(?:https?://[^\\s]+/)?(${FHIR_USER_TYPES.join('|')})/([A-Za-z0-9\\-.]{1,64})$`);

/** True for `Practitioner/123` and `https://host/fhir/Practitioner/123` (no version, no query). */
export function isFhirUserReference(value: string): boolean {
  return USER_REFERENCE.test(value);
}

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Splits a `scope` claim; returns undefined when any token breaks RFC 6749's grammar. */
export function splitScope(scope: string): string[] | undefined {
  const tokens = scope.split(' ').filter((token) => token !== '');
  return tokens.every((token) => SCOPE_TOKEN.test(token)) ? tokens : undefined;
}

export type PrincipalResult = { ok: true; principal: Principal } | { ok: false; claim: string };

function optionalString(claims: JWTPayload, name: string): string | undefined | null {
  const value = claims[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * Maps claims that jose has already verified (signature, iss, aud, exp) to a Principal. A claim that is
 * present but unusable is an error rather than ignored: silently dropping `patient` would widen access.
 */
export function principalFromClaims(claims: JWTPayload): PrincipalResult {
  const fail = (claim: string): PrincipalResult => ({ ok: false, claim });
  if (typeof claims.sub !== 'string' || claims.sub === '') return fail('sub');
  if (typeof claims.iss !== 'string' || claims.iss === '') return fail('iss');
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return fail('exp');

  let scopes: string[] = [];
  if (claims.scope !== undefined) {
    const split = typeof claims.scope === 'string' ? splitScope(claims.scope) : undefined;
    if (split === undefined) return fail('scope');
    scopes = split;
  }
  const patient = optionalString(claims, 'patient');
  if (patient === null || (patient !== undefined && !FHIR_ID.test(patient))) return fail('patient');
  const fhirUser = optionalString(claims, 'fhirUser');
  if (fhirUser === null || (fhirUser !== undefined && !isFhirUserReference(fhirUser))) return fail('fhirUser');
  const clientIdClaim = optionalString(claims, 'client_id');
  if (clientIdClaim === null) return fail('client_id');
  const azp = optionalString(claims, 'azp');
  if (azp === null) return fail('azp');
  const jti = optionalString(claims, 'jti');
  if (jti === null) return fail('jti');

  const clientId = clientIdClaim ?? azp;
  const principal: Principal = {
    sub: claims.sub,
    issuer: claims.iss,
    scopes,
    expiresAt: new Date(claims.exp * 1000),
    claims,
    ...(patient !== undefined ? { patient } : {}),
    ...(fhirUser !== undefined ? { fhirUser } : {}),
    ...(clientId !== undefined ? { clientId } : {}),
    ...(jti !== undefined ? { jti } : {}),
  };
  return { ok: true, principal };
}

/**
 * Principals of tokens already verified, keyed by the exact token string, so a client that reuses its token
 * skips the signature check (ES256 costs ~0.1–0.2 ms of CPU per request here). An entry lives until the token
 * expires (plus the clock tolerance the verifier allows) or `ttlMs` passes, whichever is first, so a key
 * removed from an issuer's JWKS stops working within `ttlMs`. The least recently used entry is evicted first
 * (lru-cache: V8's Map makes delete-and-reinsert O(size)). Pure: the caller passes the time. Cached principals
 * are frozen: they are shared by every request with that token.
 */
export class PrincipalCache {
  readonly #entries: LRUCache<string, { principal: Principal; until: number }> | undefined;
  readonly #ttlMs: number;

  constructor(maxEntries: number, ttlMs: number) {
    this.#entries = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined;
    this.#ttlMs = ttlMs;
  }

  get size(): number {
    return this.#entries?.size ?? 0;
  }

  get(token: string, nowMs: number): Principal | undefined {
    const entry = this.#entries?.get(token);
    if (entry === undefined) return undefined;
    if (nowMs < entry.until) return entry.principal;
    this.#entries!.delete(token);
    return undefined;
  }

  set(token: string, principal: Principal, nowMs: number, toleranceMs: number): void {
    const until = Math.min(nowMs + this.#ttlMs, principal.expiresAt.getTime() + toleranceMs);
    if (this.#entries === undefined || until <= nowMs) return;
    Object.freeze(principal.scopes);
    Object.freeze(principal.claims);
    this.#entries.set(token, { principal: Object.freeze(principal), until });
  }
}
