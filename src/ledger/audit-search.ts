/**
 * AuditEvent search parameters (http://hl7.org/fhir/R4/auditevent.html#search) over ledger entries: parsed into
 * criteria, the most selective index chosen, and each candidate entry matched. Pure: no I/O.
 *
 * Supported: patient, agent, entity (references; several values = OR), date (ge/gt/le/lt/eq prefixes, partial
 * dates; several = AND), action (C/R/U/D/E), outcome (0/4/8), subtype (a token: interaction code, `system|code`,
 * `|code` or `system|`, held to the system the view renders: restful-interaction or the ledger-event system),
 * `_count` (1 … 1000, default 50) and `_cursor` (paging: continue below this ledger index).
 */
import { errors } from '../errors.ts';
import { dateRange as searchDateRange } from '../fhir/search/encode.ts';
import { ACTIONS, actionOf, LEDGER_EVENT_SYSTEM, outcomeOf, RESTFUL, subtypeOf } from './audit-event.ts';
import { auditIndexValues, type AuditKey } from './audit-index.ts';
import type { Entry } from './types.ts';

export interface AuditCriteria {
  patient?: string[];
  agent?: string[];
  entity?: string[];
  subtype?: Token[];
  action?: string[];
  outcome?: string[];
  /** [from, to) in ISO time strings (lexicographic order = time order for the ledger's UTC times). */
  date?: { from: string; to: string };
  count: number;
  cursor: number | undefined;
}

/**
 * A token search value (http://hl7.org/fhir/R4/search.html#token): `code` (any system), `system|code`, `|code`
 * (`system` '': codings without a system) or `system|` (no `code`: any code of that system).
 */
export interface Token {
  system?: string;
  code?: string;
}

export const DEFAULT_COUNT = 50;
export const MAX_COUNT = 1000;
const KNOWN = new Set(['patient', 'agent', 'entity', 'date', 'action', 'outcome', 'subtype', '_count', '_cursor', '_format', '_pretty']);
const bad = (message: string) => errors.badRequest(message, undefined, 'ERR_SEARCH_PARAM');

function values(query: Record<string, string[]>, name: string): string[] | undefined {
  const all = query[name];
  if (!all) return undefined;
  const out = all.flatMap((v) => v.split(',')).map((v) => v.trim());
  if (out.some((v) => v === '')) throw bad(`Empty value in '${name}'`);
  return out;
}

function tokens(list: string[] | undefined, name: string): Token[] | undefined {
  return list?.map((v) => {
    const bar = v.indexOf('|');
    if (bar < 0) return { code: v };
    const [system, code] = [v.slice(0, bar), v.slice(bar + 1)];
    if (system === '' && code === '') throw bad(`'${name}' needs a code, a system or both around '|'`);
    return code === '' ? { system } : { system, code };
  });
}

const tokenMatches = (wanted: Token, coding: { system?: string; code?: string }) =>
  (wanted.system === undefined || wanted.system === (coding.system ?? '')) && (wanted.code === undefined || wanted.code === coding.code);

