/**
 * The FHIR core's own request and response: plain data, no fastify types. The HTTP adapter builds a FhirRequest;
 * batch and transaction entries build them too and go back through the same router.
 */
import { errors } from '../errors.ts';
import type { Resource } from '@medplum/fhirtypes';
import type { Agent } from '../ledger/types.ts';
import type { Principal } from '../consent/principal.ts';
import type { Repository } from './repository.ts';
import type { WorkUnit } from './work.ts';
import type { Validator } from './validate.ts';
import type { Capabilities } from './capability.ts';
import type { AuditLog } from './interactions/audit-event.ts';
import type { ExportJobs } from './export-jobs.ts';

export interface FhirRequest {
  method: string;
  /** Path below the FHIR base, without leading slash or query, e.g. `Patient/123/_history/2`. */
  path: string;
  query: Record<string, string[]>;
  headers: {
    ifMatch?: string;
    ifNoneMatch?: string;
    ifModifiedSince?: string;
    ifNoneExist?: string;
    prefer?: string;
    contentType?: string;
  };
  body?: unknown;
  /** Set by a transaction for its creates: the id it assigned up front so references could be rewritten. */
  assignedId?: string;
  /** Set by a transaction for its conditional entries: the ids their condition matched, found under its lock. */
  resolvedIds?: string[];
}

/** Decrypted resource bytes served as they are stored (no re-serialization on the hot read path). */
export interface RawResource {
  raw: Uint8Array;
}

/** Newline-delimited resources, sent as they are produced (a bulk export file: application/fhir+ndjson). */
export interface NdjsonBody {
  ndjson: AsyncIterable<Uint8Array>;
}

/** A plain JSON document that is not a resource (a bulk export manifest: application/json). */
export interface JsonBody {
  json: unknown;
}

export interface FhirResponse {
  status: number;
  body?: Resource | RawResource | NdjsonBody | JsonBody;
  /** lastModified is the version's instant (meta.lastUpdated): the HTTP layer writes it as an HTTP-date, Bundles keep it whole. */
  headers?: { etag?: string; lastModified?: string; location?: string; contentLocation?: string };
  /** True for create/update/patch responses, whose body `Prefer: return=` may replace. */
  written?: boolean;
}

/** Everything an interaction needs besides the request. */
export interface InteractionContext {
  baseUrl: string;
  principal: Principal | undefined;
  agent: Agent;
  repo: Repository;
  validator: Validator;
  capabilities: Capabilities;
  work: WorkUnit;
  /** A fresh unit of work: immediate for each batch entry, deferred for a whole transaction. */
  newWork(deferred: boolean): WorkUnit;
  /** The ledger and its search index, for the AuditEvent view (absent: AuditEvent is not served). */
  auditLog?: AuditLog;
  /** Bulk export jobs (absent: $export is not served). */
  exportJobs?: ExportJobs;
  /** Largest Bundle accepted (default MAX_BUNDLE_ENTRIES); the in-process bulk importer lifts it for big records. */
  maxBundleEntries?: number;
}

export function isRaw(body: FhirResponse['body']): body is RawResource {
  return body !== undefined && 'raw' in body;
}

export function isNdjson(body: FhirResponse['body']): body is NdjsonBody {
  return body !== undefined && 'ndjson' in body;
}

export function isJson(body: FhirResponse['body']): body is JsonBody {
  return body !== undefined && 'json' in body;
}

/**
 * The parameters of query strings (a URL's query, a POST _search form), repeated names kept in order. The object
 * has no prototype, so a parameter named `valueOf`, `constructor` or `__proto__` is an unknown parameter like any
 * other instead of an inherited method that `query[name] ??= []` would try to push onto.
 */
/**
 * The parameters of query strings (and form bodies), in order, decoded as application/x-www-form-urlencoded.
 * Unlike URLSearchParams, a malformed escape (`%zz`, a lone `%`) or escaped bytes that are not UTF-8 (`%FC`, Latin-1
 * `ü`) are a 400: silently searching for the literal text or for U+FFFD would answer a different question.
 */
export function parseQuery(...searches: string[]): Record<string, string[]> {
  const query: Record<string, string[]> = Object.create(null);
  for (const search of searches) {
    for (const pair of search.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1));
      (query[name] ??= []).push(value);
    }
  }
  return query;
}

function decodeComponent(text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    throw errors.badRequest(
      `The query has a malformed percent-encoding in '${text.slice(0, 80)}': escapes are %XX and must spell UTF-8`,
      undefined,
      'ERR_QUERY_ENCODING',
    );
  }
}

/** Splits a URL at its first `?`: a `?` inside the query is data (`name=a?b`), not a second separator. */
export function splitUrl(url: string): [path: string, search: string] {
  const question = url.indexOf('?');
  return question < 0 ? [url, ''] : [url.slice(0, question), url.slice(question + 1)];
}

export function firstQuery(query: Record<string, string[]>, name: string): string | undefined {
  return query[name]?.[0];
}
