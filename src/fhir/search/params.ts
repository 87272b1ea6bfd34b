/**
 * Parses a FHIR search query (http://hl7.org/fhir/R4/search.html) into filters and result parameters. Pure: no
 * I/O; the parameter definitions come from the registry. OR by comma inside a value, AND by repeating a parameter.
 * Unknown or unsupported parameters are a 400 unless the request is lenient (`Prefer: handling=lenient`), in
 * which case they are listed in `ignored`; malformed values are always a 400 that names the parameter. An empty
 * value (`name=`, or only spaces) is no criterion and is ignored, as R4 has it (search.html#errors: "Empty
 * parameters are not an error - they are just ignored by the server"), once its name is known to be valid; an
 * empty alternative inside a value (`name=a,`) is malformed.
 */
import { errors } from '../../errors.ts';
import { conditionFor, splitKeepingEscapes, type Condition, type Hash } from './conditions.ts';
import { paramOf, paramsOf, UNSUPPORTED_COMMON, type SearchParam } from './registry.ts';
import { RESOURCE_TYPES } from '../validate.ts';

export type Filter =
  /** At least one condition holds (OR); with `negate`, none does (`:not`). */
  | { kind: 'match'; name: string; code: string; negate: boolean; conditions: Condition[] }
  /** Conditions the index cannot answer (`:contains`, `:text`): checked on decrypted candidates (OR; `negate`). */
  | { kind: 'residual'; name: string; code: string; negate: boolean; conditions: Condition[] }
  | { kind: 'missing'; name: string; code: string; missing: boolean }
  /** `subject:Patient.name=x`: the reference points at a resource of one of `targets` matching `query`. */
  | { kind: 'chain'; name: string; code: string; targets: string[]; query: Record<string, string[]> }
  /** `_has:Observation:patient:code=x`: some Observation whose `patient` points here matches `query`. */
  | { kind: 'has'; name: string; type: string; code: string; query: Record<string, string[]> };

export interface Include {
  /** Source type, `*` for every type. */
  type: string;
  code: string;
  target?: string;
  iterate: boolean;
}

export interface SortKey {
  code: string;
  type: SearchParam['type'] | 'id';
  descending: boolean;
}

export type Summary = 'true' | 'text' | 'data' | 'count' | 'false';
export type Total = 'none' | 'estimate' | 'accurate';

export interface ParsedSearch {
  filters: Filter[];
  count?: number;
  sort: SortKey[];
  include: Include[];
  revinclude: Include[];
  summary?: Summary;
  elements?: string[];
  total?: Total;
  /** Opaque paging cursor from a previous page's link. */
  page?: string;
  /** Parameters ignored under lenient handling (reported in the Bundle's OperationOutcome). */
  ignored: string[];
}

export interface ParseOptions {
  lenient?: boolean;
  baseUrl?: string;
  /** Keyed hash of index values (the repository's); identity when absent. */
  hash?: Hash;
  /** Largest `_count` accepted. */
  maxCount?: number;
  /** Parameters the caller handles itself (e.g. `_since`, `_type` of $everything). */
  extra?: Set<string>;
  /** The types an `_include` may start from without `:iterate` (default: the type searched). */
  includeTypes?: readonly string[];
  /** What messages call the searched scope when it is not the type parsed against (a system search). */
  scope?: string;
}

/** Parameters that shape the result, handled by the engine and not by the index. */
const RESULT_PARAMETERS = new Set(['_count', '_sort', '_include', '_revinclude', '_summary', '_elements', '_total', '_page', '_format', '_pretty']);
const MODIFIERS: Record<string, Set<string>> = {
  string: new Set(['exact', 'contains', 'missing']),
  token: new Set(['text', 'not', 'missing']),
  reference: new Set(['identifier', 'missing']),
  date: new Set(['missing']),
  number: new Set(['missing']),
  quantity: new Set(['missing']),
  uri: new Set(['above', 'below', 'missing']),
  composite: new Set(['missing']),
};
const resourceTypes = new Set<string>(RESOURCE_TYPES);

const SUMMARIES: readonly Summary[] = ['true', 'text', 'data', 'count', 'false'];

/** A parameter value that says nothing: empty, or only spaces (`_id=%20`). */
export function isEmptyValue(value: string): boolean {
  return value.trim() === '';
}

/** The values of a parameter that are not empty; undefined when there are none (the parameter is then ignored). */
export function presentValues(values: string[] | undefined): string[] | undefined {
  const present = values?.filter((v) => !isEmptyValue(v));
  return present?.length ? present : undefined;
}

