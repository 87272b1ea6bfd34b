/**
 * Index entries of a resource: for every supported search parameter of its type, the values its FHIRPath
 * expression yields, encoded as key strings (docs/storage.md, `search-value` / `resource-entries`). Pure: the
 * compiled expressions come from the registry; no I/O.
 *
 * Entry codes are the parameter code, or the code with a suffix for a derived view of the same values:
 * `name:exact` (string as written), `code:text` (token display text), `subject:identifier` (Reference.identifier),
 * `date:hi` (date ranges ordered by their end, for gt/ge/eb scans).
 */
import { dateRange, DATE_MAX, DATE_MIN, encodeInstant, encodeNumber, escapeComponent, escapeTokenPart, normalizeString, splitEscaped } from './encode.ts';
import { paramsOf, type SearchParam } from './registry.ts';

export interface IndexEntry {
  code: string;
  value: string;
}

/**
 * The entry codes whose presence gives a parameter a value, for `:missing` (search.html#missing): its own code, and
 * `<code>:identifier`, since a Reference that holds only an identifier has a value (searchable as `:identifier`)
 * but no `<code>` entry. Only references have `:identifier` entries. The other suffixes are not counted: `:exact`
 * and `:hi` never come without `<code>`, and `:text` is not stored, so the stored index could not count it.
 */
export function presenceCodes(code: string): [string, string] {
  return [code, `${code}:identifier`];
}

/**
 * Longest value kept in clear in a key. A longer clear value is keyed by its first MAX_VALUE characters and the keyed
 * hash of the whole (boundedValue), so keys stay bounded while equality stays exact; hashed values (strings, tokens)
 * are hashed whole, whatever their length.
 */
export const MAX_VALUE = 200;

export interface Typed {
  type: string | undefined;
  data: unknown;
}

/** A FHIRPath result node as its FHIR type name and plain data. */
export function typed(node: unknown): Typed {
  if (node && typeof node === 'object' && 'fhirNodeDataType' in node) {
    const n = node as { fhirNodeDataType?: string; data: unknown };
    // fhirpath.js wraps decimals (FP_Decimal) to keep their precision: the number is its `value`
    const d = n.data as { value?: unknown; asStr?: unknown } | null;
    const data = d && typeof d === 'object' && typeof d.value === 'number' && typeof d.asStr === 'string' ? d.value : n.data;
    return { type: n.fhirNodeDataType, data };
  }
  return { type: undefined, data: node };
}

const clean = (s: string) => s.replace(/[\x00-\x1f]/g, ' ');

export interface ExtractOptions {
  /** The server's FHIR base URL: absolute references under it are indexed as local `Type/id`. */
  baseUrl?: string;
  /** Only these parameters (by code): the others' expressions are not evaluated. */
  codes?: ReadonlySet<string>;
}

export function extractEntries(resource: { resourceType: string; id?: string }, options: ExtractOptions = {}): IndexEntry[] {
  const out = new Map<string, IndexEntry>();
  const add = (code: string, value: string) => {
    const v = clean(value);
    out.set(`${code}/${v}`, { code, value: v });
  };
  for (const param of paramsOf(resource.resourceType).values()) {
    if (options.codes && !options.codes.has(param.code)) continue;
    let nodes: unknown[];
    try {
      nodes = param.evaluate(resource);
    } catch {
      continue; // an element the expression cannot walk is not searchable; validation speaks about it
    }
    if (param.type === 'composite') {
      for (const node of nodes) for (const value of compositeValues(param, node, options)) add(param.code, value);
      continue;
    }
    for (const node of nodes) for (const [suffix, value] of valuesOf(param, typed(node), options)) add(param.code + suffix, value);
  }
  return [...out.values()];
}

