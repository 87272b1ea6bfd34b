/**
 * Query parameters of the auditor API: non-negative decimal integers only, each at most once. Anything else is a
 * 400 OperationOutcome (ERR_LEDGER_PARAM) naming the parameter. Pure.
 */
import { errors } from '../../errors.ts';

export type Query = Record<string, string | string[] | undefined>;

const INTEGER = /^(0|[1-9]\d{0,15})$/;

/** The parameter's value; `fallback` when absent, or 400 when there is no fallback (the parameter is required). */
export function intParam(query: Query, name: string, fallback?: number): number {
  const raw = query[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw errors.badRequest(`Parameter '${name}' is required`, undefined, 'ERR_LEDGER_PARAM');
  }
  if (Array.isArray(raw)) throw errors.badRequest(`Parameter '${name}' is given more than once`, undefined, 'ERR_LEDGER_PARAM');
  if (!INTEGER.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw errors.badRequest(`Parameter '${name}' must be a non-negative integer, got '${raw.slice(0, 40)}'`, undefined, 'ERR_LEDGER_PARAM');
  }
  return Number(raw);
}

/** Rejects parameters the endpoint does not know (a typo must not silently select everything). */
export function onlyParams(query: Query, allowed: readonly string[]): void {
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name)) throw errors.badRequest(`Unknown parameter '${name.slice(0, 40)}'`, undefined, 'ERR_LEDGER_PARAM');
  }
}
