/**
 * What the CapabilityStatement says about search: per type exactly the parameters the registry supports (name,
 * type, definition), the includes, the `search-type` interaction, Patient `$everything`, the Patient compartment
 * and the system-level parameters, `_type` among them. `_text`, `_content`, `_query`, `_list` and `_filter` are
 * not listed: they are not supported (400, or ignored under `Prefer: handling=lenient`).
 */
import type { CapabilityStatementRestResource, CapabilityStatementRestResourceSearchParam } from '@medplum/fhirtypes';
import { COMMON_PARAMETERS_TYPE } from './params.ts';
import { paramsOf } from './registry.ts';

/**
 * `_type` has no SearchParameter definition in R4 (search.html#searchcontexts describes it), so it is declared by
 * name, with what it allows here (params.ts, parseSystemSearch).
 */
const TYPE_PARAMETER: CapabilityStatementRestResourceSearchParam = {
  name: '_type',
  type: 'token',
  documentation:
    'Resource types to search, comma-separated. With _type, every other parameter must be defined for each listed type (the resource-level parameters above are, any other is a 400) and is applied by each type\'s own definition; _include may start from any listed type and _sort may use a parameter of the same type on all of them. Without _type, only the parameters above, over every type, sorted by _id or _lastUpdated.',
};

function searchParams(type: string): CapabilityStatementRestResourceSearchParam[] {
  return [...paramsOf(type).values()]
    .map((p) => ({ name: p.code, definition: p.url, type: p.type }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Adds search to each resource entry (in place) and returns the rest-level parts. */
export function searchCapabilities(resources: CapabilityStatementRestResource[]): {
  systemParams: CapabilityStatementRestResourceSearchParam[];
  compartments: string[];
} {
  for (const resource of resources) {
    const type = resource.type;
    resource.interaction = [...(resource.interaction ?? []), { code: 'search-type' }];
    resource.searchParam = searchParams(type);
    const references = [...paramsOf(type).values()].filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`).sort();
    resource.searchInclude = ['*', ...references];
    resource.searchRevInclude = [];
    if (type === 'Patient') {
      resource.operation = [
        ...(resource.operation ?? []),
        { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
        { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export' },
      ];
    }
    if (type === 'Group') {
      resource.operation = [...(resource.operation ?? []), { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' }];
    }
  }
  // revincludes: every reference parameter of any type that may point at this one, and `Type:*` for each such type
  const byTarget = new Map<string, Set<string>>();
  for (const resource of resources) {
    for (const p of paramsOf(resource.type).values()) {
      if (p.type !== 'reference') continue;
      for (const target of p.target ?? []) {
        if (!byTarget.has(target)) byTarget.set(target, new Set());
        byTarget.get(target)!.add(`${resource.type}:${p.code}`).add(`${resource.type}:*`);
      }
    }
  }
  for (const resource of resources) resource.searchRevInclude = [...(byTarget.get(resource.type) ?? [])].sort();
  return { systemParams: [...searchParams(COMMON_PARAMETERS_TYPE), TYPE_PARAMETER], compartments: ['http://hl7.org/fhir/CompartmentDefinition/patient'] };
}
