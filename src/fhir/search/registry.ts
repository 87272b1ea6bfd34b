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
  evaluate: (node: unknown) => unknown[];
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
}

interface Step {
  /** JSON property names to read (several for a choice element: `effectiveDateTime`, `effectivePeriod`, …). */
  keys: string[];
  /** The FHIR type of each key's values. */
  types: string[];
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
 * Steps of a branch that is a plain walk over the JSON: `Type.a.b`, `Resource.meta.x`, a choice element last
 * (`Observation.effective`) or narrowed by `ofType(T)`, in optional parentheses. Undefined for anything else
 * (where(), functions, indexes, choices in the middle): those go through fhirpath.js.
 */
function stepsOf(type: string, branch: string): Step[] | undefined {
  const m = /^\(?([A-Z][A-Za-z]*)((?:\.[a-z][A-Za-z0-9]*)+)(?:\.ofType\(([A-Za-z]+)\))?\)?$/.exec(branch);
  if (!m || (branch.startsWith('(') !== branch.endsWith(')'))) return undefined;
  const [, head, path, ofType] = m;
  if (head !== type && head !== 'Resource' && head !== 'DomainResource') return undefined;
  const names = path!.slice(1).split('.');
  const steps: Step[] = [];
  let context = head!;
  for (const [i, name] of names.entries()) {
    let at = `${context}.${name}`;
    at = model.pathsDefinedElsewhere[at] ?? at;
    const choices = model.choiceTypePaths[at];
    const last = i === names.length - 1;
    if (choices) {
      if (!last) return undefined;
      const typeOf = (c: string) => (PRIMITIVE_CHOICE.has(c) ? c[0]!.toLowerCase() + c.slice(1) : c);
      const kept = ofType ? choices.filter((c) => isA(typeOf(c), ofType)) : choices;
      if (kept.length === 0) return undefined;
      steps.push({ keys: kept.map((c) => name + c), types: kept.map(typeOf) });
      return steps;
    }
    const t = model.path2Type[at];
    if (!t || (last && ofType)) return undefined;
    steps.push({ keys: [name], types: [t] });
    context = t === 'BackboneElement' || t === 'Element' ? at : t;
  }
  return steps;
}

function walk(value: unknown, steps: Step[], i: number, type: string, out: PathNode[]): void {
  if (value === undefined || value === null) return;
  if (i === steps.length) {
    out.push({ fhirNodeDataType: type, data: value });
    return;
  }
  if (typeof value !== 'object') return;
  const step = steps[i]!;
  for (let k = 0; k < step.keys.length; k++) {
    const next = (value as Record<string, unknown>)[step.keys[k]!];
    if (Array.isArray(next)) for (const v of next) walk(v, steps, i + 1, step.types[k]!, out);
    else walk(next, steps, i + 1, step.types[k]!, out);
  }
}

/**
 * Most search expressions (~90% of R4's) only walk properties: they are run as that walk, which costs a small
 * fraction of a fhirpath.js evaluation (a create evaluates every parameter of its type). Same nodes, same types
 * where extraction looks at them (tested against fhirpath.js over every official example).
 */
function fastPath(type: string, expression: string): ((resource: unknown) => unknown[]) | undefined {
  const walks: Step[][] = [];
  for (const b of branches(expression)) {
    const steps = stepsOf(type, b);
    if (!steps) return undefined;
    walks.push(steps);
  }
  return (resource) => {
    const out: PathNode[] = [];
    for (const steps of walks) walk(resource, steps, 0, type, out);
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
    const fast = def.type === 'composite' ? undefined : fastPath(type, withoutResolve(expression));
    const param: SearchParam = { code: def.code, type: def.type as ParamType, url: def.url ?? '', expression, evaluate: fast ?? evaluateFhirpath, evaluateFhirpath };
    if (def.target?.length) param.target = def.target;
    if (def.type === 'composite') {
      const components: ParamComponent[] = [];
      for (const c of def.component ?? []) {
        const sub = byUrl.get(c.definition);
        const subParam = sub && make({ ...sub, expression: sub.expression ?? c.expression }, type);
        if (!subParam || subParam.type === 'composite') return undefined;
        components.push({ param: subParam, evaluate: compileRelative(c.expression, expression) });
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

/** Composite components are FHIRPath relative to the node the composite expression selected. */
function compileRelative(expression: string, base: string): (node: unknown) => unknown[] {
  const path = /^[A-Za-z]+(\.[A-Za-z]+)*$/.test(base) ? { base, expression: withoutResolve(expression) } : withoutResolve(expression);
  let fn: ((data: never) => unknown) | undefined;
  return (node) => {
    fn ??= fhirpath.compile(path as never, r4Model as never, { resolveInternalTypes: false } as never) as never;
    const n = node as { data?: unknown; fhirNodeDataType?: string };
    const data = n && typeof n === 'object' && 'fhirNodeDataType' in n ? n.data : node;
    return fn!(data as never) as unknown[];
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
