/**
 * Search values → conditions on index entries (http://hl7.org/fhir/R4/search.html, per parameter type, modifier
 * and prefix). A condition names the entry code, the key range [lower, upper) to scan in `search-value`, and a
 * test on each value: the same condition scans the index for candidates and checks one resource's values. Pure.
 */
import { errors } from '../../errors.ts';
import {
  dateRange, decodeInstant, decodeNumber, encodeInstant, encodeNumber, escapeComponent, escapeTokenPart, normalizeString, numberRange, splitEscaped,
  splitKeepingEscapes, unescapeValue, unrepresentable,
} from './encode.ts';
import { boundedValue, indexedPrefixLength, localReference, MAX_VALUE, sealedUnit } from './extract.ts';
import type { SearchParam } from './registry.ts';
import { RESOURCE_TYPES } from '../validate.ts';

/** Above every encoded value (U+10FFFF is the highest code point, encoded F4 8F BF BF). */
export const HIGH = '\u{10FFFF}';

export interface Condition {
  code: string;
  lower: string;
  upper: string;
  /** Exact match: lets the engine check a resource with one point read. */
  exact?: string;
  /** The plaintext value `exact` stands for, where the key is not the value itself (a hash, a bounded clear value). */
  plainExact?: string;
  /** Test on a stored (sealed) index value. */
  test(value: string): boolean;
  /** Test on a plaintext value of the same entry code, from a decrypted resource (defaults to `test`). */
  plain?(value: string): boolean;
  /** Cannot be answered from the index (`:contains`, `:text`): only `plain` applies. */
  residual?: boolean;
  /**
   * The index match is necessary but not sufficient (a string prefix looked up at a shorter indexed length): a
   * resource the index finds must still pass `plain` on its decrypted values.
   */
  lossy?: boolean;
}

/** Keyed hash of index values (extract.ts, sealEntries); identity when none is given (pure tests). */
export type Hash = (value: string) => string;
const identity: Hash = (s) => s;

function hashedExact(code: string, plainValue: string, hash: Hash): Condition {
  return { ...exact(code, hash(plainValue)), plain: (v) => v === plainValue, plainExact: plainValue };
}

/** Equality with a clear value, keyed as the index keys it (extract.ts, boundedValue). */
function boundedExact(code: string, plainValue: string, hash: Hash): Condition {
  return { ...exact(code, boundedValue(plainValue, hash)), plain: (v) => v === plainValue, plainExact: plainValue };
}

function residual(code: string, plain: (v: string) => boolean): Condition {
  return { code, lower: '', upper: HIGH, test: () => false, plain, residual: true };
}

export const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
export type Prefix = (typeof PREFIXES)[number];

const resourceTypes = new Set<string>(RESOURCE_TYPES);

export { splitEscaped, splitKeepingEscapes, unescapeValue };

/** Keys are `<value>\x00<id>`: `<value>\x01` is above every key of that one value. */
export function exact(code: string, value: string): Condition {
  return { code, lower: value, upper: `${value}\x01`, exact: value, test: (v) => v === value };
}

export function startsWith(code: string, value: string): Condition {
  return { code, lower: value, upper: value + HIGH, test: (v) => v.startsWith(value) };
}

function bad(name: string, message: string, code: string): never {
  throw errors.badRequest(`Search parameter '${name}': ${message}`, [name], code);
}

/** Splits off a comparison prefix (`ge2024` → ge, 2024). Only number, date and quantity take prefixes. */
export function splitPrefix(value: string): [Prefix, string] {
  const m = /^([a-z]{2})(?=[0-9+\-.])/.exec(value);
  if (m && (PREFIXES as readonly string[]).includes(m[1]!)) return [m[1] as Prefix, value.slice(2)];
  return ['eq', value];
}

/**
 * The condition one (already OR-split) value sets on a parameter, under a modifier. `raw` keeps its backslash
 * escapes: each type removes them where its own separators (`|` of tokens and quantities) no longer matter.
 */
