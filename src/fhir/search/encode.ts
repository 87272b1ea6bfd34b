/**
 * Order-preserving encodings of search values as key strings (docs/storage.md, search index). Pure: no I/O.
 * Dates become [low, high] instant ranges per their precision; numbers become 16 hex digits that sort in numeric
 * order; strings are normalized (case and accents folded) so that `Müller` is found by `muller`.
 */

/** Milliseconds from 0000-01-01T00:00:00Z to the Unix epoch: shifts every year 0001–9999 to a positive number. */
const EPOCH_SHIFT = 62_167_219_200_000;
/** Width of an encoded instant: enough for 9999-12-31T23:59:59.999Z shifted. */
const INSTANT_WIDTH = 15;
export const DATE_MIN = '0'.repeat(INSTANT_WIDTH);
export const DATE_MAX = '9'.repeat(INSTANT_WIDTH);

export function encodeInstant(ms: number): string {
  return Math.max(0, ms + EPOCH_SHIFT).toString().padStart(INSTANT_WIDTH, '0');
}

export function decodeInstant(encoded: string): number {
  return Number(encoded) - EPOCH_SHIFT;
}

export interface DateRange {
  /** First millisecond of the range (ms since the Unix epoch). */
  low: number;
  /** Last millisecond of the range, inclusive. */
  high: number;
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The instants a FHIR date, dateTime or instant covers at its precision: `2024` is the whole year, `2024-03-01T10:00Z`
 * the whole minute. A time without a zone is taken as UTC. Returns undefined for malformed or impossible dates.
 */
export function dateRange(value: string): DateRange | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (h !== undefined && mi === undefined) return undefined; // `T10` alone is not a FHIR time
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined; // 2023-02-30
  let low = date.getTime();
  let fracDigits = 0;
  if (frac !== undefined) {
    fracDigits = Math.min(frac.length, 3);
    low += Number(frac.slice(0, 3).padEnd(3, '0'));
  }
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const offset = (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    if (Number(zone.slice(1, 3)) > 14 || Number(zone.slice(4, 6)) > 59) return undefined;
    low -= sign * offset;
  }
  const end = new Date(date.getTime());
  if (mo === undefined) end.setUTCFullYear(year + 1, 0, 1);
  else if (d === undefined) end.setUTCFullYear(year, month, 1);
  else if (h === undefined) end.setUTCDate(day + 1);
  else if (s === undefined) end.setUTCMinutes(minute + 1);
  else if (frac === undefined) end.setUTCSeconds(second + 1);
  const span = frac === undefined ? end.getTime() - date.getTime() : 10 ** (3 - fracDigits);
  return { low, high: low + span - 1 };
}

/** IEEE 754 double → 16 lowercase hex digits whose lexicographic order is the numeric order. */
export function encodeNumber(n: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, n === 0 ? 0 : n); // -0 and 0 are one value
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const [h, l] = n < 0 ? [~hi >>> 0, ~lo >>> 0] : [(hi ^ 0x80000000) >>> 0, lo];
  return h.toString(16).padStart(8, '0') + l.toString(16).padStart(8, '0');
}

export function decodeNumber(encoded: string): number {
  let hi = parseInt(encoded.slice(0, 8), 16);
  let lo = parseInt(encoded.slice(8, 16), 16);
  if (hi & 0x80000000) hi = (hi ^ 0x80000000) >>> 0;
  else [hi, lo] = [~hi >>> 0, ~lo >>> 0];
  const view = new DataView(new ArrayBuffer(8));
  view.setUint32(0, hi);
  view.setUint32(4, lo);
  return view.getFloat64(0);
}