/** Values of one node for a parameter: [code suffix, encoded value] pairs. */
export function valuesOf(param: SearchParam, node: Typed, options: ExtractOptions): Array<[string, string]> {
  const { data } = node;
  if (data === undefined || data === null) return [];
  switch (param.type) {
    case 'string':
      return stringsOf(data).flatMap((s) => [['', normalizeString(s)], [':exact', s]] as Array<[string, string]>);
    case 'token':
      return tokenValues(node);
    case 'reference':
      return referenceValues(param, data, options);
    case 'date':
      return dateValues(node).flatMap(([lo, hi]) => [['', `${lo}~${hi}`], [':hi', `${hi}~${lo}`]] as Array<[string, string]>);
    case 'number':
      return typeof data === 'number' ? [['', encodeNumber(data)]] : [];
    case 'quantity':
      return quantityValues(data).map((v) => ['', v]);
    case 'uri':
      return typeof data === 'string' ? [['', data]] : [];
    default:
      return [];
  }
}

function stringsOf(data: unknown): string[] {
  if (typeof data === 'string') return [data];
  if (!data || typeof data !== 'object') return [];
  const o = data as Record<string, unknown>;
  const parts: string[] = [];
  // HumanName and Address: every textual part is searchable on its own
  for (const key of ['text', 'family', 'given', 'prefix', 'suffix', 'line', 'city', 'district', 'state', 'postalCode', 'country']) {
    const v = o[key];
    if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') parts.push(x);
  }
  return parts;
}

/** A token's forms, system and code escaped (`\` and `|`): what a search value parses into (conditions.ts, tokenForm). */
function tokenForms(system: unknown, code: unknown): string[] {
  const forms: string[] = [];
  // resources are validated, but a malformed one (a numeric code) must not throw here: it is indexed as text
  const s = system ? escapeTokenPart(String(system)) : undefined;
  if (code !== undefined && code !== null && code !== '') {
    const c = escapeTokenPart(String(code));
    forms.push(c);
    forms.push(s ? `${s}|${c}` : `|${c}`);
  }
  if (s) forms.push(`${s}|`);
  return forms;
}

function tokenValues({ type, data }: Typed): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const text = (s: unknown) => typeof s === 'string' && s && out.push([':text', normalizeString(s)]);
  if (typeof data === 'string' || typeof data === 'number') {
    for (const f of tokenForms(undefined, String(data))) out.push(['', f]);
    return out;
  }
  if (typeof data === 'boolean') return [['', String(data)]];
  if (typeof data !== 'object') return out;
  const o = data as Record<string, any>;
  const coding = (c: Record<string, any>) => {
    for (const f of tokenForms(c.system, c.code)) out.push(['', f]);
    text(c.display);
  };
  if (Array.isArray(o.coding) || type === 'CodeableConcept') {
    for (const c of o.coding ?? []) if (c && typeof c === 'object') coding(c);
    text(o.text);
  } else if ('code' in o) coding(o);
  else if ('value' in o) {
    // Identifier and ContactPoint: system|value
    for (const f of tokenForms(o.system, o.value === undefined ? undefined : String(o.value))) out.push(['', f]);
    text(o.type?.text);
  }
  return out;
}

function referenceValues(param: SearchParam, data: unknown, options: ExtractOptions): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (typeof data === 'string') {
    // canonical: indexed with and without its |version
    out.push(['', data]);
    if (data.includes('|')) out.push(['', data.slice(0, data.indexOf('|'))]);
    return out;
  }
  if (!data || typeof data !== 'object') return out;
  const o = data as { reference?: unknown; identifier?: { system?: string; value?: string } };
  if (o.identifier && typeof o.identifier === 'object') {
    for (const f of tokenForms(o.identifier.system, o.identifier.value)) out.push([':identifier', f]);
  }
  if (typeof o.reference !== 'string') return out;
  const local = localReference(o.reference, options.baseUrl);
  if (local) {
    // what `.where(resolve() is X)` would have decided for a local reference
    if (param.target && !param.target.includes(local.type)) return [];
    out.push(['', `${local.type}/${local.id}`], ['', local.id]);
  } else if (!o.reference.startsWith('#')) out.push(['', o.reference]);
  return out;
}