export function conditionFor(param: SearchParam, name: string, modifier: string | undefined, raw: string, baseUrl?: string, hash: Hash = identity): Condition[] {
  const code = param.code;
  switch (param.type) {
    case 'string': {
      const text = unescapeValue(raw);
      if (modifier === 'exact') return [hashedExact(`${code}:exact`, text, hash)];
      const norm = normalizeString(text);
      if (modifier === 'contains') return [residual(code, (v) => v.includes(norm))];
      // the index holds the hashes of the prefixes of some lengths (extract.ts, PREFIX_LENGTHS)
      const indexed = indexedPrefixLength(norm.length);
      const condition: Condition = { ...exact(code, hash(norm.slice(0, indexed))), plain: (v) => v.startsWith(norm) };
      if (indexed < norm.length) condition.lossy = true;
      return [condition];
    }
    case 'token': {
      if (modifier === 'text') {
        const norm = normalizeString(unescapeValue(raw));
        return [residual(`${code}:text`, (v) => v.startsWith(norm))];
      }
      const form = tokenForm(name, raw);
      if (code === '_id') return [exact(code, form)]; // stored in clear (extract.ts, sealEntries)
      return [hashedExact(code, form, hash)];
    }
    case 'reference':
      if (modifier === 'identifier') return [hashedExact(`${code}:identifier`, tokenForm(name, raw), hash)];
      return [referenceCondition(param, name, modifier, unescapeValue(raw), baseUrl, hash)];
    case 'uri': {
      raw = unescapeValue(raw);
      if (modifier === 'below') {
        if (raw.length <= MAX_VALUE) return [startsWith(code, raw)];
        // keys hold the first MAX_VALUE characters in clear (extract.ts, boundedValue): those find a superset
        return [{ ...startsWith(code, raw.slice(0, MAX_VALUE)), plain: (v) => v.startsWith(raw), lossy: true }];
      }
      if (modifier === 'above') {
        const out: Condition[] = [];
        for (let i = raw.length; i > 0; i--) if (i === raw.length || raw[i] === '/') out.push(boundedExact(code, raw.slice(0, i), hash));
        return out;
      }
      return [boundedExact(code, raw, hash)];
    }
    case 'date':
      return [dateCondition(code, name, unescapeValue(raw))];
    case 'number':
      return [numberCondition(code, name, unescapeValue(raw), '')];
    case 'quantity':
      return [quantityCondition(code, name, raw, hash)];
    case 'composite':
      return [compositeCondition(param, name, raw, baseUrl, hash)];
  }
}

/**
 * A token search value as the form the index stores it (extract.ts, tokenForms): `code`, `system|code`, `|code` or
 * `system|`, split at the first unescaped `|`, each part unescaped and stored-escaped again.
 */
export function tokenForm(name: string, raw: string): string {
  const [first, ...rest] = splitKeepingEscapes(raw, '|');
  const system = unescapeValue(first!);
  if (rest.length === 0) {
    if (system === '') bad(name, 'a token needs a code or a system', 'ERR_SEARCH_VALUE');
    return escapeTokenPart(system);
  }
  // a further unescaped `|` belongs to the code: systems are URIs, which hold none
  const code = unescapeValue(rest.join('|'));
  if (system === '' && code === '') bad(name, 'a token needs a code or a system', 'ERR_SEARCH_VALUE');
  return `${escapeTokenPart(system)}|${escapeTokenPart(code)}`;
}

function referenceCondition(param: SearchParam, name: string, modifier: string | undefined, raw: string, baseUrl: string | undefined, hash: Hash): Condition {
  const code = param.code;
  if (raw === '') bad(name, 'an empty reference', 'ERR_INVALID_REFERENCE');
  if (modifier && modifier !== 'identifier') {
    if (!resourceTypes.has(modifier)) bad(name, `':${modifier}' is neither a modifier nor a resource type`, 'ERR_UNKNOWN_MODIFIER');
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(raw)) bad(name, `'${raw.slice(0, 64)}' is not an id`, 'ERR_INVALID_REFERENCE');
    return exact(code, `${modifier}/${raw}`);
  }
  if (/^[A-Za-z0-9\-.]{1,64}$/.test(raw)) return exact(code, raw);
  const local = localReference(raw, baseUrl);
  if (local) {
    if (!resourceTypes.has(local.type)) bad(name, `'${local.type}' is not a resource type`, 'ERR_INVALID_REFERENCE');
    return exact(code, `${local.type}/${local.id}`);
  }
  if (/^[a-z][a-z0-9+.\-]*:\S+$/i.test(raw)) return boundedExact(code, raw, hash); // an absolute URL or canonical
  return bad(name, `'${raw.slice(0, 64)}' is not a reference (Type/id, id or an absolute URL)`, 'ERR_INVALID_REFERENCE');
}

