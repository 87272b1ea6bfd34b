/**
 * Request bodies: JSON only (application/fhir+json, application/json, application/json-patch+json), parsed with
 * a nesting limit checked BEFORE parsing, so a hostile body cannot exhaust the stack. Everything else is 415.
 * `application/json+fhir` is the DSTU2 name of the FHIR JSON type, which older clients still send; it is read as
 * application/fhir+json, as negotiate.ts reads it in Accept.
 */
import { errors } from '../../errors.ts';

export const JSON_CONTENT_TYPES = ['application/fhir+json', 'application/json+fhir', 'application/json', 'application/json-patch+json'];

/** Deepest nesting of arrays/objects in a JSON text, stopping as soon as `limit` is exceeded. */
export function exceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 125 || c === 93) {
      depth--;
    }
  }
  return false;
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
  if (exceedsDepth(text, maxDepth)) {
    throw errors.badRequest(`The JSON body is nested deeper than ${maxDepth} levels`, undefined, 'ERR_JSON_TOO_DEEP');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const detail = err instanceof SyntaxError ? err.message.slice(0, 200) : 'unreadable';
    throw errors.badRequest(`The body is not valid JSON: ${detail}`, undefined, 'ERR_JSON_SYNTAX');
  }
}