const LOCAL_REF = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** `Patient/1`, `Patient/1/_history/2` and `<base>/Patient/1` → Patient, 1; other URLs → undefined. */
export function localReference(reference: string, baseUrl?: string): { type: string; id: string } | undefined {
  let ref = reference;
  if (baseUrl && ref.startsWith(`${baseUrl}/`)) ref = ref.slice(baseUrl.length + 1);
  const m = LOCAL_REF.exec(ref);
  return m ? { type: m[1]!, id: m[2]! } : undefined;
}

function dateValues({ type, data }: Typed): Array<[string, string]> {
  const range = (s: unknown): [string, string] | undefined => {
    if (typeof s !== 'string') return undefined;
    const r = dateRange(s);
    return r ? [encodeInstant(r.low), encodeInstant(r.high)] : undefined;
  };
  if (typeof data === 'string') {
    const r = range(data);
    return r ? [r] : [];
  }
  if (!data || typeof data !== 'object') return [];
  const o = data as Record<string, any>;
  if (type === 'Period' || 'start' in o || 'end' in o) {
    const start = range(o.start);
    const end = range(o.end);
    if (!start && !end) return [];
    return [[start?.[0] ?? DATE_MIN, end?.[1] ?? DATE_MAX]];
  }
  if (Array.isArray(o.event)) return o.event.flatMap((e: unknown) => (range(e) ? [range(e)!] : []));
  return [];
}

function quantityValues(data: unknown): string[] {
  if (!data || typeof data !== 'object') return [];
  const o = data as { value?: unknown; system?: string; code?: string; unit?: string; currency?: string };
  if (typeof o.value !== 'number') return [];
  const n = encodeNumber(o.value);
  const out = new Set<string>([`#${n}`]);
  const system = o.currency ? 'urn:iso:std:iso:4217' : o.system;
  const code = o.currency ?? o.code;
  // unit parts escaped as token parts are: a search's `system|code` is parsed the same way (conditions.ts)
  if (code) {
    out.add(`|${escapeTokenPart(String(code))}#${n}`);
    if (system) out.add(`${escapeTokenPart(String(system))}|${escapeTokenPart(String(code))}#${n}`);
  }
  if (o.unit) out.add(`|${escapeTokenPart(String(o.unit))}#${n}`);
  return [...out];
}

/**
 * Composite values: every combination of the components' values, each with `\` and `$` escaped, joined by `$` (as
 * the search syntax does), so that a component value holding a `$` splits back whole.
 * `node` is one of `param.evaluate`'s nodes; tests pass `viaFhirpath` with a node of `param.evaluateFhirpath`.
 */
export function compositeValues(param: SearchParam, node: unknown, options: ExtractOptions, viaFhirpath = false): string[] {
  let combos: string[] = [''];
  for (const [i, component] of (param.components ?? []).entries()) {
    let values: string[] = [];
    try {
      for (const sub of viaFhirpath ? component.evaluateFhirpath(node) : component.evaluate(node)) {
        for (const [suffix, v] of valuesOf(component.param, typed(sub), options)) if (suffix === '') values.push(v);
      }
    } catch {
      return [];
    }
    values = [...new Set(values.map(escapeComponent))];
    if (values.length === 0) return [];
    combos = combos.flatMap((c) => values.map((v) => (i === 0 ? v : `${c}$${v}`)));
  }
  return combos;
}

/** Keyed hash of an index value (see sealEntries); identity in pure tests. */
export type IndexHash = (value: string) => string;

/**
 * Lengths at which string prefixes are indexed (as keyed hashes): every length up to 4, then a ladder that grows
 * by about half. A search prefix of another length is looked up at the longest rung not above it and the
 * candidates are checked on their decrypted values (conditions.ts, `lossy`): a Patient's names and address take
 * ~60 index keys instead of the ~120 that every prefix up to 40 characters took.
 */
