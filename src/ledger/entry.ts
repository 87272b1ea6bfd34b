/**
 * Ledger entries: built from a draft at append time, stored as their RFC 8785 canonical bytes, hashed as RFC 9162
 * leaves, and parsed back strictly (docs/ledger.md has the schema). Only the fields of types.ts are accepted, in
 * both directions: a stray field (say, a resource spread into a draft by mistake) is refused rather than written
 * into a log that can never be edited.
 */
import { errors, type FhirError } from '../errors.ts';
import { canonicalBytes, decodeUtf8, parseCanonical } from './canonical.ts';
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
  const bytes = canonicalBytes(entry);
  return { entry, bytes, leafHash: leafHash(bytes) };
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
