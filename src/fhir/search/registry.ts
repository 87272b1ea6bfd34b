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
  /** Evaluates the expression: typed nodes (fhirpath ResourceNode) or plain values. */
  evaluate: (resource: unknown) => unknown[];
  components?: ParamComponent[];
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
    const param: SearchParam = { code: def.code, type: def.type as ParamType, url: def.url ?? '', expression, evaluate: compile(expression) };
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
