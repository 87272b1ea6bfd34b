/**
 * Ledger entries: built from a draft at append time, stored as their RFC 8785 canonical bytes, hashed as RFC 9162
 * leaves, and parsed back strictly (docs/ledger.md has the schema). Only the fields of types.ts are accepted, in
 * both directions: a stray field (say, a resource spread into a draft by mistake) is refused rather than written
 * into a log that can never be edited.
 */
import { errors, type FhirError } from '../errors.ts';
import { decodeUtf8, parseCanonical } from './canonical.ts';
import { EMPTY_ROOT, HASH_SIZE, leafHash, type Hash } from './merkle.ts';
import type { Entry, EntryDraft } from './types.ts';

/** An entry with its stored bytes and leaf hash. */
export interface SealedEntry {
  entry: Entry;
  bytes: Uint8Array;
  leafHash: Hash;
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strict standard base64 (with padding), as C2SP notes and tlog use; anything else is ERR_BASE64. */
export function fromBase64(text: string): Uint8Array {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'base64') : undefined;
  if (bytes === undefined || bytes.toString('base64') !== text) {
    throw errors.badRequest('Not canonical base64', undefined, 'ERR_BASE64');
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `prev` of entry 0: base64 of SHA-256 of the empty string (the RFC 9162 empty-tree root). */
export const GENESIS_PREV = toBase64(EMPTY_ROOT);

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const AGENT_FIELDS = ['sub', 'issuer', 'fhirUser', 'clientId', 'address'] as const;
const ENTITY_FIELDS = ['reference', 'version', 'cid', 'hmac', 'patient'] as const;
const TEXT_FIELDS = ['operation', 'query', 'purpose', 'error'] as const;
const AGENT_SET = new Set<string>(AGENT_FIELDS);
const ENTITY_SET = new Set<string>(ENTITY_FIELDS);
const DRAFT_FIELDS = new Set<string>(['interaction', 'status', 'agent', 'entity', 'patients', ...TEXT_FIELDS]);
const ENTRY_FIELDS = new Set<string>([...DRAFT_FIELDS, 'v', 'seq', 'time', 'prev']);

type Fail = (path: string, why: string) => FhirError;

function record(value: unknown, allowed: ReadonlySet<string>, path: string, fail: Fail): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fail(path, 'must be an object');
  for (const [key, v] of Object.entries(value)) {
    if (!allowed.has(key) && v !== undefined) throw fail(`${path}.${key}`, 'is not a ledger entry field');
  }
  return value as Record<string, unknown>;
}

/** Copies the optional string fields that are present, so absent and undefined give the same bytes. */
function copyStrings(from: Record<string, unknown>, keys: readonly string[], to: Record<string, unknown>, path: string, fail: Fail): void {
  for (const key of keys) {
    const v = from[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw fail(`${path}.${key}`, 'must be a string');
    to[key] = v;
  }
}

/** The draft part of an entry, validated and without undefined members. */
function cleanDraft(value: unknown, allowed: ReadonlySet<string>, fail: Fail): EntryDraft {
  const src = record(value, allowed, 'entry', fail);
  const out: Record<string, unknown> = {};
  if (typeof src.interaction !== 'string' || src.interaction === '') throw fail('entry.interaction', 'must be a non-empty string');
  out.interaction = src.interaction;
  if (!Number.isInteger(src.status) || (src.status as number) < 100 || (src.status as number) > 599) {
    throw fail('entry.status', 'must be an HTTP status code');
  }
  out.status = src.status;
  const agent: Record<string, unknown> = {};
  copyStrings(record(src.agent, AGENT_SET, 'entry.agent', fail), AGENT_FIELDS, agent, 'entry.agent', fail);
  out.agent = agent;
  if (src.entity !== undefined) {
    if (!Array.isArray(src.entity)) throw fail('entry.entity', 'must be an array');
    out.entity = src.entity.map((item: unknown, i) => {
      const path = `entry.entity[${i}]`;
      const ref = record(item, ENTITY_SET, path, fail);
      if (typeof ref.reference !== 'string' || ref.reference === '') throw fail(`${path}.reference`, 'must be a non-empty string');
      const copy: Record<string, unknown> = {};
      copyStrings(ref, ENTITY_FIELDS, copy, path, fail);
      return copy;
    });
  }
  if (src.patients !== undefined) {
    if (!Array.isArray(src.patients) || !src.patients.every((p) => typeof p === 'string')) {
      throw fail('entry.patients', 'must be an array of strings');
    }
    out.patients = [...src.patients];
  }
  copyStrings(src, TEXT_FIELDS, out, 'entry', fail);
  return out as unknown as EntryDraft;
}

const draftFail: Fail = (path, why) => errors.internal(`Ledger draft ${path} ${why}`, 'ERR_LEDGER_DRAFT_INVALID');

/** Builds entry `seq` from a draft: validated, undefined members dropped, canonical bytes and leaf hash computed. */
export function sealEntry(draft: EntryDraft, seq: number, time: string, prev: string): SealedEntry {
  const entry: Entry = { v: 1, seq, time, prev, ...cleanDraft(draft, DRAFT_FIELDS, draftFail) };
  const bytes = Buffer.from(entryJson(entry), 'utf8');
  return { entry, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), leafHash: leafHash(bytes) };
}

// Member names of each object of the schema, in RFC 8785 order (UTF-16 code units; all ASCII here).
const ENTRY_ORDER = ['agent', 'entity', 'error', 'interaction', 'operation', 'patients', 'prev', 'purpose', 'query', 'seq', 'status', 'time', 'v'] as const;
const AGENT_ORDER = [...AGENT_FIELDS].sort();
const ENTITY_ORDER = [...ENTITY_FIELDS].sort();

/** An RFC 8785 string: ECMAScript's JSON string form, which is the RFC's, for well-formed text only. */
function jsonString(value: string): string {
  if (!value.isWellFormed()) throw errors.internal('A lone surrogate cannot be canonicalized', 'ERR_CANONICAL_JSON');
  return JSON.stringify(value);
}

function stringMembers(value: Record<string, unknown>, order: readonly string[]): string {
  let out = '{';
  for (const key of order) {
    const v = value[key];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += `"${key}":${jsonString(v as string)}`;
  }
  return `${out}}`;
}

/**
 * The RFC 8785 text of an entry cleanDraft produced (so of known members and types): members written in their
 * canonical order, strings as JSON.stringify writes them (the RFC's own definition), the integers as decimal.
 * The same text as canonicalString(entry) (tested against the canonicalize package), at a fraction of the cost
 * of its generic walk, which was the largest part of sealing an entry.
 */
function entryJson(entry: Entry): string {
  const record = entry as unknown as Record<string, unknown>;
  let out = '{';
  for (const key of ENTRY_ORDER) {
    const v = record[key];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += `"${key}":`;
    if (key === 'agent') out += stringMembers(v as Record<string, unknown>, AGENT_ORDER);
    else if (key === 'entity') out += `[${(v as Array<Record<string, unknown>>).map((e) => stringMembers(e, ENTITY_ORDER)).join(',')}]`;
    else if (key === 'patients') out += `[${(v as string[]).map(jsonString).join(',')}]`;
    else if (typeof v === 'number') out += String(v);
    else out += jsonString(v as string);
  }
  return `${out}}`;
}

/**
 * Parses stored entry bytes: well-formed UTF-8, canonical JSON, exactly the schema's fields, and (when given) the
 * expected seq. Throws ERR_LEDGER_ENTRY_INVALID naming the offending field.
 */
export function parseEntry(bytes: Uint8Array, expectedSeq?: number): Entry {
  const where = expectedSeq === undefined ? 'Ledger entry' : `Ledger entry ${expectedSeq}`;
  const fail: Fail = (path, why) => errors.internal(`${where}: ${path} ${why}`, 'ERR_LEDGER_ENTRY_INVALID');
  let text: string;
  try {
    text = decodeUtf8(bytes);
  } catch {
    throw fail('bytes', 'are not well-formed UTF-8');
  }
  const value = parseCanonical(text);
  if (value === undefined) throw fail('bytes', 'are not canonical JSON (RFC 8785)');
  const draft = cleanDraft(value, ENTRY_FIELDS, fail);
  const src = value as Record<string, unknown>;
  if (src.v !== 1) throw fail('entry.v', 'must be 1');
  if (!Number.isSafeInteger(src.seq) || (src.seq as number) < 0) throw fail('entry.seq', 'must be a non-negative integer');
  if (expectedSeq !== undefined && src.seq !== expectedSeq) throw fail('entry.seq', `is ${String(src.seq)}`);
  if (typeof src.time !== 'string' || !ISO_TIME.test(src.time) || Number.isNaN(Date.parse(src.time))) {
    throw fail('entry.time', 'must be an ISO 8601 UTC time');
  }
  if (typeof src.prev !== 'string' || !isBase64Hash(src.prev)) throw fail('entry.prev', 'must be a base64 SHA-256 hash');
  return { v: 1, seq: src.seq as number, time: src.time, prev: src.prev, ...draft };
}

function isBase64Hash(text: string): boolean {
  try {
    return fromBase64(text).length === HASH_SIZE;
  } catch {
    return false;
  }
}

/**
 * The verifier's fast path for one stored entry, read as a string (LevelDB's UTF-8 decoding): answers the entry's
 * `prev` when `text` is certainly what parseEntry(bytes, seq) accepts, and undefined otherwise — the caller then
 * runs parseEntry on the raw bytes, which decides and names the problem. A single pass over the characters, with
 * no JSON.parse, no re-serialization and no objects built: the full-log verifier's budget is a few microseconds
 * per entry.
 *
 * Only a restricted form is accepted, chosen so that acceptance implies parseEntry's: every character is
 * printable ASCII (so the text is the stored bytes exactly: a decoded invalid sequence would be U+FFFD, and
 * canonical JSON needs no escape), no string holds `"` or `\`, members are the schema's, strictly sorted and of
 * the schema's types, integers are plain digits without a leading zero, `seq` is `seq`. Under these rules
 * JSON.stringify(JSON.parse(text)) === text, which is parseCanonical's test. Anything else (escapes, non-ASCII
 * text, any malformation) is left to the exact path.
 */
export function fastEntryPrev(text: string, seq: number): string | undefined {
  const n = text.length;
  let p = 0;
  /** End index (exclusive of the closing quote) of the ASCII string starting at p (an opening quote), or -1. */
  const str = (): number => {
    if (text.charCodeAt(p) !== 0x22) return -1;
    for (let i = p + 1; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) return i;
      if (c < 0x20 || c > 0x7e || c === 0x5c) return -1;
    }
    return -1;
  };
  /** A string member value; returns its text or undefined. */
  const strValue = (): string | undefined => {
    const end = str();
    if (end < 0) return undefined;
    const value = text.slice(p + 1, end);
    p = end + 1;
    return value;
  };
  /** An object of optional string members from `allowed` (sorted); `required` must be present and non-empty. */
  const strObject = (allowed: ReadonlySet<string>, required?: string): boolean => {
    if (text.charCodeAt(p) !== 0x7b) return false;
    p++;
    let last = '';
    let hasRequired = required === undefined;
    if (text.charCodeAt(p) === 0x7d) {
      p++;
      return hasRequired;
    }
    for (;;) {
      const key = strValue();
      if (key === undefined || !allowed.has(key) || !(last < key) || text.charCodeAt(p) !== 0x3a) return false;
      p++;
      last = key;
      const value = strValue();
      if (value === undefined) return false;
      if (key === required) hasRequired = value !== '';
      const c = text.charCodeAt(p++);
      if (c === 0x7d) return hasRequired;
      if (c !== 0x2c) return false;
    }
  };
  /** An array whose items `item` parses. */
  const array = (item: () => boolean): boolean => {
    if (text.charCodeAt(p) !== 0x5b) return false;
    p++;
    if (text.charCodeAt(p) === 0x5d) {
      p++;
      return true;
    }
    for (;;) {
      if (!item()) return false;
      const c = text.charCodeAt(p++);
      if (c === 0x5d) return true;
      if (c !== 0x2c) return false;
    }
  };
  /** Plain decimal digits without a leading zero; returns the number or -1. */
  const integer = (): number => {
    const start = p;
    while (p < n && text.charCodeAt(p) >= 0x30 && text.charCodeAt(p) <= 0x39) p++;
    if (p === start || p - start > 16 || (text.charCodeAt(start) === 0x30 && p - start > 1)) return -1;
    return Number(text.slice(start, p));
  };

