/**
 * The search parameters this server supports, per resource type, from the official R4 SearchParameter
 * definitions (http://hl7.org/fhir/R4/searchparameter-registry.html). Each parameter's FHIRPath expression is
 * compiled once, narrowed to the branch for that type, with `resolve()` filters stripped (fhirpath.js cannot
 * run them synchronously; the extractor filters references by the parameter's target types instead).
 */
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4/index.js';
import { r4SearchParameters, withoutResolve, type SearchParameterDefinition } from '../definitions.ts';
import { RESOURCE_TYPES } from '../validate.ts';

export type ParamType = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite';

export interface ParamComponent {
  /** The component's own parameter (type and code), resolved from its definition URL. */
  param: SearchParam;
  /** Evaluates the component relative to a node of the composite's `evaluate` (fast path or fhirpath.js alike). */
  evaluate: (node: unknown) => unknown[];
  /** The same through fhirpath.js, relative to a node of the composite's `evaluateFhirpath` (for tests). */
  evaluateFhirpath: (node: unknown) => unknown[];
}

export interface SearchParam {
  code: string;
  type: ParamType;
  /** Canonical URL of the definition (CapabilityStatement.rest.resource.searchParam.definition). */
  url: string;
  /** Reference target types, when the definition restricts them. */
  target?: string[];
  /** The FHIRPath of this type's branch, for documentation and tests. */
  expression: string;
  /** Evaluates the expression: typed nodes (fhirpath ResourceNode, or PathNode on the fast path) or plain values. */
  evaluate: (resource: unknown) => unknown[];
  /** The same through fhirpath.js always (tests check the fast path against it). */
  evaluateFhirpath: (resource: unknown) => unknown[];
  components?: ParamComponent[];
  /** Set when another parameter of the type has the same expression: the index holds the entries under its code. */
  indexCode?: string;
}

/** Parameters defined for every type but served without FHIRPath or not at all (declared unsupported). */
export const UNSUPPORTED_COMMON = ['_text', '_content', '_query', '_list', '_filter'];

interface FullDefinition extends SearchParameterDefinition {
  id?: string;
  component?: Array<{ definition: string; expression: string }>;
}

const byType = new Map<string, Map<string, SearchParam>>();

/** Splits `A.x | B.y.where(...) | C.z` at the top-level bars. */
function branches(expression: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === "'") i = expression.indexOf("'", i + 1);
    else if (c === '|' && depth === 0) {
      out.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(expression.slice(start).trim());
  return out;
}

/** The branches of a multi-type expression that apply to `type` (all of them for Resource-level parameters). */
export function expressionFor(type: string, expression: string): string {
  const own = branches(expression).filter((b) => {
    const head = b.replace(/^\(+/, '');
    return head === type || head.startsWith(`${type}.`) || head.startsWith('Resource.') || head.startsWith('DomainResource.');
  });
  return own.length ? own.join(' | ') : expression;
}

/** A node of the fast path: what typed() (extract.ts) reads of a fhirpath ResourceNode. */
export interface PathNode {
  fhirNodeDataType: string;
  data: unknown;
  /** The element path (`Observation.component`) or type the node stands at: the context of a composite's components. */
  path: string;
}

interface Step {
  /** JSON property names to read (several for a choice element: `effectiveDateTime`, `effectivePeriod`, …). */
  keys: string[];
  /** Only the values that pass it are kept (a `where(child = 'literal')`). */
  filter?: Filter;
  /** The FHIR type of each key's values. */
  types: string[];
  /** The element path of each key's values, the context of the next step (and of composite components). */
  paths: string[];
}

const model = r4Model as unknown as {
  path2Type: Record<string, string>;
  choiceTypePaths: Record<string, string[]>;
  pathsDefinedElsewhere: Record<string, string>;
  type2Parent: Record<string, string>;
};

/** Whether FHIR type `t` is `ancestor` or derives from it (`canonical` is a `uri`, `Age` a `Quantity`): ofType() semantics. */
function isA(t: string, ancestor: string): boolean {
  for (let c: string | undefined = t; c; c = model.type2Parent[c]) if (c === ancestor) return true;
  return false;
}
const PRIMITIVE_CHOICE = new Set(['Boolean', 'Integer', 'Decimal', 'String', 'Uri', 'Url', 'Canonical', 'Base64Binary', 'Instant', 'Date', 'DateTime', 'Time', 'Code', 'Oid', 'Id', 'Markdown', 'UnsignedInt', 'PositiveInt', 'Uuid']);

/**
 * A branch without its grouping parentheses (`(A.b.ofType(T)).c` → `A.b.ofType(T).c`: in FHIRPath they only
 * group), or undefined when it holds anything but names, dots and ofType() calls.
 */
function withoutGroups(branch: string): string | undefined {
  if (!/^[A-Za-z0-9.()]+$/.test(branch)) return undefined;
  let out = '';
  const open: boolean[] = []; // per open parenthesis: is it an ofType( call?
  for (let i = 0; i < branch.length; i++) {
    const c = branch[i];
    if (c === '(') {
      const call = out.endsWith('.ofType');
      open.push(call);
      if (call) out += c;
    } else if (c === ')') {
      if (open.length === 0) return undefined;
      if (open.pop()) out += c;
    } else out += c;
  }
  return open.length === 0 ? out : undefined;
}

/** Keeps the items whose child `name` is the string `literal`: FHIRPath's `where(name = 'literal')`. */
interface Filter {
  name: string;
  literal: string;
}

/** One `.name` of a path, optionally narrowed by `.ofType(T)` and filtered by `.where(child = 'literal')`. */
interface Segment {
  name: string;
  ofType?: string;
  where?: Filter;
}

const WHERE_EQUALS = /\.where\(\s*([a-z][A-Za-z0-9]*)\s*=\s*'([^'\\]*)'\s*\)/g;

