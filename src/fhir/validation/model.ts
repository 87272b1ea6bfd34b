/**
 * A compact, type-aware model of R4 built from the base StructureDefinition snapshots: for every resource,
 * data type and backbone element, which JSON properties it has, their types, which are required (min >= 1),
 * and which invariants apply. The walker reads this model; nothing here touches instance data.
 */
import type { Constraint, ElementDef, StructureDef } from './definitions.ts';

export type DateKind = 'date' | 'dateTime' | 'instant';

export interface FieldModel {
  /** JSON property name, e.g. `valueQuantity` for the element `value[x]`. */
  key: string;
  /** The element's name in FHIRPath: `value` for `valueQuantity`. */
  name: string;
  /** Whether the JSON value is an array (max other than "1"). */
  array: boolean;
  /** A data type name (`Quantity`, `date`), a backbone element path (`Observation.component`) or `Resource`. */
  type: string;
  primitive: boolean;
  /** For Reference fields: the allowed target resource types, or undefined when any type is allowed. */
  targets?: readonly string[];
  /** Invariants (severity error, except ele-1) of this element and of its data type. */
  constraints: readonly Constraint[];
}

export interface RequiredElement {
  /** The element's name in FHIRPath (`status`, `value[x]`). */
  name: string;
  /** JSON properties any of which satisfies it (`status`, `_status`; every `valueX` of a choice). */
  keys: readonly string[];
}

export interface TypeModel {
  name: string;
  fields: ReadonlyMap<string, FieldModel>;
  required: readonly RequiredElement[];
  /** For resources: the invariants of the root element (dom-*, obs-6, ...). */
  constraints: readonly Constraint[];
}

export type Model = ReadonlyMap<string, TypeModel>;

const FHIRPATH_SYSTEM = 'http://hl7.org/fhirpath/System.';
const BACKBONE = new Set(['BackboneElement', 'Element']);

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const uncapitalize = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * Constraints the walker enforces natively (faster and with better messages than FHIRPath); txt-1 and txt-2
 * call htmlChecks(), which the fhirpath package does not implement (narrative.ts).
 */
const NATIVE = new Set(['ele-1', 'ref-1', 'dom-3', 'ext-1', 'txt-1', 'txt-2']);

function errorConstraints(list: readonly Constraint[] | undefined): Constraint[] {
  return (list ?? []).filter((c) => c.severity === 'error' && !NATIVE.has(c.key) && c.expression);
}

function mergeConstraints(a: readonly Constraint[], b: readonly Constraint[]): Constraint[] {
  const seen = new Set(a.map((c) => c.key));
  return [...a, ...b.filter((c) => !seen.has(c.key))];
}

function referenceTargets(el: ElementDef, code: string): string[] | undefined {
  if (code !== 'Reference') return undefined;
  const profiles = el.type?.find((t) => t.code === 'Reference')?.targetProfile;
  if (!profiles || profiles.length === 0) return undefined;
  const names = profiles.map((p) => p.slice(p.lastIndexOf('/') + 1));
  return names.includes('Resource') ? undefined : names;
}

interface Builder {
  name: string;
  fields: Map<string, FieldModel>;
  required: RequiredElement[];
  constraints: Constraint[];
}

export function buildModel(structures: ReadonlyMap<string, StructureDef>): Model {
  const primitives = new Set<string>();
  for (const sd of structures.values()) if (sd.kind === 'primitive-type') primitives.add(sd.type);
  const rootConstraints = new Map<string, Constraint[]>();
  for (const sd of structures.values()) {
    rootConstraints.set(sd.type, errorConstraints(sd.snapshot?.element[0]?.constraint));
  }

  const builders = new Map<string, Builder>();
  const builder = (name: string): Builder => {
    let b = builders.get(name);
    if (!b) {
      b = { name, fields: new Map(), required: [], constraints: [] };
      builders.set(name, b);
    }
    return b;
  };

  for (const sd of structures.values()) {
    if (sd.kind === 'primitive-type') continue;
    const elements = sd.snapshot?.element ?? [];
    const root = builder(sd.type);
    if (sd.kind === 'resource') root.constraints = rootConstraints.get(sd.type) ?? [];
    for (const el of elements.slice(1)) {
      if (el.sliceName) continue;
      const dot = el.path.lastIndexOf('.');
      const parent = builder(el.path.slice(0, dot));
      const name = el.path.slice(dot + 1);
      const choice = name.endsWith('[x]');
      const base = choice ? name.slice(0, -3) : name;
      const array = el.max !== '1' && el.max !== '0';
      const own = errorConstraints(el.constraint);
      const codes = el.contentReference
        ? [el.contentReference.slice(1)]
        : (el.type ?? []).map((t) => (BACKBONE.has(t.code) ? el.path : t.code));
      const keys: string[] = [];
      for (const code of codes) {
        const system = code.startsWith(FHIRPATH_SYSTEM);
        const type = system ? uncapitalize(code.slice(FHIRPATH_SYSTEM.length)) : code;
        const primitive = system || primitives.has(type);
        const key = choice ? base + capitalize(type) : base;
        const targets = referenceTargets(el, code);
        parent.fields.set(key, {
          key,
          name: base,
          array,
          type,
          primitive,
          ...(targets ? { targets } : {}),
          constraints: mergeConstraints(own, rootConstraints.get(type) ?? []),
        });
        keys.push(key);
        if (primitive) keys.push(`_${key}`);
      }
      if ((el.min ?? 0) >= 1) parent.required.push({ name, keys });
    }
  }
  return builders;
}

/** The date kind of a primitive type, for the calendar check the schema's patterns cannot make. */
export function dateKind(type: string): DateKind | undefined {
  return type === 'date' || type === 'dateTime' || type === 'instant' ? type : undefined;
}
