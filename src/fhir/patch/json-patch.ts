/**
 * JSON Patch (RFC 6902, `application/json-patch+json`) for the FHIR `patch` interaction
 * (http://hl7.org/fhir/R4/http.html#patch). Pure: the stored resource is never touched; the patch runs on a clone.
 */
// The package is CommonJS without named-export hints for Node's ESM loader: only its default export resolves.
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { errors, FhirError } from '../../errors.ts';

export type JsonObject = Record<string, unknown>;

/** A patched resource: plain JSON whose resourceType and id are those of the input; the rest is not yet validated. */
export type PatchedResource = { resourceType: string; id?: string; [key: string]: unknown };

const JSON_PATCH_TYPE = 'application/json-patch+json';

/** True for `application/json-patch+json`, with or without parameters such as `; charset=utf-8`. */
export function isJsonPatchContentType(contentType: string | null | undefined): boolean {
  if (typeof contentType !== 'string') return false;
  return contentType.split(';', 1)[0]!.trim().toLowerCase() === JSON_PATCH_TYPE;
}

/**
 * Applies an RFC 6902 patch document to a copy of `resource` and returns the copy. The patch is all or nothing:
 * any failing operation rejects the whole document. `meta.versionId` / `meta.lastUpdated` may be patched freely:
 * the repository stamps both on every new version, so a patched value never survives.
 */
export function applyJsonPatch(resource: object, patch: unknown): PatchedResource {
  const original = asResource(resource);
  if (!Array.isArray(patch)) throw invalid('A JSON Patch document must be an array of operations');
  // The library stores operation values by reference in the document; cloning keeps the result free of caller objects.
  const operations = cloneInput(patch, 'ERR_PATCH_INVALID');
  let doc: unknown = structuredClone(original);
  operations.forEach((operation, index) => {
    checkOperation(operation, index);
    checkArrayIndexes(doc, operation as Operation, index);
    try {
      doc = jsonpatch.applyOperation(doc, operation as Operation, true, true, true, index).newDocument;
    } catch (error) {
      throw fromLibraryError(error, index, operation as Operation);
    }
  });
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw invalid('The patched document is not a resource object');
  }
  const result = doc as PatchedResource;
  assertIdentityUnchanged(original, result);
  return result;
}

/**
 * The server owns `resourceType` and `id`: a patch that changes either is refused (by value, after the fact, so an
 * operation that rewrites them to the same value, or a `test` on them, is fine).
 */
export function assertIdentityUnchanged(before: JsonObject, after: JsonObject, expression?: string[]): void {
  for (const field of ['resourceType', 'id'] as const) {
    if (after[field] !== before[field]) {
      throw new FhirError(`A patch may not change ${field}: the server owns it`, {
        status: 400,
        code: 'ERR_PATCH_IMMUTABLE',
        issueType: 'invalid',
        ...(expression ? { expression } : {}),
      });
    }
  }
}

/** The stored resource must be a JSON object with a resourceType; anything else is the caller's (our own) bug. */
export function asResource(resource: object): PatchedResource {
  const isResource = typeof resource === 'object' && resource !== null && !Array.isArray(resource);
  if (!isResource || typeof (resource as JsonObject).resourceType !== 'string') {
    throw errors.internal('The patch target is not a resource object', 'ERR_PATCH_TARGET');
  }
  return resource as PatchedResource;
}

/** structuredClone of caller input, which may hold values (functions, symbols) that cannot be cloned. */
export function cloneInput<T>(input: T, code: string): T {
  try {
    return structuredClone(input);
  } catch {
    throw errors.badRequest('The patch document is not plain JSON', undefined, code);
  }
}