/**
 * `Head.a.ofType(T).b.where(c = 'x')` → head and segments; undefined for anything else (other where() conditions,
 * other functions, indexes).
 */
function parsePath(branch: string, withHead: boolean): { head: string; segments: Segment[] } | undefined {
  const filters: Filter[] = [];
  const plain = withoutGroups(branch.replace(WHERE_EQUALS, (_, name: string, literal: string) => `.where${filters.push({ name, literal }) - 1}`));
  if (plain === undefined) return undefined;
  const parts = plain.split('.');
  const head = withHead ? parts.shift()! : '';
  if (withHead && !/^[A-Z][A-Za-z]*$/.test(head)) return undefined;
  const segments: Segment[] = [];
  for (const part of parts) {
    const ofType = /^ofType\(([A-Za-z]+)\)$/.exec(part);
    const where = /^where(\d+)$/.exec(part);
    const last = segments.at(-1);
    if (ofType) {
      if (!last || last.ofType !== undefined || last.where !== undefined) return undefined;
      last.ofType = ofType[1];
    } else if (where) {
      if (!last || last.where !== undefined) return undefined;
      last.where = filters[Number(where[1])];
    } else if (/^[a-z][A-Za-z0-9]*$/.test(part)) segments.push({ name: part });
    else return undefined;
  }
  return { head, segments };
}

/**
 * Steps that walk `segments` from the element path or type `context`. A choice element (`Observation.value`) is
 * read under each of its JSON names (`valueQuantity`, …), narrowed by ofType(); the walk goes on past it only when
 * one type remains. Undefined where the model does not know a step.
 */
function resolveSteps(context: string, segments: Segment[]): Step[] | undefined {
  const steps: Step[] = [];
  for (const [i, { name, ofType, where }] of segments.entries()) {
    let at = `${context}.${name}`;
    at = model.pathsDefinedElsewhere[at] ?? at;
    const choices = model.choiceTypePaths[at];
    const last = i === segments.length - 1;
    if (choices && where) return undefined;
    if (choices) {
      const typeOf = (c: string) => (PRIMITIVE_CHOICE.has(c) ? c[0]!.toLowerCase() + c.slice(1) : c);
      const kept = ofType ? choices.filter((c) => isA(typeOf(c), ofType)) : choices;
      if (kept.length === 0 || (!last && kept.length !== 1)) return undefined;
      steps.push({ keys: kept.map((c) => name + c), types: kept.map(typeOf), paths: kept.map(typeOf) });
      context = typeOf(kept[0]!);
      continue;
    }
    const t = model.path2Type[at];
    if (!t || ofType) return undefined;
    context = t === 'BackboneElement' || t === 'Element' ? at : t;
    const step: Step = { keys: [name], types: [t], paths: [context] };
    if (where) {
      // Exact string equality is FHIRPath's `=` only on string-like primitives (code, string, uri…).
      const compared = model.path2Type[model.pathsDefinedElsewhere[`${context}.${where.name}`] ?? `${context}.${where.name}`];
      if (!compared || !STRING_LIKE.has(compared)) return undefined;
      step.filter = where;
    }
    steps.push(step);
  }
  return steps;
}

const STRING_LIKE = new Set(['code', 'string', 'uri', 'url', 'canonical', 'id', 'oid', 'uuid', 'markdown']);

