/**
 * Parsing of the query parameters interactions share. Every malformed value is the caller's mistake: 400 with
 * the parameter named, never a 500.
 */
import { errors } from '../../errors.ts';
import type { FhirRequest } from '../request.ts';

/** Parameters the HTTP layer consumes for every interaction (http://hl7.org/fhir/R4/http.html#parameters). */
const TRANSPORT_PARAMETERS = new Set(['_format', '_pretty']);

export function rejectUnknownParameters(req: FhirRequest, known: Set<string>, what: string): void {
  const unknown = Object.keys(req.query).filter((name) => !known.has(name) && !TRANSPORT_PARAMETERS.has(name));
  if (unknown.length === 0) return;
  if (/handling\s*=\s*lenient/i.test(req.headers.prefer ?? '')) return;
  throw errors.badRequest(
    `Unknown or unsupported parameter${unknown.length > 1 ? 's' : ''} for ${what}: ${unknown.map((n) => `'${n.slice(0, 64)}'`).join(', ')}`,
    undefined,
    'ERR_UNKNOWN_PARAMETER',
  );
}

function single(query: Record<string, string[]>, name: string): string | undefined {
  const values = query[name];
  if (!values) return undefined;
  if (values.length > 1) throw errors.badRequest(`Parameter '${name}' may appear only once`, undefined, 'ERR_PARAMETER_REPEATED');
  return values[0];
}

/** `_count`: a whole number, at most `max` (a larger one is read as `max`); 0 asks for no entries. */
export function parseCount(query: Record<string, string[]>, fallback: number, max: number): number {
  const raw = single(query, '_count');
  if (raw === undefined) return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw errors.badRequest(`_count must be a whole number, got '${raw.slice(0, 40)}'`, undefined, 'ERR_BAD_PARAMETER');
  return Math.min(Number(raw), max);
}

export function parseCursor(query: Record<string, string[]>): number | undefined {
  const raw = single(query, '_cursor');
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw errors.badRequest(`_cursor is not a cursor this server issued`, undefined, 'ERR_BAD_PARAMETER');
  return Number(raw);
}

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** An R4 instant, returned as a normalized ISO string in UTC so it compares with stored lastUpdated values. */
export function parseInstant(query: Record<string, string[]>, name: string): string | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  const ms = INSTANT.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(ms)) throw errors.badRequest(`${name} must be an instant such as 2024-01-31T12:00:00Z, got '${raw.slice(0, 40)}'`, undefined, 'ERR_BAD_PARAMETER');
  return new Date(ms).toISOString();
}