export const PREFIX_LENGTHS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32] as const;

/** The longest indexed prefix length not above `n` (0 for n = 0). */
export function indexedPrefixLength(n: number): number {
  let best = 0;
  for (const l of PREFIX_LENGTHS) if (l <= n) best = l;
  return best;
}

export function sealEntries(resourceType: string, entries: IndexEntry[], hash: IndexHash): IndexEntry[] {
  const out = new Map<string, IndexEntry>();
  const add = (code: string, value: string) => out.set(`${code}/${value}`, { code, value });
  const params = paramsOf(resourceType);
  for (const e of entries) {
    const colon = e.code.indexOf(':');
    const base = colon < 0 ? e.code : e.code.slice(0, colon);
    const suffix = colon < 0 ? '' : e.code.slice(colon);
    const param = params.get(base);
    if (param?.indexCode !== undefined) continue; // stored once under the code it repeats (registry.ts)
    if (!param || e.code === '_id') {
      // ids are no secret (the ledger names them) and `_id` entries list a type's resources
      add(e.code, boundedValue(e.value, hash));
      continue;
    }
    if (param.type === 'string' && suffix === '') {
      for (const l of PREFIX_LENGTHS) {
        if (l > e.value.length) break;
        add(e.code, hash(e.value.slice(0, l)));
      }
    } else if (param.type === 'token' && suffix === ':text') {
      continue;
    } else if (param.type === 'composite') {
      const parts = splitEscaped(e.value, '$');
      const components = param.components ?? [];
      add(e.code, parts.map((p, i) => escapeComponent(sealedComponent(components[i]?.param.type, p, hash))).join('$'));
    } else if (suffix === ':identifier') {
      add(e.code, hash(e.value));
    } else add(e.code, sealedComponent(param.type, e.value, hash, suffix));
  }
  return [...out.values()];
}

/**
 * One value as a key holds it: strings (their `:exact` view, or a composite's folded component) and tokens as the
 * keyed hash of the whole value; quantities with their unit part bounded; anything else in clear, bounded.
 */
function sealedComponent(type: string | undefined, value: string, hash: IndexHash, suffix = ''): string {
  if (type === 'string' || (type === 'token' && suffix === '')) return hash(value);
  if (type === 'quantity') return sealedQuantity(value, hash);
  return boundedValue(value, hash);
}

/**
 * A clear value as a key holds it: itself up to MAX_VALUE characters; a longer one as its first MAX_VALUE characters
 * followed by the keyed hash of the whole value. Such a key is longer than MAX_VALUE, so it never equals a short
 * value's key; equal keys mean equal values; and a prefix of up to MAX_VALUE characters is still a prefix of the key
 * (`:below` scans). A longer prefix is looked up by its first MAX_VALUE characters and checked on the decrypted
 * values (conditions.ts).
 */
export function boundedValue(value: string, hash: IndexHash): string {
  return value.length <= MAX_VALUE ? value : value.slice(0, MAX_VALUE) + hash(value);
}

/** Encoded numbers are this long (encode.ts, encodeNumber); a quantity key ends in `#` and one. */
const NUMBER_WIDTH = 16;

/**
 * The unit part of a quantity key (`system|code`, `|code`, `` for any unit): in clear, unless with its `#<number>`
 * it would be longer than MAX_VALUE; then the keyed hash of it, which holds no `|` and so never equals a clear unit
 * part (every non-empty one has a `|`). The number stays in clear after it, for range scans.
 */
export function sealedUnit(unit: string, hash: IndexHash): string {
  return unit.length + 1 + NUMBER_WIDTH <= MAX_VALUE ? unit : hash(unit);
}

function sealedQuantity(value: string, hash: IndexHash): string {
  const sharp = value.lastIndexOf('#');
  return sharp < 0 ? boundedValue(value, hash) : sealedUnit(value.slice(0, sharp), hash) + value.slice(sharp);
}
