/**
 * Request bodies: JSON only (application/fhir+json, application/json, application/json-patch+json), parsed with
 * a nesting limit checked BEFORE parsing, so a hostile body cannot exhaust the stack. Everything else is 415.
 * `application/json+fhir` is the DSTU2 name of the FHIR JSON type, which older clients still send; it is read as
 * application/fhir+json, as negotiate.ts reads it in Accept.
 */
import { errors, type FhirError } from '../../errors.ts';

export const JSON_CONTENT_TYPES = ['application/fhir+json', 'application/json+fhir', 'application/json', 'application/json-patch+json'];

/** What the raw text of a JSON body shows that JSON.parse would hide or choke on. */
export type JsonTextProblem =
  | { kind: 'depth' }
  /** A member name repeated in one object; `path` locates the object (`entry[0].resource.name[1]`, '' for the root). */
  | { kind: 'duplicate'; member: string; path: string };

/** Above this many members, an object's names are compared through a Set rather than one by one. */
const SMALL_OBJECT = 16;

interface Frame {
  object: boolean;
  /** Objects: offsets (inside the quotes) of the member names seen, as start, end pairs. */
  names: number[];
  /** Objects: the names through a Set, once there are more than SMALL_OBJECT. */
  set: Set<string> | undefined;
  /** Objects: whether a name seen so far holds an escape (names are then compared decoded). */
  escaped: boolean;
  /** Objects: whether the next string is a member name. */
  expectName: boolean;
  /** Arrays: the index of the current item. */
  index: number;
}

/**
 * One pass over a JSON text, before JSON.parse: nesting deeper than `maxDepth` (checked first, so that a hostile
 * body cannot exhaust the parser's stack), and a member name given twice in one object. RFC 8259 leaves duplicate
 * names to the reader, and JSON.parse keeps the last one silently: a body whose `"family"` is given twice would be
 * stored with one of them dropped and answered 201. RFC 8785, the canonical form resources are stored and hashed
 * in, does not admit them at all. Names are compared as they are written, and decoded only when one holds an
 * escape (`"a"` and `"\u0061"` are the same name). The text is assumed to be JSON; on text that is not, the
 * answer means nothing and JSON.parse decides.
 */
export function jsonTextProblem(text: string, maxDepth: number): JsonTextProblem | undefined {
  const stack: Frame[] = [];
  let duplicate: JsonTextProblem | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const start = i + 1;
      let escaped = false;
      for (i = start; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) {
          escaped = true;
          i++;
        } else if (d === 34) break;
      }
      const top = stack[stack.length - 1];
      if (duplicate === undefined && top?.object && top.expectName) {
        top.expectName = false;
        if (isRepeated(text, top, start, i, escaped)) duplicate = { kind: 'duplicate', member: nameAt(text, start, i, escaped), path: pathOf(text, stack) };
        top.names.push(start, i);
        if (escaped) top.escaped = true;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (stack.length >= maxDepth) return { kind: 'depth' };
      stack.push({ object: c === 123, names: [], set: undefined, escaped: false, expectName: c === 123, index: 0 });
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      stack.pop();
    } else if (c === 44 /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.expectName = true;
      else if (top) top.index++;
    }
  }
  return duplicate;
}

function isRepeated(text: string, frame: Frame, start: number, end: number, escaped: boolean): boolean {
  const { names } = frame;
  if (frame.set === undefined && !escaped && !frame.escaped && names.length < 2 * SMALL_OBJECT) {
    for (let k = 0; k < names.length; k += 2) {
      if (names[k + 1]! - names[k]! === end - start && sameText(text, names[k]!, start, end - start)) return true;
    }
    return false;
  }
  if (frame.set === undefined) {
    frame.set = new Set();
    for (let k = 0; k < names.length; k += 2) frame.set.add(nameAt(text, names[k]!, names[k + 1]!, hasEscape(text, names[k]!, names[k + 1]!)));
  }
  const name = nameAt(text, start, end, escaped);
  if (frame.set.has(name)) return true;
  frame.set.add(name);
  return false;
}

function sameText(text: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  return true;
}

function hasEscape(text: string, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (text.charCodeAt(k) === 92) return true;
  return false;
}

