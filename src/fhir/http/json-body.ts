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