const RFC_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);
// RFC 6901: a pointer is empty or a sequence of `/token`, where `~` only appears as `~0` or `~1`.
const POINTER = /^(?:\/(?:[^~/]|~[01])*)*$/;
// RFC 6901 §4: array indexes are `0` or digits without a leading zero (the library also accepts `01` and ``).
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/** The checks the library leaves out: pointer syntax, strict array indexes, and `from` not being a prefix of `path`. */
function checkOperation(operation: unknown, index: number): void {
  try {
    jsonpatch.validator(operation as Operation, index);
  } catch (error) {
    throw fromLibraryError(error, index, operation as Operation);
  }
  const op = operation as { op: string; path: string; from?: unknown };
  // The library's validator also lets its internal `_get` through.
  if (!RFC_OPS.has(op.op)) throw invalid(`Operation ${index}: ${LIBRARY_MESSAGES.OPERATION_OP_INVALID}`);
  for (const field of ['path', 'from'] as const) {
    const pointer = op[field];
    if (typeof pointer === 'string' && !POINTER.test(pointer)) {
      throw invalid(`Operation ${index} (${op.op}): '${field}' is not a valid JSON Pointer (RFC 6901)`);
    }
  }
  if (op.op === 'move' && typeof op.from === 'string' && op.path.startsWith(`${op.from}/`)) {
    throw invalid(`Operation ${index} (move): 'from' must not be a proper prefix of 'path' (RFC 6902 §4.4)`);
  }
}

/** Walks the pointer's tokens through the current document and rejects non-canonical array indexes. */
function checkArrayIndexes(doc: unknown, operation: Operation, index: number): void {
  const pointers = [operation.path, 'from' in operation ? operation.from : undefined];
  for (const pointer of pointers) {
    if (typeof pointer !== 'string' || pointer === '') continue;
    let node: unknown = doc;
    for (const raw of pointer.slice(1).split('/')) {
      if (Array.isArray(node) && raw !== '-' && !ARRAY_INDEX.test(raw)) {
        throw invalid(`Operation ${index} (${operation.op}): '${raw}' is not a valid array index in '${pointer}'`);
      }
      if (node === null || typeof node !== 'object') break;
      const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      node = Object.hasOwn(node, token) ? (node as JsonObject)[token] : undefined;
    }
  }
}

const LIBRARY_MESSAGES: Record<string, string> = {
  SEQUENCE_NOT_AN_ARRAY: 'the patch document must be an array',
  OPERATION_NOT_AN_OBJECT: 'the operation is not an object',
  OPERATION_OP_INVALID: "'op' must be one of add, remove, replace, move, copy, test",
  OPERATION_PATH_INVALID: "'path' must be a JSON Pointer string starting with '/'",
  OPERATION_FROM_REQUIRED: "'from' is required for move and copy",
  OPERATION_VALUE_REQUIRED: "'value' is required for add, replace and test",
  OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED: "'value' must be plain JSON",
  OPERATION_PATH_CANNOT_ADD: "'path' cannot be added to: its parent does not exist",
  OPERATION_PATH_UNRESOLVABLE: "'path' does not exist in the resource",
  OPERATION_FROM_UNRESOLVABLE: "'from' does not exist in the resource",
  OPERATION_PATH_ILLEGAL_ARRAY_INDEX: "'path' uses an invalid array index",
  OPERATION_VALUE_OUT_OF_BOUNDS: "'path' points past the end of the array",
};

/**
 * Library errors carry the whole document in their message, so they are never passed on: only the operation
 * index, its op and its pointers (all from the caller's own patch) reach the client.
 */
function fromLibraryError(error: unknown, index: number, operation: Operation | undefined): FhirError {
  if (error instanceof FhirError) return error;
  const op = operation && typeof operation === 'object' && typeof operation.op === 'string' ? operation.op : '?';
  const where = operation && typeof operation.path === 'string' ? ` at '${operation.path}'` : '';
  if (error instanceof jsonpatch.JsonPatchError) {
    if (error.name === 'TEST_OPERATION_FAILED') {
      return new FhirError(`Operation ${index} (test)${where} failed: the value differs`, {
        status: 422,
        code: 'ERR_PATCH_TEST_FAILED',
        issueType: 'processing',
      });
    }
    const reason = LIBRARY_MESSAGES[error.name] ?? error.name;
    return invalid(`Operation ${index} (${op})${where}: ${reason}`);
  }
  // Malformed input (a banned `__proto__` path, a path through a primitive, runaway nesting) surfaces as a
  // TypeError or RangeError from the library: still the caller's patch, not our fault.
  if (error instanceof TypeError || error instanceof RangeError) {
    return invalid(`Operation ${index} (${op})${where} cannot be applied to this resource`);
  }
  return errors.internal('Applying the JSON Patch failed', 'ERR_INTERNAL', error);
}

function invalid(message: string): FhirError {
  return errors.badRequest(message, undefined, 'ERR_PATCH_INVALID');
}