/** A query without its empty values (and without parameters left with none): what a search's links repeat. */
export function withoutEmptyValues(query: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (const [name, values] of Object.entries(query)) {
    const present = presentValues(values);
    if (present) out[name] = present;
  }
  return out;
}

/** `_summary`, once, one of `allowed` (a read takes every value but `count`); 400 otherwise. */
export function summaryParameter(values: string[], allowed: readonly Summary[]): Summary {
  if (values.length > 1) bad('_summary', 'may appear only once');
  const v = values[0]!;
  if (!(allowed as readonly string[]).includes(v)) bad('_summary', `must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}`);
  return v as Summary;
}

/** `_elements`: the element names listed (comma-separated, repeatable); 400 for anything that is not a name. */
export function elementsParameter(values: string[]): string[] {
  const elements = values.flatMap((v) => v.split(',')).map((e) => e.trim());
  for (const e of elements) {
    if (e === '') bad('_elements', 'an empty element name between commas');
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(e)) bad('_elements', `'${e.slice(0, 40)}' is not an element name`);
  }
  return elements;
}

function bad(name: string, message: string, code = 'ERR_SEARCH_VALUE'): never {
  throw errors.badRequest(`Search parameter '${name}': ${message}`, [name], code);
}

function unknown(name: string, message: string, code = 'ERR_UNKNOWN_PARAMETER'): never {
  throw errors.badRequest(message, [name], code);
}

export function parseSearch(resourceType: string, query: Record<string, string[]>, options: ParseOptions = {}): ParsedSearch {
  const out: ParsedSearch = { filters: [], sort: [], include: [], revinclude: [], ignored: [] };
  for (const [name, values] of Object.entries(query)) {
    if (options.extra?.has(name)) continue;
    try {
      if (RESULT_PARAMETERS.has(name) || name.startsWith('_include') || name.startsWith('_revinclude')) {
        parseResultParameter(resourceType, name, values, out, options);
        continue;
      }
      for (const value of values) {
        const filter = parseFilter(resourceType, name, value, options);
        if (filter) out.filters.push(filter);
      }
    } catch (err) {
      const e = err as { code?: string };
      if (options.lenient && (e.code === 'ERR_UNKNOWN_PARAMETER' || e.code === 'ERR_UNSUPPORTED_PARAMETER' || e.code === 'ERR_UNKNOWN_MODIFIER')) {
        out.ignored.push(name);
        continue;
      }
      throw err;
    }
  }
  return out;
}

/**
 * One value of a filter parameter; undefined for an empty value, which is ignored once the name is known to be
 * valid (an unknown name is a 400 whatever its value, unless lenient).
 */
function parseFilter(resourceType: string, name: string, value: string, options: ParseOptions): Filter | undefined {
  const empty = isEmptyValue(value);
  if (name.startsWith('_has:')) {
    const has = parseHas(resourceType, name, value);
    return empty ? undefined : has;
  }
  const dot = name.indexOf('.');
  if (dot > 0) {
    const chain = parseChain(resourceType, name, dot, value, options.scope);
    return empty ? undefined : chain;
  }
  const [code, modifier, ...more] = name.split(':');
  if (more.length) unknown(name, `Search parameter '${name}' has more than one modifier`, 'ERR_UNKNOWN_MODIFIER');
  const param = lookup(resourceType, code!, name, options.scope);
  if (modifier !== undefined && !MODIFIERS[param.type]!.has(modifier) && !(param.type === 'reference' && resourceTypes.has(modifier))) {
    unknown(name, `Modifier ':${modifier}' is not supported on the ${param.type} parameter '${code}'`, 'ERR_UNKNOWN_MODIFIER');
  }
  if (empty) return undefined;
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') bad(name, ':missing takes true or false', 'ERR_SEARCH_VALUE');
    return { kind: 'missing', name, code: param.code, missing: value === 'true' };
  }
  // OR at unescaped commas; each value keeps its escapes for its type's parser (search.html#escaping)
  const alternatives = splitKeepingEscapes(value, ',');
  if (alternatives.some(isEmptyValue)) bad(name, `'${value.slice(0, 64)}' has an empty value between commas`);
  const conditions = alternatives.flatMap((v) => conditionFor(param, name, modifier, v, options.baseUrl, options.hash));
  const negate = modifier === 'not';
  if (conditions.some((c) => c.residual)) return { kind: 'residual', name, code: param.code, negate, conditions };
  return { kind: 'match', name, code: param.code, negate, conditions };
}

