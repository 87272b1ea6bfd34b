/**
 * The CapabilityStatement (http://hl7.org/fhir/R4/capabilitystatement.html): what this server really does,
 * built once from the list of resource types and the interactions the router implements.
 */
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { AUDIT_EVENT_CAPABILITY } from './interactions/audit-event.ts';
import { RESOURCE_TYPES } from './validate.ts';
import { searchCapabilities } from './search/capability.ts';

export interface Capabilities {
  statement: CapabilityStatement;
}

export const SOFTWARE = { name: 'sealed-fhir', version: '0.1.0' };

export function buildCapabilities(baseUrl: string, startedAt: string, options: { cors: boolean }): Capabilities {
  const resource: CapabilityStatementRestResource[] = RESOURCE_TYPES.map((type) => ({
    type: type as CapabilityStatementRestResource['type'],
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction: (['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create'] as const).map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'full-support',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    referencePolicy: ['literal', 'local'],
    operation: [{ name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' }],
  }));
  const search = searchCapabilities(resource);
  // AuditEvent is the ledger's read-only view, with its own search.
  Object.assign(resource.find((r) => r.type === 'AuditEvent')!, AUDIT_EVENT_CAPABILITY);
  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    publisher: 'sealed-fhir',
    kind: 'instance',
    software: { name: SOFTWARE.name, version: SOFTWARE.version },
    implementation: { description: 'sealed-fhir: FHIR R4 over encrypted IPFS storage with an auditable ledger', url: baseUrl },
    // FHIR Bulk Data Access: system and patient level export (src/fhir/interactions/export.ts).
    instantiates: ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data'],
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Every read and write is recorded in a hash-chained audit ledger before the response is sent.',
        security: {
          cors: options.cors,
          service: [
            {
              coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
              text: 'OAuth2 bearer tokens (JWT, verified against trusted issuers)',
            },
          ],
          description: 'Every request except GET /metadata needs a bearer JWT whose aud is this base URL.',
        },
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }, { code: 'search-system' }],
        searchParam: search.systemParams,
        operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }],
        compartment: search.compartments,
      },
    ],
  };
  return { statement };
}
