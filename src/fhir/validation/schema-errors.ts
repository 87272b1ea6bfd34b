/**
 * ajv's errors against the R4 JSON schema, said in FHIR terms: the JSON pointer becomes a FHIRPath
 * (`/component/1/code` → `Observation.component[1].code`) and each keyword a plain sentence.
 */
import type { ErrorObject } from 'ajv';
import type { Issue } from '../../errors.ts';
import { quote } from './primitives.ts';

/** Pattern errors of these primitives are left to the walker, which also knows the calendar. */
const WALKER_PRIMITIVES = new Set(['date', 'dateTime', 'instant']);

const PRIMITIVE_HINTS: Record<string, string> = {
  id: "1 to 64 letters, digits, '-' or '.'",
  string: 'it must not be empty',
  code: 'no leading or trailing whitespace',
  time: 'expected hh:mm:ss',
  uri: 'no whitespace',
};

function pointerSegments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `/name/0/_given/1` under `Patient` → `Patient.name[0].given[1]` (a `_x` sibling is the element x itself). */
export function pointerToFhirPath(root: string, pointer: string): string {
  let out = root;
  for (const seg of pointerSegments(pointer)) {
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += `.${seg.startsWith('_') ? seg.slice(1) : seg}`;
  }
  return out;
}

function valueAt(data: unknown, pointer: string): unknown {
  let v = data;
  for (const seg of pointerSegments(pointer)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v)}`;
  return `the ${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  array: 'an array (this element repeats)',
  object: 'an object',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

/** Primitive type names by their pattern; ajv inlines small definitions, so the schemaPath cannot tell. */
export type PatternNames = ReadonlyMap<string, string>;

/** From the schema's definitions: each primitive's regular expression → its type name. */
export function patternNames(definitions: Record<string, { pattern?: unknown }>): PatternNames {
  const names = new Map<string, string[]>();
  for (const [name, def] of Object.entries(definitions)) {
    if (typeof def.pattern === 'string' && /^[a-z]/.test(name)) names.set(def.pattern, [...(names.get(def.pattern) ?? []), name]);
  }
  // Shared patterns are named by the general type: a markdown is a string, a url and a canonical are uris.
  const general = (list: string[]) => list.find((n) => n === 'string' || n === 'uri') ?? list[0]!;
  return new Map([...names].map(([pattern, list]) => [pattern, general(list)]));
}

function issueFor(e: ErrorObject, root: string, data: unknown, patterns: PatternNames): Issue | undefined {
  const at = pointerToFhirPath(root, e.instancePath);
  const value = valueAt(data, e.instancePath);
  const issue = (code: Issue['code'], expression: string, diagnostics: string): Issue => ({
    severity: 'error',
    code,
    diagnostics,
    expression: [expression],
  });
  if (value === null && e.keyword !== 'additionalProperties') {
    // A null in an array is the walker's: in an array of primitives it may stand for a value that has only
    // extensions (json.html#primitive), which the walker sees by lining up `name` and `_name`.
    if (/\/\d+$/.test(e.instancePath)) return undefined;
    return issue('structure', at, `${at} is null: leave the element out instead`);
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(e.params.additionalProperty);
      return issue('structure', `${at}.${name.startsWith('_') ? name.slice(1) : name}`, `Unknown element ${quote(name)} in ${at}`);
    }
    case 'required':
      // Required elements are reported by the walker, which also sees primitives and choices.
      return undefined;
    case 'type': {
      const expected = EXPECTED[String(e.params.type)] ?? String(e.params.type);
      return issue('structure', at, `${at}: expected ${expected}, got ${describe(value)}`);
    }
    case 'pattern': {
      const primitive = patterns.get(String(e.params.pattern)) ?? 'value';
      if (WALKER_PRIMITIVES.has(primitive) || typeof value !== 'string') return undefined;
      const hint = PRIMITIVE_HINTS[primitive];
      return issue('value', at, `${at}: ${quote(value)} is not a valid ${primitive}${hint ? ` (${hint})` : ''}`);
    }
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[]).map(String).join(', ');
      if (typeof value !== 'string') return issue('structure', at, `${at}: expected a code (${allowed}), got ${describe(value)}`);
      return issue('code-invalid', at, `${at}: ${quote(value)} is not one of the allowed codes (${allowed})`);
    }
    case 'discriminator':
      if (e.params.error === 'tag') return issue('structure', at, `${at} is not a resource: it has no resourceType string`);
      return issue('structure', `${at}.resourceType`, `${at}: ${quote(String(e.params.tagValue))} is not a FHIR R4 resource type`);
    case 'const':
      return issue('value', at, `${at}: expected ${JSON.stringify(e.params.allowedValue)}, got ${describe(value)}`);
    default:
      return issue('structure', at, `${at}: ${e.message ?? e.keyword}`);
  }
}

/** The issues of one failed validation, in ajv's order, without repeats. */
export function schemaIssues(
  errors: readonly ErrorObject[] | null | undefined,
  root: string,
  data: unknown,
  patterns: PatternNames,
): Issue[] {
  const out: Issue[] = [];
  // One issue per element: a value of the wrong JSON type also fails the pattern and enum checks of the right one.
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const issue = issueFor(e, root, data, patterns);
    if (!issue) continue;
    const key = issue.code === 'structure' && e.keyword === 'additionalProperties' ? `${issue.expression?.[0]}|+` : `${e.instancePath}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  return out;
}
