export { applyJsonPatch, isJsonPatchContentType } from './json-patch.ts';
export type { JsonObject } from './json-patch.ts';
export { applyFhirPathPatch } from './fhirpath-patch.ts';
