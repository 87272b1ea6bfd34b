/**
 * Membership in the Patient compartment (http://hl7.org/fhir/R4/compartmentdefinition-patient.html): which
 * patients a resource belongs to. It decides which patient's key wraps a version's data key (so erasing a patient
 * destroys exactly their records) and which patients an audit entry names.
 */
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4/index.js';
import { r4PatientCompartment, r4SearchParameters, withoutResolve } from './definitions.ts';

type Extractor = (resource: unknown) => unknown[];

export class PatientCompartment {
  private readonly extractors = new Map<string, Extractor[]>();

  constructor() {
    const params = r4SearchParameters();
    for (const { code: type, param } of r4PatientCompartment()) {
      const compiled: Extractor[] = [];
      for (const name of param ?? []) {
        if (name === '{def}') continue;
        const def = params.find((p) => p.code === name && p.base.includes(type));
        if (!def?.expression) continue;
        const fn = fhirpath.compile(withoutResolve(def.expression), r4Model as never);
        compiled.push((resource) => fn(resource as never) as unknown[]);
      }
      this.extractors.set(type, compiled);
    }
  }

  /** True when resources of this type can belong to a patient compartment at all. */
  hasType(resourceType: string): boolean {
    return resourceType === 'Patient' || (this.extractors.get(resourceType)?.length ?? 0) > 0;
  }

  /** Ids of the patients whose compartment holds this resource, in a stable order (first = key owner). */
  patientsOf(resource: { resourceType: string; id?: string }): string[] {
    const ids = new Set<string>();
    if (resource.resourceType === 'Patient' && resource.id) ids.add(resource.id);
    for (const extract of this.extractors.get(resource.resourceType) ?? []) {
      let values: unknown[];
      try {
        values = extract(resource);
      } catch {
        continue; // A malformed element cannot put a resource in a compartment; validation reports it.
      }
      for (const value of values) {
        const id = patientIdOf(value);
        if (id) ids.add(id);
      }
    }
    return [...ids];
  }
}

const PATIENT_REFERENCE = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** The patient id a Reference points at (`Patient/1`, `<any base>/Patient/1`, with or without `_history`). */
export function patientIdOf(value: unknown): string | undefined {
  const reference = (value as { reference?: unknown } | null)?.reference;
  if (typeof reference !== 'string') return undefined;
  return PATIENT_REFERENCE.exec(reference)?.[1];
}