function lookup(resourceType: string, code: string, name: string, scope = resourceType): SearchParam {
  const param = paramOf(resourceType, code);
  if (param) return param;
  if (UNSUPPORTED_COMMON.includes(code) || code === '_contained' || code === '_containedType') {
    unknown(name, `Search parameter '${code}' is not supported by this server`, 'ERR_UNSUPPORTED_PARAMETER');
  }
  return unknown(name, `Unknown search parameter '${code}' for ${scope}`);
}

function parseChain(resourceType: string, name: string, dot: number, value: string, scope?: string): Filter {
  const [code, typeModifier] = name.slice(0, dot).split(':');
  const param = lookup(resourceType, code!, name, scope);
  if (param.type !== 'reference') bad(name, `'${code}' is not a reference parameter and cannot be chained`, 'ERR_INVALID_CHAIN');
  let targets = typeModifier ? [typeModifier] : (param.target ?? []);
  if (typeModifier && !resourceTypes.has(typeModifier)) bad(name, `'${typeModifier}' is not a resource type`, 'ERR_INVALID_CHAIN');
  const rest = name.slice(dot + 1);
  const innerCode = rest.split(/[.:]/)[0]!;
  targets = targets.filter((t) => paramsOf(t).has(innerCode) || innerCode.startsWith('_has'));
  if (targets.length === 0) unknown(name, `Chained parameter '${name}': no target of '${code}' has a parameter '${innerCode}'`);
  return { kind: 'chain', name, code: param.code, targets, query: { [rest]: [value] } };
}

function parseHas(resourceType: string, name: string, value: string): Filter {
  const [, type, code, ...rest] = name.split(':');
  const inner = rest.join(':');
  if (!type || !code || !inner) bad(name, 'expected _has:Type:reference:parameter', 'ERR_INVALID_CHAIN');
  if (!resourceTypes.has(type)) bad(name, `'${type}' is not a resource type`, 'ERR_INVALID_CHAIN');
  const param = lookup(type, code, name);
  if (param.type !== 'reference' || (param.target && !param.target.includes(resourceType))) {
    bad(name, `'${type}:${code}' does not refer to ${resourceType}`, 'ERR_INVALID_CHAIN');
  }
  const innerCode = inner.split(/[.:]/)[0]!;
  if (!innerCode.startsWith('_has')) lookup(type, innerCode, name);
  return { kind: 'has', name, type, code: param.code, query: { [inner]: [value] } };
}

function parseResultParameter(resourceType: string, name: string, allValues: string[], out: ParsedSearch, options: ParseOptions): void {
  const reverse = name.startsWith('_revinclude');
  const isInclude = reverse || name.startsWith('_include');
  const suffix = isInclude ? name.slice(reverse ? '_revinclude'.length : '_include'.length) : '';
  if (suffix !== '' && suffix !== ':iterate' && suffix !== ':recurse') unknown(name, `Unknown parameter '${name}'`);
  // empty values are ignored (`_count=`, `_sort=`, `_elements=`): the parameter then takes its default
  const values = presentValues(allValues);
  if (!values) return;
  const single = () => {
    if (values.length > 1) bad(name, 'may appear only once');
    return values[0]!;
  };
  switch (name) {
    case '_count': {
      const v = single();
      if (!/^\d{1,6}$/.test(v)) bad(name, `'${v.slice(0, 20)}' is not a non-negative integer`, 'ERR_INVALID_COUNT');
      out.count = Math.min(Number(v), options.maxCount ?? 1000);
      return;
    }
    case '_sort':
      for (const part of single().split(',')) {
        if (isEmptyValue(part)) bad(name, 'an empty sort key between commas');
        const descending = part.startsWith('-');
        const code = descending ? part.slice(1) : part;
        if (code === '_id') {
          out.sort.push({ code, type: 'id', descending });
          continue;
        }
        const param = lookup(resourceType, code, name, options.scope);
        if (param.type === 'composite') bad(name, `cannot sort by the composite '${code}'`);
        out.sort.push({ code: param.code, type: param.type, descending });
      }
      return;
    case '_summary':
      out.summary = summaryParameter(values, SUMMARIES);
      return;
    case '_total': {
      const v = single();
      if (!['none', 'estimate', 'accurate'].includes(v)) bad(name, 'must be none, estimate or accurate');
      out.total = v as Total;
      return;
    }
    case '_elements':
      out.elements = elementsParameter(values);
      return;
    case '_page':
      out.page = single();
      return;
    case '_format':
    case '_pretty':
      return;
  }
  for (const value of values) {
    const include = parseInclude(name, value, suffix !== '');
    if (reverse && include.type === '*') {
      // The index is keyed by source type and parameter first: every type's references to a match would be one
      // scan per reference parameter that can point at it (237 for a Patient), per match and per :iterate round.
      bad(name, `'${value.slice(0, 80)}': name the source type (Observation:subject, or Observation:* for all its references to the matches); a wildcard source type is not supported`, 'ERR_INVALID_INCLUDE');
    }
    const from = options.includeTypes ?? [resourceType];
    if (!reverse && include.type !== '*' && !from.includes(include.type) && !include.iterate) {
      const allowed = from.length === 1 ? from[0] : `one of ${from.slice(0, 5).join(', ')}${from.length > 5 ? ', …' : ''}`;
      bad(name, `'${value}': _include must start with ${allowed} (or use :iterate)`, 'ERR_INVALID_INCLUDE');
    }
    (reverse ? out.revinclude : out.include).push(include);
  }
}