const REFERENCE = /^[A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;

function references(list: string[] | undefined, name: string, defaultType?: string): string[] | undefined {
  return list?.map((v) => {
    const ref = defaultType && !v.includes('/') ? `${defaultType}/${v}` : v.replace(/^https?:\/\/.*\/(?=[A-Za-z]+\/[^/]+$)/, '');
    if (!REFERENCE.test(ref) && !(name === 'agent' && /^sub:.+$/.test(v)) && !(name === 'entity' && /^[A-Za-z]+$/.test(v))) {
      throw bad(`'${name}' must be a reference such as Patient/123, got '${v.slice(0, 80)}'`);
    }
    return ref;
  });
}

/**
 * The [lo, hi) ms range a (partial) FHIR date or dateTime stands for, read as the resource search reads it
 * (encode.ts `dateRange`: only real calendar values, years 0001-9999, offsets up to ±14:59; anything else is a 400
 * rather than a range rolled over to another day), with two rules of this view: a time needs a zone, and a fraction
 * of a second names one millisecond (the ledger's times are milliseconds).
 */
export function dateRange(text: string): [number, number] {
  const range = searchDateRange(text);
  if (!range) throw bad(`Invalid date '${text.slice(0, 40)}': expected a real YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]] with a time zone`);
  if (text.includes('T') && !/(?:Z|[+-]\d{2}:\d{2})$/.test(text)) throw bad(`A date with a time needs a time zone: '${text.slice(0, 40)}'`);
  return text.includes('.') ? [range.low, range.low + 1] : [range.low, range.high + 1];
}

function dates(list: string[] | undefined): AuditCriteria['date'] {
  if (!list) return undefined;
  let lo = -8.64e15;
  let hi = 8.64e15;
  for (const raw of list) {
    const prefix = /^(eq|ge|gt|le|lt)/.exec(raw)?.[1] ?? 'eq';
    const [a, b] = dateRange(raw.slice(raw.startsWith(prefix) ? 2 : 0));
    if (prefix === 'eq') [lo, hi] = [Math.max(lo, a), Math.min(hi, b)];
    else if (prefix === 'ge') lo = Math.max(lo, a);
    else if (prefix === 'gt') lo = Math.max(lo, b);
    else if (prefix === 'le') hi = Math.min(hi, b);
    else hi = Math.min(hi, a);
  }
  const iso = (ms: number) => new Date(Math.min(Math.max(ms, -62167219200000), 253402300799999)).toISOString();
  return { from: iso(lo), to: hi <= lo ? iso(lo) : iso(hi) };
}

function intValue(query: Record<string, string[]>, name: string, min: number, max: number): number | undefined {
  const v = query[name];
  if (!v) return undefined;
  if (v.length !== 1 || !/^\d{1,16}$/.test(v[0]!) || +v[0]! < min || +v[0]! > max) throw bad(`'${name}' must be an integer from ${min} to ${max}`);
  return Number(v[0]);
}

export function parseAuditSearch(query: Record<string, string[]>): AuditCriteria {
  for (const name of Object.keys(query)) {
    if (!KNOWN.has(name)) throw bad(`Unknown or unsupported AuditEvent search parameter '${name.slice(0, 40)}'`);
  }
  const criteria: AuditCriteria = {
    count: intValue(query, '_count', 1, MAX_COUNT) ?? DEFAULT_COUNT,
    cursor: intValue(query, '_cursor', 0, Number.MAX_SAFE_INTEGER),
  };
  const set = <K extends keyof AuditCriteria>(key: K, value: AuditCriteria[K] | undefined) => {
    if (value !== undefined) criteria[key] = value;
  };
  set('patient', references(values(query, 'patient'), 'patient', 'Patient'));
  set('agent', references(values(query, 'agent'), 'agent'));
  set('entity', references(values(query, 'entity'), 'entity'));
  set('subtype', tokens(values(query, 'subtype'), 'subtype'));
  const action = values(query, 'action');
  if (action?.some((a) => !/^[CRUDE]$/.test(a))) throw bad(`'action' must be C, R, U, D or E`);
  set('action', action);
  const outcome = values(query, 'outcome');
  if (outcome?.some((o) => !/^(0|4|8|12)$/.test(o))) throw bad(`'outcome' must be 0, 4, 8 or 12`);
  set('outcome', outcome);
  set('date', dates(values(query, 'date') ? query.date : undefined));
  return criteria;
}

/**
 * The interaction codes the subtype index must be read for, or undefined when it cannot narrow the search: the
 * ledger-event system holds every interaction that is not a FHIR one, an open set. A system the view never
 * renders gives no code, so no candidate.
 */
function subtypeCodes(wanted: Token[]): string[] | undefined {
  const codes = new Set<string>();
  for (const token of wanted) {
    if (token.code !== undefined) codes.add(token.code);
    else if (token.system === RESTFUL) for (const code of Object.keys(ACTIONS)) codes.add(code);
    else if (token.system === LEDGER_EVENT_SYSTEM) return undefined;
  }
  return [...codes];
}

/** The index to read candidates from: the first reference parameter given (one value each), else subtype, else date. */
export function plan(criteria: AuditCriteria): { key: AuditKey; values: string[] } | { key: 'time'; from: string; to: string } | undefined {
  for (const key of ['patient', 'entity', 'agent'] as const) {
    if (criteria[key]) return { key, values: criteria[key]! };
  }
  const codes = criteria.subtype && subtypeCodes(criteria.subtype);
  if (codes) return { key: 'subtype', values: codes };
  if (criteria.date) return { key: 'time', from: criteria.date.from, to: criteria.date.to };
  return undefined;
}

export function matches(entry: Entry, criteria: AuditCriteria): boolean {
  const indexed = auditIndexValues(entry);
  const any = (wanted: string[] | undefined, have: string[]) => wanted === undefined || wanted.some((w) => have.includes(w));
  const subtype = subtypeOf(entry.interaction);
  return any(criteria.patient, indexed.patient) && any(criteria.agent, indexed.agent) && any(criteria.entity, indexed.entity) &&
    (criteria.subtype === undefined || criteria.subtype.some((w) => tokenMatches(w, subtype))) && any(criteria.action, [actionOf(entry.interaction)]) &&
    any(criteria.outcome, [outcomeOf(entry.status)]) &&
    (criteria.date === undefined || (entry.time >= criteria.date.from && entry.time < criteria.date.to));
}
