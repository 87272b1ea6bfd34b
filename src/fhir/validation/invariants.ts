/**
 * FHIRPath invariants (ElementDefinition.constraint) compiled once with the fhirpath package and its R4
 * model, and evaluated against the element they are defined on.
 *
 * fhirpath.js takes 10–70 µs per evaluation, which would cap writes at ~2,000/s. Most invariants only
 * look at a few named child elements, so when none of those is present their result is the same as on
 * an empty element: that result is computed once at compile time and reused (see `names`).
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Constraint } from './definitions.ts';

/** %resource and %rootResource (http://hl7.org/fhir/R4/fhirpath.html#variables). */
export interface InvariantVars {
  resource: unknown;
  rootResource: unknown;
}

export interface Invariant {
  key: string;
  human: string;
  expression: string;
  /**
   * false when the element breaks the invariant; an Error when the expression could not be evaluated.
   * `present` tells which child elements (FHIRPath names) the element has; without it the expression
   * is always evaluated.
   */
  holds(node: unknown, vars: InvariantVars, present?: (name: string) => boolean): boolean | Error;
}

/**
 * Base R4 invariants that are not evaluated, and why. Keep each reason exact: they are the documented
 * limits of this validator. (ele-1, ext-1, ref-1, dom-3, txt-1 and txt-2 are not here: the walker checks them natively.)
 */
export const SKIPPED_INVARIANTS: Readonly<Record<string, string>> = {
  'ctm-1': 'member.resolve() needs other resources (CareTeam.participant.onBehalfOf only with a Practitioner member)',
  'eld-19':
    "its regular expression escapes a quote (\\') which JavaScript's unicode-mode RegExp rejects (ElementDefinition.path syntax)",
};

/** Expressions that look beyond their element's named children: the shortcut would be unsound for them. */
const REFLECTIVE = /\$this|children\(|descendants\(|%resource|%rootResource|%context|repeat\(|resolve\(|trace\(/;

/**
 * The identifiers of an expression that can name a child element of the node it is evaluated on: every
 * identifier outside string literals that does not follow a `.`. One that follows a `.` is a member of what
 * precedes it, reached only through a child named earlier in the path (`contained.meta.versionId` reads
 * `contained`, not the node's own `meta`), so leaving it out keeps the set a superset of the children read.
 * Function names and keywords stay in: they only make the set larger.
 */
export function contextNames(expression: string): string[] {
  const code = expression.replace(/'(?:[^'\\]|\\.)*'/g, "''");
  const out = new Set<string>();
  for (const m of code.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
    let i = m.index - 1;
    while (i >= 0 && /\s/.test(code[i]!)) i--;
    if (code[i] !== '.') out.add(m[0]);
  }
  return [...out];
}

type Evaluate = (node: unknown, vars: InvariantVars) => unknown[];

/** A full date-time with seconds and a zone: an instant, comparable as one (FHIRPath treats ms and s as one precision). */
const ZONED_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Invariants decided without fhirpath.js where the data allows an exact answer (`decide` gives undefined
 * otherwise, and fhirpath.js runs). Keyed by constraint key, and only for the exact base expression.
 */
export const NATIVE_INVARIANTS: Readonly<Record<string, { expression: string; decide: (node: unknown) => boolean | undefined }>> = {
  // Every Period of every resource: fhirpath.js parses both date-times to compare them (~40 µs, the costliest
  // invariant of a Synthea load). Two zoned date-times with seconds are two instants.
  'per-1': {
    expression: 'start.hasValue().not() or end.hasValue().not() or (start <= end)',
    decide(node) {
      const { start, end } = (node ?? {}) as { start?: unknown; end?: unknown };
      if (typeof start !== 'string' || typeof end !== 'string' || !ZONED_DATE_TIME.test(start) || !ZONED_DATE_TIME.test(end)) return undefined;
      const from = Date.parse(start);
      const to = Date.parse(end);
      return Number.isNaN(from) || Number.isNaN(to) ? undefined : from <= to;
    },
  },
  // fhirpath.js (5.2) types a FHIR boolean as FHIR.boolean, and `Boolean` names System.Boolean, so it answers
  // false for every `answerBoolean`; the HL7 validator answers true, and the official example Questionnaire-bb
  // relies on it. `answer[x]` is a choice: the answer is Boolean exactly when answerBoolean is present.
  'que-7': {
    expression: "operator = 'exists' implies (answer is Boolean)",
    decide(node) {
      const o = (node ?? {}) as Record<string, unknown>;
      if (o.operator !== 'exists') return true;
      const answers = Object.keys(o).filter((k) => /^answer[A-Z]/.test(k));
      // no answer at all: `{} is Boolean` is empty, so the invariant does not apply (cardinality speaks instead)
      return answers.length === 0 || answers.includes('answerBoolean');
    },
  },
};

const noTrace = () => {};
const compiled = new Map<string, Evaluate>();

function compileExpression(base: string, expression: string): Evaluate {
  const cacheKey = `${base}|${expression}`;
  let fn = compiled.get(cacheKey);
  if (!fn) {
    // resolveInternalTypes: false skips converting results back to plain JSON: only a boolean is looked at.
    const compiledFn = fhirpath.compile({ base, expression }, r4, { traceFn: noTrace, resolveInternalTypes: false });
    fn = (node, vars) => compiledFn(node, { resource: vars.resource, rootResource: vars.rootResource }) as unknown[];
    compiled.set(cacheKey, fn);
  }
  return fn;
}

function evaluate(fn: Evaluate, node: unknown, vars: InvariantVars): boolean | Error {
  try {
    const result = fn(node, vars);
    // An empty result means the invariant did not apply (e.g. its element is absent): only an explicit false fails.
    return !(result.length === 1 && result[0] === false);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Compiles the invariants that apply at `base` (a type name or a backbone path). Constraints that are
 * skipped, or whose expression the fhirpath package cannot parse, are reported through `onSkip`.
 */
export function compileInvariants(
  base: string,
  constraints: readonly Constraint[],
  onSkip: (key: string, reason: string) => void,
): Invariant[] {
  const out: Invariant[] = [];
  for (const c of constraints) {
    const reason = SKIPPED_INVARIANTS[c.key];
    if (reason) {
      onSkip(c.key, reason);
      continue;
    }
    const expression = c.expression!;
    let fn: Evaluate;
    try {
      fn = compileExpression(base, expression);
    } catch (err) {
      onSkip(c.key, `the fhirpath package cannot compile it: ${(err as Error).message}`);
      continue;
    }
    // The child elements it can read (contextNames) and its result on `{}`.
    const names = REFLECTIVE.test(expression) ? undefined : contextNames(expression);
    const onEmpty = names ? evaluate(fn, {}, { resource: {}, rootResource: {} }) : undefined;
    const shortcut = typeof onEmpty === 'boolean' ? onEmpty : undefined;
    const native = NATIVE_INVARIANTS[c.key]?.expression === expression ? NATIVE_INVARIANTS[c.key]!.decide : undefined;
    out.push({
      key: c.key,
      human: c.human,
      expression,
      holds(node, vars, present) {
        if (shortcut !== undefined && present && !names!.some(present)) return shortcut;
        const decided = native?.(node);
        return decided ?? evaluate(fn, node, vars);
      },
    });
  }
  return out;
}