export interface NumberRange {
  value: number;
  /** Inclusive lower and exclusive upper bound implied by the precision the value was written with. */
  low: number;
  high: number;
  /** Inclusive bounds of `ap`: the value ± 10% of it (search.html#prefix). */
  approxLow: number;
  approxHigh: number;
}

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * A search number with its implicit precision range (http://hl7.org/fhir/R4/search.html#number): `100` is
 * [99.5, 100.5), `100.00` is [99.995, 100.005), `1e2` is [95, 105) as the spec's own example has it.
 * Bounds are computed in decimal and rounded once: in doubles `5.4 - 0.05` is 5.3500000000000005 and `8.7 + 0.87`
 * 9.569999999999999, so a stored 5.35 would miss `eq5.4` and a stored 9.57 `ap8.7`, both of which hold it.
 */
export function numberRange(text: string): NumberRange | undefined {
  const m = DECIMAL.exec(text);
  if (!m || unrepresentable(text)) return undefined;
  const value = Number(text);
  const [, sign, whole, fraction = '', exponentText] = m;
  // value = digits × 10^scale
  const digits = BigInt(`${sign}${whole}${fraction}`);
  const scale = (exponentText === undefined ? 0 : Number(exponentText)) - fraction.length;
  // half a unit of the next digit; for the exponent form a unit of the one after (1e2 → ±5)
  const [units, unitScale] = exponentText === undefined ? [10n, scale - 1] : [100n, scale - 2];
  const decimal = (mantissa: bigint, exponent: number) => Number(`${mantissa}e${exponent}`);
  const magnitude = digits < 0n ? -digits : digits;
  return {
    value,
    low: decimal(digits * units - 5n, unitScale),
    // More digits than a double holds make the half unit vanish next to `value` (`1.00000000000000000001`, `5.7e-33`
    // with 16 digits): the range must still hold the value itself, or `eq` would match nothing.
    high: Math.max(decimal(digits * units + 5n, unitScale), nextUp(value)),
    approxLow: decimal(digits * 10n - magnitude, scale - 1),
    approxHigh: decimal(digits * 10n + magnitude, scale - 1),
  };
}

/**
 * A well-formed decimal no double stands for: it overflows to infinity (`1e400`) or underflows to 0 though its
 * digits are not all zero (`1e-400`). Compared as the 0 or the infinity it parses to, it would match what it is not.
 */
export function unrepresentable(text: string): boolean {
  const m = DECIMAL.exec(text);
  if (!m) return false;
  const value = Number(text);
  return !Number.isFinite(value) || (value === 0 && /[1-9]/.test(m[2]! + (m[3] ?? '')));
}

/** The smallest double above a finite `x`. */
function nextUp(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x === 0 ? 0 : x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, x >= 0 ? bits + 1n : bits - 1n);
  return view.getFloat64(0);
}

/** Case, accents and runs of whitespace folded: the default (starts-with) string match compares these. */
export function normalizeString(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ').trim();
}

/**
 * Splits at separators not escaped with a backslash, keeping the escapes (http://hl7.org/fhir/R4/search.html#escaping):
 * a value split at `,` is split again at `|` or `$` by its type's parser, which unescapes the parts it ends with.
 */
export function splitKeepingEscapes(value: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) {
      current += c + value[i + 1];
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/** `\$`, `\|`, `\,` and `\\` (a backslash before any character) stand for the character itself. */
export function unescapeValue(value: string): string {
  return value.replace(/\\([\s\S])/g, '$1');
}

/** Splits at separators not escaped with a backslash, then removes the escapes. */
export function splitEscaped(value: string, separator: string): string[] {
  return splitKeepingEscapes(value, separator).map(unescapeValue);
}

/**
 * A token's system or code inside a stored `system|code` form (and a quantity's unit), with `\` and `|` escaped: a
 * code that holds a `|` then never reads as a system and a code, and a search value escaped the same way finds it.
 */
export function escapeTokenPart(s: string): string {
  return s.replace(/[\\|]/g, '\\$&');
}

/** A composite's component value inside a stored `a$b` value, with `\` and `$` escaped: the value splits back into its components. */
export function escapeComponent(s: string): string {
  return s.replace(/[\\$]/g, '\\$&');
}