/** Parses `[prefix]date`, returning the prefix and the search range in ms. */
export function parseDateValue(name: string, raw: string): { prefix: Prefix; low: number; high: number } {
  const [prefix, text] = splitPrefix(raw);
  const range = dateRange(text);
  if (!range) bad(name, `'${raw.slice(0, 64)}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime), with an optional prefix eq|ne|gt|lt|ge|le|sa|eb|ap`, 'ERR_INVALID_DATE');
  return { prefix, ...range };
}

/** Stored date values: `low~high` under the code, `high~low` under `code:hi`. */
const parseLowHigh = (v: string) => {
  const i = v.indexOf('~');
  return [decodeInstant(v.slice(0, i)), decodeInstant(v.slice(i + 1))] as const;
};

/**
 * Date prefixes as R4 defines them, with target range [tl, th] and search range [sl, sh]: eq contains, ne not,
 * gt th > sh, lt tl < sl, ge gt-or-eq, le lt-or-eq, sa tl > sh, eb th < sl, ap overlaps the range widened by 10%
 * of its distance from now (at least a day).
 */
export function dateCondition(code: string, name: string, raw: string, now = Date.now()): Condition {
  const { prefix, low: sl, high: sh } = parseDateValue(name, raw);
  const enc = encodeInstant;
  const inside = (tl: number, th: number) => tl >= sl && th <= sh;
  const byLow = (lower: string, upper: string, test: (tl: number, th: number) => boolean): Condition => ({
    code,
    lower,
    upper,
    test: (v) => {
      const [tl, th] = parseLowHigh(v);
      return test(tl, th);
    },
  });
  const byHigh = (lower: string, upper: string, test: (tl: number, th: number) => boolean): Condition => ({
    code: `${code}:hi`,
    lower,
    upper,
    test: (v) => {
      const [th, tl] = parseLowHigh(v);
      return test(tl, th);
    },
  });
  switch (prefix) {
    case 'eq':
      return byLow(enc(sl), enc(sh) + HIGH, inside);
    case 'ne':
      return byLow('', HIGH, (tl, th) => !inside(tl, th));
    case 'gt':
      return byHigh(enc(sh + 1), HIGH, (_tl, th) => th > sh);
    case 'ge':
      return byHigh(enc(sl), HIGH, (tl, th) => th > sh || inside(tl, th));
    case 'lt':
      return byLow('', enc(sl), (tl) => tl < sl);
    case 'le':
      return byLow('', enc(sh) + HIGH, (tl, th) => tl < sl || inside(tl, th));
    case 'sa':
      return byLow(enc(sh + 1), HIGH, (tl) => tl > sh);
    case 'eb':
      return byHigh('', enc(sl), (_tl, th) => th < sl);
    case 'ap': {
      const delta = Math.max(86_400_000, Math.abs(now - sl) * 0.1);
      return byLow('', enc(sh + delta) + HIGH, (tl, th) => tl <= sh + delta && th >= sl - delta);
    }
  }
}

/** `[prefix]number` against exact stored numbers under `code`, keys prefixed by `keyPrefix` (quantities' unit). */
export function numberCondition(code: string, name: string, raw: string, keyPrefix: string): Condition {
  const [prefix, text] = splitPrefix(raw);
  checkRepresentable(name, raw, text, 'ERR_INVALID_NUMBER');
  const n = numberRange(text);
  if (!n) bad(name, `'${raw.slice(0, 64)}' is not a number, with an optional prefix eq|ne|gt|lt|ge|le|sa|eb|ap`, 'ERR_INVALID_NUMBER');
  const p = keyPrefix;
  const all = p + HIGH;
  const range = (lower: string, upper: string, test: (x: number) => boolean): Condition => ({
    code,
    lower,
    upper,
    test: (v) => v.startsWith(p) && v.length === p.length + 16 && test(decodeNumber(v.slice(p.length))),
  });
  const e = (x: number) => p + encodeNumber(x);
  switch (prefix) {
    case 'eq':
      return range(e(n.low), e(n.high), (x) => x >= n.low && x < n.high);
    case 'ne':
      return range(p, all, (x) => !(x >= n.low && x < n.high));
    case 'gt':
    case 'sa':
      return range(e(n.value), all, (x) => x > n.value);
    case 'ge':
      return range(e(n.value), all, (x) => x >= n.value);
    case 'lt':
    case 'eb':
      return range(p, e(n.value), (x) => x < n.value);
    case 'le':
      return range(p, e(n.value) + '\x01', (x) => x <= n.value);
    case 'ap':
      return range(e(n.approxLow), e(n.approxHigh) + '\x01', (x) => x >= n.approxLow && x <= n.approxHigh);
  }
}

