/**
 * Checks of single values that the R4 JSON schema cannot make: calendar-valid dates, JSON numbers against their
 * FHIR type, well-formed strings within R4's size limit, base64Binary in linear time and the syntax of references
 * (http://hl7.org/fhir/R4/references.html#literal). Pure functions; each returns a plain-words reason, or
 * undefined when the value is fine.
 */
import type { DateKind } from './model.ts';

/** A value as messages show it: quoted, and cut short so an outcome never echoes a whole payload. */
export function quote(value: string, max = 80): string {
  return `'${value.length > max ? `${value.slice(0, max)}…` : value}'`;
}

/** http://hl7.org/fhir/R4/datatypes.html#id */
export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

// The R4 regular expressions of date, dateTime and instant (datatypes.html), with the parts captured.
const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const TIME = 'T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';
const FORMATS: Record<DateKind, RegExp> = {
  date: new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`),
  dateTime: new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(${TIME})?)?)?$`),
  instant: new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])${TIME}$`),
};

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Why `value` is not a valid `kind` (format or calendar), or undefined when it is. */
export function dateError(kind: DateKind, value: string): string | undefined {
  if (!FORMATS[kind].test(value)) {
    if (kind === 'instant') return 'an instant needs a full date, a time with seconds and a time zone';
    if (value.includes('T')) return 'a time needs hours, minutes, seconds and a time zone between -13:59 and +14:00';
    return 'expected YYYY, YYYY-MM or YYYY-MM-DD with a real month and day';
  }
  if (value.length < 10) return undefined;
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  const last = daysInMonth(year, month);
  return day > last ? `day ${day} does not exist in ${value.slice(0, 7)} (it has ${last} days)` : undefined;
}

const INT32_MAX = 2_147_483_647;
const INTEGER_RANGES: Record<string, [number, string]> = {
  integer: [-INT32_MAX - 1, 'a whole number from -2147483648 to 2147483647'],
  unsignedInt: [0, 'a whole number from 0 to 2147483647'],
  positiveInt: [1, 'a whole number from 1 to 2147483647'],
};

/**
 * Why the JSON number `value` is not a valid `type`, or undefined when it is. The schema types integer,
 * unsignedInt and positiveInt as any JSON number (their patterns apply to strings only), so 1.5, 0 and 2^31 got
 * through; and JSON.parse reads 1e400 as Infinity, which no FHIR number is (and no canonical JSON can write).
 */
export function numberError(type: string, value: number): string | undefined {
  if (Number.isNaN(value)) return 'it is not a number';
  if (!Number.isFinite(value)) return 'it is too large: JSON.parse reads it as infinity';
  const range = INTEGER_RANGES[type];
  if (range && (!Number.isInteger(value) || value < range[0] || value > INT32_MAX)) return `expected ${range[1]}`;
  return undefined;
}

/** R4 datatypes.html#string: "strings SHALL NOT exceed 1MB in size" (string and the types derived from it). */
export const MAX_STRING_BYTES = 1024 * 1024;

/**
 * Why the JSON string `value` cannot be a FHIR string, or undefined. A JSON text may escape half a surrogate pair
 * (`"\ud800"`): that is no Unicode character, and nothing can store it as UTF-8 unchanged.
 */
export function stringError(value: string, limited: boolean): string | undefined {
  if (!value.isWellFormed()) return 'it holds a lone UTF-16 surrogate (\\uD800–\\uDFFF), which is no Unicode character';
  if (limited && value.length * 3 > MAX_STRING_BYTES && Buffer.byteLength(value) > MAX_STRING_BYTES) {
    return `it is longer than ${MAX_STRING_BYTES} bytes, the R4 limit for strings`;
  }
  return undefined;
}

const BASE64_CHARS = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=') BASE64_CHARS[c.charCodeAt(0)] = 1;

/**
 * Why `value` is not a base64Binary, or undefined when it is: the R4 pattern `^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$`
 * read as XML Schema does (`\s` is space, tab, CR, LF), i.e. groups of four base64 characters with whitespace
 * only between groups, at least one group. One pass; schema.ts says why the pattern itself is not used.
 */
export function base64Error(value: string): string | undefined {
  let inGroup = 0;
  let groups = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      if (inGroup !== 0) return `whitespace at position ${i} splits a group of four characters`;
    } else if (c < 128 && BASE64_CHARS[c] === 1) {
      if (++inGroup === 4) {
        inGroup = 0;
        groups++;
      }
    } else {
      return `${quote(String.fromCodePoint(value.codePointAt(i)!))} at position ${i} is not a base64 character`;
    }
  }
  if (inGroup !== 0) return 'its length without whitespace is not a multiple of four';
  return groups === 0 ? 'it is empty' : undefined;
}

export interface ReferenceRules {
  /** The 146 resource types: a relative reference must name one. */
  resourceTypes: ReadonlySet<string>;
  /** `Type?search` references, which only a transaction resolves. */
  allowConditional: boolean;
  /** `urn:uuid:` / `urn:oid:` references, which only make sense inside a Bundle that has those fullUrls. */
  allowUrn: boolean;
}

export interface ParsedReference {
  kind: 'local' | 'relative' | 'absolute' | 'conditional' | 'urn';
  /** The resource type named by the reference, when it names one. */
  type?: string;
}

const UUID = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OID = /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/;
const RESTFUL_TAIL = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** Parses a Reference.reference, or returns the reason it is not acceptable here. */
export function parseReference(ref: string, rules: ReferenceRules): ParsedReference | { error: string } {
  if (ref.startsWith('#')) {
    const id = ref.slice(1);
    return id === '' || ID_PATTERN.test(id) ? { kind: 'local' } : { error: `${quote(id)} is not a valid contained resource id` };
  }
  if (ref.startsWith('urn:')) {
    if (!UUID.test(ref) && !OID.test(ref)) return { error: 'a urn reference must be urn:uuid:<lowercase uuid> or urn:oid:<oid>' };
    if (!rules.allowUrn) return { error: 'urn:uuid and urn:oid references can only be resolved inside a Bundle' };
    return { kind: 'urn' };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref)) {
    let url: URL;
    try {
      url = new URL(ref);
    } catch {
      return { error: 'it is not a valid absolute URL' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return { error: `absolute references must use http or https, not ${url.protocol}` };
    }
    const tail = RESTFUL_TAIL.exec(url.pathname);
    return tail && rules.resourceTypes.has(tail[1]!) ? { kind: 'absolute', type: tail[1]! } : { kind: 'absolute' };
  }
  const question = ref.indexOf('?');
  if (question >= 0) {
    const type = ref.slice(0, question);
    if (!rules.resourceTypes.has(type)) return { error: `${quote(type)} is not a resource type` };
    if (!rules.allowConditional) return { error: 'conditional references are only allowed in a transaction' };
    return question === ref.length - 1 ? { error: 'a conditional reference needs search parameters' } : { kind: 'conditional', type };
  }
  const parts = ref.split('/');
  const type = parts[0]!;
  const shaped = (parts.length === 2 || (parts.length === 4 && parts[2] === '_history')) && parts.every((p) => p !== '');
  if (!shaped) return { error: 'expected Type/id, Type/id/_history/version, an absolute URL or #contained-id' };
  if (!rules.resourceTypes.has(type)) return { error: `${quote(type)} is not a resource type` };
  if (!ID_PATTERN.test(parts[1]!)) return { error: `${quote(parts[1]!)} is not a valid resource id` };
  if (parts.length === 4 && !ID_PATTERN.test(parts[3]!)) return { error: `${quote(parts[3]!)} is not a valid version id` };
  return { kind: 'relative', type };
}