/** FHIRPath `item.name = 'literal'` on one item: true only for exactly that one string. */
function passes(item: unknown, { name, literal }: Filter): boolean {
  if (item === null || typeof item !== 'object') return false;
  const v = (item as Record<string, unknown>)[name];
  return v === literal || (Array.isArray(v) && v.length === 1 && v[0] === literal);
}

/**
 * Steps of a branch that is a plain walk over the JSON: `Type.a.b`, `Resource.meta.x`, a choice element narrowed
 * by `ofType(T)` (last, or followed by more steps when one type remains: `(Observation.value.ofType(CodeableConcept)).text`),
 * in optional grouping parentheses; `Type` alone (the resource) where a composite starts. Undefined for anything
 * else (where(), other functions, indexes): those go through fhirpath.js.
 */
function stepsOf(type: string, branch: string, allowBare = false): Step[] | undefined {
  const parsed = parsePath(branch, true);
  if (!parsed) return undefined;
  const { head, segments } = parsed;
  if (head !== type && head !== 'Resource' && head !== 'DomainResource') return undefined;
  if (segments.length === 0 && !allowBare) return undefined;
  return resolveSteps(head, segments);
}

function walk(value: unknown, steps: Step[], i: number, type: string, path: string, out: PathNode[]): void {
  if (value === undefined || value === null) return;
  if (i === steps.length) {
    out.push({ fhirNodeDataType: type, data: value, path });
    return;
  }
  if (typeof value !== 'object') return;
  const step = steps[i]!;
  const filter = step.filter;
  for (let k = 0; k < step.keys.length; k++) {
    const next = (value as Record<string, unknown>)[step.keys[k]!];
    if (Array.isArray(next)) {
      for (const v of next) if (!filter || passes(v, filter)) walk(v, steps, i + 1, step.types[k]!, step.paths[k]!, out);
    } else if (!filter || passes(next, filter)) walk(next, steps, i + 1, step.types[k]!, step.paths[k]!, out);
  }
}

/**
 * Most search expressions (~90% of R4's) only walk properties: they are run as that walk, which costs a small
 * fraction of a fhirpath.js evaluation (a create evaluates every parameter of its type). Same nodes, same types
 * where extraction looks at them (tested against fhirpath.js over every official example).
 */
function fastPath(type: string, expression: string, allowBare = false): ((resource: unknown) => PathNode[]) | undefined {
  const walks: Step[][] = [];
  for (const b of branches(expression)) {
    const steps = stepsOf(type, b, allowBare);
    if (!steps) return undefined;
    walks.push(steps);
  }
  return (resource) => {
    const out: PathNode[] = [];
    for (const steps of walks) walk(resource, steps, 0, type, type, out);
    return out;
  };
}

/** The element paths or types a fast path's nodes can stand at (the contexts its composite components start from). */
function contextsOf(type: string, expression: string): Set<string> {
  const out = new Set<string>();
  for (const b of branches(expression)) {
    const steps = stepsOf(type, b, true)!;
    if (steps.length === 0) out.add(type);
    else for (const p of steps.at(-1)!.paths) out.add(p);
  }
  return out;
}

/**
 * A composite component's relative expression (`code`, `value.ofType(Quantity) | value.ofType(Range)`) as walks
 * from each context the composite's nodes can stand at, or undefined if one of them needs fhirpath.js
 * (`%resource.…`, where()).
 */
function fastRelative(expression: string, contexts: Set<string>): ((node: unknown) => PathNode[]) | undefined {
  const byContext = new Map<string, Step[][]>();
  for (const context of contexts) {
    const walks: Step[][] = [];
    for (const b of branches(expression)) {
      const parsed = parsePath(b, false);
      const steps = parsed && parsed.segments.length > 0 ? resolveSteps(context, parsed.segments) : undefined;
      if (!steps) return undefined;
      walks.push(steps);
    }
    byContext.set(context, walks);
  }
  return (node) => {
    const { data, path } = node as PathNode;
    const out: PathNode[] = [];
    for (const steps of byContext.get(path) ?? []) walk(data, steps, 0, path, path, out);
    return out;
  };
}

/** Compiled on first use: a server start (and the CapabilityStatement) needs the ~3,000 definitions, not their code. */
function compile(expression: string): (resource: unknown) => unknown[] {
  let fn: ((resource: never) => unknown) | undefined;
  return (resource) => {
    fn ??= fhirpath.compile(withoutResolve(expression), r4Model as never, { resolveInternalTypes: false } as never) as never;
    return fn(resource as never) as unknown[];
  };
}