/** A number no double stands for would be compared as 0 or infinity, and match what it is not: a 400 instead. */
function checkRepresentable(name: string, raw: string, text: string, code: string): void {
  if (unrepresentable(text)) {
    bad(name, `'${raw.slice(0, 64)}' is out of the range of numbers this server compares (64-bit doubles: it would underflow to 0 or overflow to infinity)`, code);
  }
}

/** `[prefix]number|system|code`, `[prefix]number||code` or `[prefix]number` (any unit). */
export function quantityCondition(code: string, name: string, raw: string, hash: Hash = identity): Condition {
  const parts = splitEscaped(raw, '|');
  if (parts.length !== 1 && parts.length !== 3) bad(name, `'${raw.slice(0, 64)}' is not a quantity ([prefix]number|system|code)`, 'ERR_INVALID_QUANTITY');
  const [number, system = '', unit = ''] = parts as [string, string?, string?];
  if (parts.length === 3 && unit === '') bad(name, `'${raw.slice(0, 64)}': a quantity with a system needs a code`, 'ERR_INVALID_QUANTITY');
  const keyPrefix = unit === '' ? '#' : `${sealedUnit(`${escapeTokenPart(system)}|${escapeTokenPart(unit)}`, hash)}#`;
  checkRepresentable(name, raw, splitPrefix(number)[1], 'ERR_INVALID_QUANTITY');
  try {
    return numberCondition(code, name, number, keyPrefix);
  } catch {
    return bad(name, `'${raw.slice(0, 64)}' is not a quantity ([prefix]number|system|code)`, 'ERR_INVALID_QUANTITY');
  }
}

/** `a$b`: every component but the last must be an exact match; the last may use its type's prefixes. */
function compositeCondition(param: SearchParam, name: string, raw: string, baseUrl: string | undefined, hash: Hash): Condition {
  // each part keeps its escapes for its component's parser (a token component's `\|`)
  const parts = splitKeepingEscapes(raw, '$');
  const components = param.components ?? [];
  if (parts.length !== components.length) bad(name, `needs ${components.length} values joined by '$'`, 'ERR_SEARCH_VALUE');
  let head = '';
  let plainHead = '';
  // a string component is stored as the hash of its whole folded value (extract.ts), not of its prefixes
  const part = (p: SearchParam, raw: string, h: Hash): Condition[] => {
    if (p.type !== 'string') return conditionFor(p, name, undefined, raw, baseUrl, h);
    const norm = normalizeString(unescapeValue(raw));
    return [{ ...exact(p.code, h(norm)), plain: (v) => v.startsWith(norm) }];
  };
  for (let i = 0; i < parts.length - 1; i++) {
    const [c] = part(components[i]!.param, parts[i]!, hash);
    const [p] = part(components[i]!.param, parts[i]!, identity);
    if (c?.exact === undefined || p?.exact === undefined) bad(name, 'only the last component of a composite may be a range', 'ERR_SEARCH_VALUE');
    // stored composites escape `\` and `$` in each component (extract.ts, compositeValues)
    head += `${escapeComponent(c.exact)}$`;
    plainHead += `${escapeComponent(p.plainExact ?? p.exact)}$`;
  }
  const lastParam = components[parts.length - 1]!.param;
  const [last] = part(lastParam, parts[parts.length - 1]!, hash);
  const [lastPlain] = part(lastParam, parts[parts.length - 1]!, identity);
  if (last!.residual) bad(name, 'this composite value cannot be searched', 'ERR_SEARCH_VALUE');
  // the rest after the head is the last component's value, escaped: one part, or not this value
  const lastValue = (rest: string, test: (v: string) => boolean) => {
    const [only, ...more] = splitEscaped(rest, '$');
    return more.length === 0 && test(only!);
  };
  const plain = (v: string) => v.startsWith(plainHead) && lastValue(v.slice(plainHead.length), lastPlain!.plain ?? lastPlain!.test);
  if (lastParam.type === 'string') {
    // A string matches by its start (search.html#composite: each component by its own type's rules), but the index
    // keeps the hash of the whole folded value: every value under the head is a candidate, checked on the
    // decrypted resource. The head (the code) keeps the scan to that code's values.
    return { code: param.code, lower: head, upper: head + HIGH, test: (v) => v.startsWith(head), plain, lossy: true };
  }
  return {
    code: param.code,
    lower: head + escapeComponent(last!.lower),
    upper: head + escapeComponent(last!.upper),
    test: (v) => v.startsWith(head) && lastValue(v.slice(head.length), last!.test),
    plain,
  };
}