function nameAt(text: string, start: number, end: number, escaped: boolean): string {
  const raw = text.slice(start, end);
  if (!escaped) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

/** Where the innermost object is, as member names and array indexes from the root. */
function pathOf(text: string, stack: Frame[]): string {
  let path = '';
  for (let level = 0; level < stack.length - 1; level++) {
    const frame = stack[level]!;
    if (frame.object) {
      const names = frame.names;
      const name = nameAt(text, names[names.length - 2]!, names[names.length - 1]!, hasEscape(text, names[names.length - 2]!, names[names.length - 1]!));
      path += path === '' ? name : `.${name}`;
    } else {
      path += `[${frame.index}]`;
    }
  }
  return path;
}

/**
 * The text without a leading byte order mark. RFC 8259 §8.1: senders MUST NOT add one, parsers MAY ignore it;
 * tools on Windows still write it, and JSON.parse rejects it as an unexpected token.
 */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** UTF-8 that throws on bytes that are not UTF-8 instead of decoding them as U+FFFD; a byte order mark is kept (withoutBom). */
export const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A request body's text. FHIR's JSON is UTF-8 (http.html#mime-type); a body declared in another charset, or with
 * bytes that are not UTF-8, is refused rather than decoded with replacement characters, which would store
 * `M\uFFFDller` for `Müller` and answer 201.
 */
export function decodeBody(body: Buffer, contentType: string | undefined): string {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? '')?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw errors.unsupportedMediaType(`charset '${charset.slice(0, 40)}' is not supported: FHIR bodies are UTF-8`);
  }
  try {
    return strictUtf8.decode(body);
  } catch {
    const at = firstInvalidUtf8(body);
    throw errors.badRequest(`The body is not valid UTF-8 (at byte offset ${at}): FHIR bodies are UTF-8`, undefined, 'ERR_BODY_ENCODING');
  }
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence (for the message only). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let lo = 0, hi = bytes.length; ; ) {
    // The longest well-formed prefix, by bisection on the decoder itself: no hand-written UTF-8 rules to get wrong.
    if (lo >= hi) return lo;
    const mid = Math.ceil((lo + hi) / 2);
    if (wellFormedPrefix(bytes, mid)) lo = mid;
    else hi = mid - 1;
  }
}

function wellFormedPrefix(bytes: Uint8Array, length: number): boolean {
  try {
    // A prefix may end inside a sequence: decode in streaming mode, which holds an incomplete tail back.
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, length), { stream: true });
    return true;
  } catch {
    return false;
  }
}

export function parseJsonBody(body: string, maxDepth: number): unknown {
  const text = withoutBom(body);
  if (text.trim() === '') return undefined;
  const problem = jsonTextProblem(text, maxDepth);
  if (problem?.kind === 'depth') {
    throw errors.badRequest(`The JSON body is nested deeper than ${maxDepth} levels`, undefined, 'ERR_JSON_TOO_DEEP');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof SyntaxError ? err.message.slice(0, 200) : 'unreadable';
    throw errors.badRequest(`The body is not valid JSON: ${detail}`, undefined, 'ERR_JSON_SYNTAX');
  }
  if (problem?.kind === 'duplicate') throw duplicateMemberError(problem, parsed);
  return parsed;
}

/** The 400 for a repeated member name, pointing (FHIRPath-style, from the resource type) at the object holding it. */
export function duplicateMemberError(problem: Extract<JsonTextProblem, { kind: 'duplicate' }>, parsed: unknown): FhirError {
  const root = parsed !== null && typeof parsed === 'object' && typeof (parsed as { resourceType?: unknown }).resourceType === 'string'
    ? (parsed as { resourceType: string }).resourceType
    : undefined;
  const where = [root, problem.path].filter((part) => part).join('.').replace(/\.\[/g, '[');
  const member = problem.member.slice(0, 64);
  return errors.badRequest(
    `The JSON body gives the member '${member}' twice in one object${where ? ` (${where})` : ''}: which one is meant is ambiguous, so nothing was stored`,
    where ? [`${where}.${member}`] : [member],
    'ERR_JSON_DUPLICATE_MEMBER',
  );
}