  if (text.charCodeAt(0) !== 0x7b) return undefined;
  p = 1;
  let last = '';
  let prev: string | undefined;
  let required = 0;
  for (;;) {
    const key = strValue();
    if (key === undefined || !(last < key) || text.charCodeAt(p) !== 0x3a) return undefined;
    p++;
    last = key;
    switch (key) {
      case 'agent':
        if (!strObject(AGENT_SET)) return undefined;
        required |= 1;
        break;
      case 'entity':
        if (!array(() => strObject(ENTITY_SET, 'reference'))) return undefined;
        break;
      case 'patients':
        if (!array(() => strValue() !== undefined)) return undefined;
        break;
      case 'error':
      case 'operation':
      case 'purpose':
      case 'query':
        if (strValue() === undefined) return undefined;
        break;
      case 'interaction': {
        const value = strValue();
        if (value === undefined || value === '') return undefined;
        required |= 2;
        break;
      }
      case 'prev':
        prev = strValue();
        if (prev === undefined || !isCanonicalBase64Hash(prev)) return undefined;
        required |= 4;
        break;
      case 'seq':
        if (integer() !== seq) return undefined;
        required |= 8;
        break;
      case 'status': {
        const status = integer();
        if (status < 100 || status > 599) return undefined;
        required |= 16;
        break;
      }
      case 'time': {
        const time = strValue();
        if (time === undefined || !ISO_TIME.test(time) || Number.isNaN(Date.parse(time))) return undefined;
        required |= 32;
        break;
      }
      case 'v':
        if (integer() !== 1) return undefined;
        required |= 64;
        break;
      default:
        return undefined;
    }
    const c = text.charCodeAt(p++);
    if (c === 0x7d) break;
    if (c !== 0x2c) return undefined;
  }
  return p === n && required === 127 ? prev : undefined;
}

const BASE64_CHAR = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * Canonical standard base64 of 32 bytes without decoding: 43 characters and one `=`, the last character carrying
 * two bits of data and four zero bits (what fromBase64's round trip demands).
 */
function isCanonicalBase64Hash(text: string): boolean {
  return text.length === 44 && BASE64_CHAR.test(text);
}
