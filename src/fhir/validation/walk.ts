/**
 * One type-aware pass over a resource (contained resources and Bundle entries included) that makes the
 * checks the JSON schema cannot: required elements (min >= 1, primitives and choices included), empty
 * elements (ele-1), calendar-valid dates, reference syntax, resolution of #contained references (ref-1)
 * and their target types, the XHTML rules of narratives (txt-1, txt-2), nulls in arrays (only where a
 * repeating primitive's values and `_name` extensions line up), and the FHIRPath invariants of every element
 * it meets.
 */
import type { Issue } from '../../errors.ts';
import type { FieldModel, Model, TypeModel } from './model.ts';
import { dateKind } from './model.ts';
import type { Invariant, InvariantVars } from './invariants.ts';
import { narrativeIssues } from './narrative.ts';
import { base64Error, dateError, numberError, parseReference, quote, stringError } from './primitives.ts';
import type { ReferenceRules } from './primitives.ts';

export interface WalkOptions {
  model: Model;
  /** The invariants of a field, or of a resource type's root; memoized by the caller. */
  invariantsOf: (owner: FieldModel | TypeModel) => readonly Invariant[];
  rules: ReferenceRules;
  /** Where the issues found are appended. */
  issues: Issue[];
}

interface Scope {
  vars: InvariantVars;
  /** ids (and types) of the resources contained by the resource that local references resolve against. */
  contained: ReadonlyMap<string, string>;
  /** Every `#id` met anywhere in the resource (references, canonicals, uris): dom-3 needs each contained one used. */
  localRefs: Set<string>;
  /** The id of the contained resource being walked, if any: a `#` reference in it refers to its container. */
  containedId?: string;
  rules: ReferenceRules;
}

/** Primitive types whose `#id` values count as uses of a contained resource (dom-3 looks at canonical, uri, url). */
const LOCAL_URI_TYPES = new Set(['canonical', 'uri', 'url']);
/** Primitive types exempt from the 1 MB limit of R4 strings: base64Binary and xhtml are not derived from string. */
const UNLIMITED_TEXT_TYPES = new Set(['base64Binary', 'xhtml']);

const VALUE_KEY = /^_?value[A-Z]/;

const isEmptyObject = (o: object) => {
  for (const _ in o) return false;
  return true;
};

function containedIds(resource: Record<string, unknown>): Map<string, string> {
  const ids = new Map<string, string>();
  const contained = resource.contained;
  if (Array.isArray(contained)) {
    for (const c of contained) {
      const r = c as Record<string, unknown> | null;
      if (typeof r?.id === 'string' && typeof r.resourceType === 'string') ids.set(r.id, r.resourceType);
    }
  }
  return ids;
}

export class Walker {
  readonly #o: WalkOptions;

  constructor(options: WalkOptions) {
    this.#o = options;
  }