function build(): void {
  const defs = r4SearchParameters() as FullDefinition[];
  const byUrl = new Map(defs.map((d) => [d.url ?? '', d]));
  const types = new Set<string>(RESOURCE_TYPES);
  for (const type of types) byType.set(type, new Map());
  const make = (def: FullDefinition, type: string): SearchParam | undefined => {
    if (!def.expression || def.type === 'special') return undefined;
    const expression = expressionFor(type, def.expression);
    const evaluateFhirpath = compile(expression);
    const fast = fastPath(type, withoutResolve(expression), def.type === 'composite');
    const param: SearchParam = { code: def.code, type: def.type as ParamType, url: def.url ?? '', expression, evaluate: fast ?? evaluateFhirpath, evaluateFhirpath };
    if (def.target?.length) param.target = def.target;
    if (def.type === 'composite') {
      const components: ParamComponent[] = [];
      const contexts = fast && contextsOf(type, withoutResolve(expression));
      let allFast = fast !== undefined;
      for (const c of def.component ?? []) {
        const sub = byUrl.get(c.definition);
        const subParam = sub && make({ ...sub, expression: sub.expression ?? c.expression }, type);
        if (!subParam || subParam.type === 'composite') return undefined;
        const viaFhirpath = compileRelative(c.expression, expression);
        const walked = contexts && fastRelative(withoutResolve(c.expression), contexts);
        if (!walked) allFast = false;
        components.push({ param: subParam, evaluate: walked ?? viaFhirpath, evaluateFhirpath: viaFhirpath });
      }
      // Fast only as a whole: a fast component needs the fast path's nodes, a fhirpath.js one fhirpath.js's.
      if (!allFast) {
        param.evaluate = evaluateFhirpath;
        for (const c of components) c.evaluate = c.evaluateFhirpath;
      }
      if (components.length < 2) return undefined;
      param.components = components;
    }
    return param;
  };
  for (const def of defs) {
    const bases = def.base.includes('Resource') || def.base.includes('DomainResource') ? [...types] : def.base;
    for (const type of bases) {
      if (!types.has(type)) continue;
      if (def.base.includes('DomainResource') && ['Bundle', 'Binary', 'Parameters'].includes(type)) continue;
      const param = make(def, type);
      if (param) byType.get(type)!.set(def.code, param);
    }
  }
  // Parameters of one type with the same expression have the same entries (Patient `name` and `phonetic`): the
  // index keeps them once, under the first one's code.
  for (const params of byType.values()) {
    const first = new Map<string, string>();
    for (const param of params.values()) {
      if (param.type === 'composite') continue;
      const key = `${param.type} ${JSON.stringify(param.target ?? null)} ${param.expression}`;
      const code = first.get(key);
      if (code === undefined) first.set(key, param.code);
      else param.indexCode = code;
    }
  }
}

/** The code under which the index stores an entry code's values (`phonetic:exact` → `name:exact` on Patient). */
export function indexCodeOf(type: string, code: string): string {
  const colon = code.indexOf(':');
  const base = colon < 0 ? code : code.slice(0, colon);
  const alias = paramsOf(type).get(base)?.indexCode;
  return alias === undefined ? code : alias + code.slice(base.length);
}

/**
 * Composite components are FHIRPath relative to the node the composite expression selected, compiled with that
 * node's element path as their base so that fhirpath.js knows its type (`value.ofType(Quantity)` under
 * `Observation.component`). A union (`Observation | Observation.component`) selects nodes at several paths: each
 * node's own path is its base.
 */
function compileRelative(expression: string, base: string): (node: unknown) => unknown[] {
  const simple = (p: unknown): p is string => typeof p === 'string' && /^[A-Za-z]+(\.[A-Za-z]+)*$/.test(p);
  const compiled = new Map<string, (data: never) => unknown>();
  const compiledFor = (path: string | undefined) => {
    const key = path ?? '';
    let fn = compiled.get(key);
    if (!fn) {
      const source = path ? { base: path, expression: withoutResolve(expression) } : withoutResolve(expression);
      fn = fhirpath.compile(source as never, r4Model as never, { resolveInternalTypes: false } as never) as never;
      compiled.set(key, fn!);
    }
    return fn!;
  };
  return (node) => {
    const n = node as { data?: unknown; fhirNodeDataType?: string; path?: unknown };
    const isNode = n && typeof n === 'object' && 'fhirNodeDataType' in n;
    const path = isNode && simple(n.path) ? n.path : simple(base) ? base : undefined;
    return compiledFor(path)((isNode ? n.data : node) as never) as unknown[];
  };
}

/** The supported parameters of a type, by code. */
export function paramsOf(type: string): Map<string, SearchParam> {
  if (byType.size === 0) build();
  return byType.get(type) ?? new Map();
}

export function paramOf(type: string, code: string): SearchParam | undefined {
  return paramsOf(type).get(code);
}