export function parseInclude(name: string, value: string, iterate: boolean): Include {
  const [type, code, target, ...more] = value.split(':');
  if (value === '*') return { type: '*', code: '*', iterate };
  if (!type || !code || more.length || (type !== '*' && !resourceTypes.has(type))) {
    bad(name, `'${value.slice(0, 80)}' is not Type:parameter[:targetType]`, 'ERR_INVALID_INCLUDE');
  }
  if (type !== '*' && code !== '*') {
    const param = paramOf(type, code);
    if (!param || param.type !== 'reference') bad(name, `'${type}:${code}' is not a reference parameter`, 'ERR_INVALID_INCLUDE');
  }
  if (target !== undefined && !resourceTypes.has(target)) bad(name, `'${target}' is not a resource type`, 'ERR_INVALID_INCLUDE');
  const include: Include = { type, code, iterate };
  if (target) include.target = target;
  return include;
}

/** The type whose parameters are exactly those every resource has (`_id`, `_lastUpdated`, `_tag`, ...). */
export const COMMON_PARAMETERS_TYPE = 'Binary';

/** A system search (`GET [base]?...`), parsed: what the result parameters say, and each searched type's filters. */
export interface SystemSearch {
  parsed: ParsedSearch;
  types: Array<{ type: string; filters: Filter[] }>;
}

/**
 * A system search (http://hl7.org/fhir/R4/search.html#searchcontexts): "If the _type parameter is included, all
 * other search parameters SHALL be common to all provided types. If _type is not included, all parameters SHALL
 * be common to all resource types." With `_type`, the query is parsed against each listed type's own parameters (a
 * parameter one of them lacks is a 400, or under lenient handling ignored for all of them) and `_include` may start
 * from any of them; without, against the parameters every type has, and `_include` from any type.
 */
export function parseSystemSearch(types: readonly string[] | undefined, query: Record<string, string[]>, options: ParseOptions = {}): SystemSearch {
  const extra = new Set([...(options.extra ?? []), '_type']);
  if (types === undefined) {
    const scope = 'every resource type (name the types with _type to search by theirs)';
    const parsed = parseSearch(COMMON_PARAMETERS_TYPE, query, { ...options, extra, includeTypes: RESOURCE_TYPES, scope });
    return { parsed, types: RESOURCE_TYPES.map((type) => ({ type, filters: parsed.filters })) };
  }
  const listed = [...new Set(types)];
  const each = listed.map((type) => ({
    type,
    parsed: parseSearch(type, query, { ...options, extra, includeTypes: listed, scope: `${type}, one of the _type types (each must define it)` }),
  }));
  const ignored = [...new Set(each.flatMap((e) => e.parsed.ignored))];
  const first = each[0]!;
  const sort = ignored.includes('_sort') ? [] : first.parsed.sort;
  // rows of all the types are ordered by one key: a parameter must have one type across them to be that key
  for (const { type, parsed } of each) {
    for (const [i, key] of sort.entries()) {
      const other = parsed.sort[i]!;
      if (other.type !== key.type) bad('_sort', `'${key.code}' is a ${key.type} parameter for ${first.type} but a ${other.type} parameter for ${type}: they cannot be sorted together`);
    }
  }
  return {
    parsed: { ...first.parsed, filters: [], sort, ignored },
    types: each.map(({ type, parsed }) => ({ type, filters: parsed.filters.filter((f) => !ignored.includes(f.name)) })),
  };
}