  #issue(code: Issue['code'], expression: string, diagnostics: string, severity: Issue['severity'] = 'error') {
    this.#o.issues.push({ severity, code, diagnostics, expression: [expression] });
  }

  /**
   * Walks a whole resource. A contained resource shares its container's scope (%rootResource, the ids that
   * local references resolve against); any other nested resource (a Bundle entry, a Parameters value)
   * starts its own, keeping the reference rules of where it sits.
   */
  resource(resource: Record<string, unknown>, path: string, parent?: Scope, contained = false): void {
    const type = this.#o.rules.resourceTypes.has(resource.resourceType as string) ? this.#o.model.get(resource.resourceType as string) : undefined;
    if (!type) return; // not a resource type: the schema reports it
    const rules = parent?.rules ?? this.#o.rules;
    const scope: Scope = contained && parent
      ? {
          vars: { resource, rootResource: parent.vars.rootResource },
          contained: parent.contained,
          localRefs: parent.localRefs,
          ...(typeof resource.id === 'string' ? { containedId: resource.id } : {}),
          rules,
        }
      : {
          vars: { resource, rootResource: resource },
          contained: containedIds(resource),
          localRefs: new Set(),
          // Entries of a Bundle may refer to each other by their urn:uuid / urn:oid fullUrls.
          rules: resource.resourceType === 'Bundle' && !rules.allowUrn ? { ...rules, allowUrn: true } : rules,
        };
    this.#object(resource, type, path, scope);
    this.#invariants(this.#o.invariantsOf(type), resource, type, path, scope);
    if (!contained) this.#containedUsed(resource, path, scope);
  }

  /** dom-3: a contained resource is referred to from elsewhere in the resource, or refers to its container. */
  #containedUsed(resource: Record<string, unknown>, path: string, scope: Scope): void {
    if (!Array.isArray(resource.contained)) return;
    resource.contained.forEach((c: unknown, i: number) => {
      if (c === null) return; // reported as a null
      const id = (c as Record<string, unknown>).id;
      if (typeof id !== 'string') {
        this.#issue('invariant', `${path}.contained[${i}]`, `${path}.contained[${i}] has no id, so nothing can refer to it (dom-3)`);
      } else if (!scope.localRefs.has(`#${id}`)) {
        this.#issue('invariant', `${path}.contained[${i}]`, `${path}.contained[${i}] (${quote(`#${id}`)}) is not referred to from anywhere in the resource (dom-3)`);
      }
    });
  }

  #object(node: Record<string, unknown>, type: TypeModel, path: string, scope: Scope): void {
    let choices: Map<string, string> | undefined;
    for (const key in node) {
      if (key === 'resourceType') continue;
      const extension = key.charCodeAt(0) === 95; // '_': the id/extensions of a primitive sibling
      const name = extension ? key.slice(1) : key;
      const field = type.fields.get(name);
      if (!field) continue; // unknown element: the schema reports it
      if (field.name !== field.key && !extension) {
        // A choice element (value[x]) holds one value of one type: the schema lets several through.
        choices ??= new Map();
        const other = choices.get(field.name);
        if (other) this.#issue('structure', `${path}.${field.name}[x]`, `${path}.${field.name}[x] has more than one type (${other}, ${key}): only one is allowed`);
        else choices.set(field.name, key);
      }
      const value = node[key];
      if (Array.isArray(value)) {
        if (value.length === 0) this.#issue('structure', `${path}.${name}`, `${path}.${name} is an empty array: leave it out instead`);
        // (An array where one value belongs is the schema's to report.)
        if (field.array && !field.primitive) this.#noNulls(value, `${path}.${name}`);
        else if (field.array && (!extension || !Array.isArray(node[name]))) this.#aligned(node, name, `${path}.${name}`); // once per pair
        for (let i = 0; i < value.length; i++) this.#value(value[i], field, `${path}.${name}[${i}]`, scope, extension);
      } else {
        this.#value(value, field, `${path}.${name}`, scope, extension);
      }
    }
    for (const req of type.required) {
      if (!req.keys.some((k) => node[k] !== undefined)) this.#issue('required', `${path}.${req.name}`, `${path}.${req.name} is required`);
    }
  }

  #value(value: unknown, field: FieldModel, path: string, scope: Scope, extension: boolean): void {
    if (value === null || typeof value !== 'object') {
      if (typeof value === 'number') {
        const why = numberError(field.type, value);
        if (why) this.#issue('value', path, `${path}: ${value} is not a valid ${field.type} (${why})`);
      }
      if (!extension && typeof value === 'string') {
        const bad = stringError(value, !UNLIMITED_TEXT_TYPES.has(field.type));
        if (bad) {
          // Not echoed as it came: an outcome holding a lone surrogate could not be written as UTF-8 either.
          this.#issue('value', path, `${path}: ${quote(value.toWellFormed())} is not a valid ${field.type} (${bad})`);
          return;
        }
        if (value.charCodeAt(0) === 35 && LOCAL_URI_TYPES.has(field.type)) this.#localRef(value, scope); // '#id'
        const kind = dateKind(field.type);
        const reason = kind && dateError(kind, value);
        if (reason) this.#issue('value', path, `${path}: ${quote(value)} is not a valid ${kind} (${reason})`);
        else if (field.type === 'base64Binary') {
          const why = base64Error(value);
          if (why) this.#issue('value', path, `${path}: ${quote(value)} is not a valid base64Binary (${why})`);
        } else if (field.type === 'xhtml') {
          this.#o.issues.push(...narrativeIssues(value, path));
        }
      }
      // A few primitives carry invariants of their own (eld-3 on ElementDefinition.max). Strings only: fhirpath
      // 5.2.2 fails with a number as the context node, and the one base invariant a number meets (ras-1 on
      // RiskAssessment.prediction.probabilityDecimal) reads low/high, which a decimal does not have.
      if (!extension && typeof value === 'string' && field.constraints.length > 0) {
        this.#invariants(this.#o.invariantsOf(field), value, undefined, path, scope);
      }
      return; // wrong JSON types are the schema's to report
    }
    if (Array.isArray(value)) return;
    const node = value as Record<string, unknown>;
    if (isEmptyObject(node)) {
      this.#issue('structure', path, `${path} is empty: an element needs a value or child elements`);
      return;
    }
    if (extension || field.primitive) {
      const element = this.#o.model.get('Element');
      if (element) this.#object(node, element, path, scope);
      return;
    }
    if (field.type === 'Resource') {
      this.resource(node, path, scope, field.key === 'contained');
      return;
    }
    const type = this.#o.model.get(field.type);
    if (!type) return;
    this.#object(node, type, path, scope);
    if (field.type === 'Reference') this.#reference(node, field, path, scope);
    else if (field.type === 'Extension') this.#extension(node, path);
    this.#invariants(this.#o.invariantsOf(field), node, type, path, scope);
  }

  /** An array of complex values (or resources) never holds null: only arrays of primitives do, see #aligned. */
  #noNulls(items: unknown[], path: string): void {
    for (let i = 0; i < items.length; i++) {
      if (items[i] === null) {
        this.#issue('structure', `${path}[${i}]`, `${path}[${i}] is null: leave it out instead (a null is only allowed in an array of primitives, holding the place of a value that has only extensions)`);
      }
    }
  }

  /**
   * A repeating primitive is two arrays, the values in `name` and their ids and extensions in `_name`, that line
   * up position by position (json.html#primitive): a null in one holds the place of an item that only the other
   * has, so both arrays have the same length and no position is null in both (or null with no other half).
   */
  #aligned(node: Record<string, unknown>, name: string, path: string): void {
    const values = Array.isArray(node[name]) ? (node[name] as unknown[]) : undefined;
    const extras = Array.isArray(node[`_${name}`]) ? (node[`_${name}`] as unknown[]) : undefined;
    if (values && extras && values.length !== extras.length) {
      this.#issue('structure', path, `${path}: ${name} has ${values.length} item(s) but _${name} has ${extras.length}: the two arrays line up position by position, so they must be the same length`);
    }
    const length = Math.max(values?.length ?? 0, extras?.length ?? 0);
    for (let i = 0; i < length; i++) {
      const value = values?.[i];
      const extra = extras?.[i];
      if (value !== null && extra !== null) continue;
      const at = `${path}[${i}]`;
      if (value === null && extra === null) {
        this.#issue('structure', at, `${at} is null in both ${name} and _${name}: leave the position out instead`);
      } else if (value === null && extra === undefined) {
        this.#issue('structure', at, `${at} is null but _${name}[${i}] has no id or extensions for it: leave it out instead (a null only holds the place of a value that has only extensions)`);
      } else if (extra === null && value === undefined) {
        this.#issue('structure', at, `${at}: _${name}[${i}] is null but ${name}[${i}] has no value: leave it out instead`);
      }
    }
  }

  /** ext-1: an extension has either nested extensions or a value[x], never both (nor neither). */
  #extension(node: Record<string, unknown>, path: string): void {
    let value = false;
    for (const key in node) if (VALUE_KEY.test(key)) value = true;
    const nested = Array.isArray(node.extension) && node.extension.length > 0;
    if (value === nested) {
      const what = value ? 'both a value[x] and nested extensions' : 'neither a value[x] nor nested extensions';
      this.#issue('invariant', path, `${path} has ${what}: it must have exactly one of them (ext-1)`);
    }
  }

  #reference(node: Record<string, unknown>, field: FieldModel, path: string, scope: Scope): void {
    const ref = node.reference;
    if (typeof ref !== 'string') return;
    if (ref.charCodeAt(0) === 35) this.#localRef(ref, scope);
    const parsed = parseReference(ref, scope.rules);
    if ('error' in parsed) {
      this.#issue('value', `${path}.reference`, `${path}.reference: ${quote(ref)} is not a valid reference (${parsed.error})`);
      return;
    }
    let type = parsed.type;
    if (parsed.kind === 'local' && ref !== '#') {
      type = scope.contained.get(ref.slice(1));
      if (!type) {
        this.#issue('invariant', `${path}.reference`, `${path}.reference: ${quote(ref)} does not match the id of any contained resource (ref-1)`);
        return;
      }
    }
    if (typeof node.type === 'string' && type && node.type !== type) {
      this.#issue('value', `${path}.type`, `${path}.type is ${quote(node.type)} but the reference points to a ${type}`);
    }
    if (type && field.targets && !field.targets.includes(type)) {
      this.#issue('value', `${path}.reference`, `${path}.reference: a reference to a ${type} is not allowed here (allowed: ${field.targets.join(', ')})`);
    }
  }

  #localRef(ref: string, scope: Scope): void {
    scope.localRefs.add(ref === '#' && scope.containedId !== undefined ? `#${scope.containedId}` : ref);
  }

  /** `type` is the element's type model when it is an object (its child names let invariants be skipped). */
  #invariants(invariants: readonly Invariant[], node: unknown, type: TypeModel | undefined, path: string, scope: Scope): void {
    if (invariants.length === 0) return;
    let names: Set<string> | undefined;
    const present = (name: string) => {
      if (!names) {
        names = new Set();
        for (const key in node as Record<string, unknown>) {
          const k = key.charCodeAt(0) === 95 ? key.slice(1) : key;
          names.add(type!.fields.get(k)?.name ?? k);
        }
      }
      return names.has(name);
    };
    for (const inv of invariants) {
      const ok = inv.holds(node, scope.vars, type ? present : undefined);
      if (ok === true) continue;
      if (ok === false) this.#issue('invariant', path, `${path}: ${inv.human} (${inv.key}: ${inv.expression})`);
      else this.#issue('invariant', path, `${path}: invariant ${inv.key} could not be evaluated: ${ok.message}`, 'warning');
    }
  }
}

/** Whether `value` nests objects/arrays deeper than `max` (checked before anything recursive runs). */
export function exceedsDepth(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
