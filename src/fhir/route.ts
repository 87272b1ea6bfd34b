/**
 * Which FHIR interaction a method and path ask for (http://hl7.org/fhir/R4/http.html). Pure: no I/O.
 */
import { errors } from '../errors.ts';
import { RESOURCE_TYPES } from './validate.ts';

export interface RouteMatch {
  /** FHIR restful interaction code, or `operation` for $operations. */
  interaction: string;
  resourceType?: string;
  id?: string;
  versionId?: string;
  operation?: string;
  /**
   * Compartment search `Patient/[id]/[type]`: the compartment's type (`Patient`); `id` is then the compartment
   * owner's id and `resourceType` the type searched inside it.
   */
  compartment?: string;
  /** A bulk export job (`$export-poll-status/[job]`, `$export-file/[job]/[type]`). */
  job?: string;
}

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const resourceTypes = new Set<string>(RESOURCE_TYPES);

function checkType(type: string): string {
  if (!resourceTypes.has(type)) throw errors.notFound(`Unknown resource type '${type}'`, 'ERR_UNKNOWN_TYPE');
  return type;
}

function checkId(id: string, what = 'id'): string {
  if (!ID.test(id)) throw errors.badRequest(`Invalid ${what} '${id.slice(0, 80)}': must match [A-Za-z0-9\\-.]{1,64}`, undefined, 'ERR_INVALID_ID');
  return id;
}

function methodNotAllowed(method: string, path: string): never {
  throw errors.methodNotAllowed(`${method} is not supported on ${path ? `'${path}'` : 'the base URL'}`);
}

export function matchRoute(method: string, path: string): RouteMatch {
  const segments = path.split('/').filter((s) => s !== '').map(decodeSegment);
  const [first, second, third, fourth] = segments;
  if (segments.length > 4) throw errors.notFound(`No FHIR endpoint at '${path.slice(0, 200)}'`, 'ERR_NO_ROUTE');
  if (first === undefined) {
    if (method === 'POST') return { interaction: 'batch' }; // batch or transaction: decided by Bundle.type
    if (method === 'GET') return { interaction: 'search-system' };
    return methodNotAllowed(method, path);
  }
  if (segments.length === 1) {
    if (first === 'metadata') return method === 'GET' ? { interaction: 'capabilities' } : methodNotAllowed(method, path);
    if (first === '_history') return method === 'GET' ? { interaction: 'history-system' } : methodNotAllowed(method, path);
    if (first === '_search') return method === 'POST' ? { interaction: 'search-system' } : methodNotAllowed(method, path);
    if (first === '$export') return method === 'GET' ? { interaction: 'operation', operation: '$export' } : methodNotAllowed(method, path);
    if (first.startsWith('$')) throw errors.notFound(`Unknown operation '${first}'`, 'ERR_UNKNOWN_OPERATION');
    const resourceType = checkType(first);
    if (method === 'POST') return { interaction: 'create', resourceType };
    if (method === 'GET') return { interaction: 'search-type', resourceType };
    // Conditional update, patch and delete (`[type]?[search]`): the handlers take the condition from the query.
    if (method === 'PUT') return { interaction: 'update', resourceType };
    if (method === 'PATCH') return { interaction: 'patch', resourceType };
    if (method === 'DELETE') return { interaction: 'delete', resourceType };
    return methodNotAllowed(method, path);
  }
  if (first === '$export-poll-status' || first === '$export-file') return exportJobRoute(method, path, segments);
  const resourceType = checkType(first);
  if (segments.length === 2) {
    if (second === '_history') return method === 'GET' ? { interaction: 'history-type', resourceType } : methodNotAllowed(method, path);
    if (second === '_search') return method === 'POST' ? { interaction: 'search-type', resourceType } : methodNotAllowed(method, path);
    if (second!.startsWith('$')) return operation(method, path, { resourceType, operation: second! });
    const id = checkId(second!);
    switch (method) {
      case 'GET':
      case 'HEAD':
        return { interaction: 'read', resourceType, id };
      case 'PUT':
        return { interaction: 'update', resourceType, id };
      case 'PATCH':
        return { interaction: 'patch', resourceType, id };
      case 'DELETE':
        return { interaction: 'delete', resourceType, id };
      default:
        return methodNotAllowed(method, path);
    }
  }
  const id = checkId(second!);
  if (segments.length === 3) {
    if (third === '_history') return method === 'GET' ? { interaction: 'history-instance', resourceType, id } : methodNotAllowed(method, path);
    if (third!.startsWith('$')) return operation(method, path, { resourceType, id, operation: third! });
    if (resourceType === 'Patient' && resourceTypes.has(third!)) {
      return method === 'GET' ? { interaction: 'search-compartment', resourceType: third!, id, compartment: resourceType } : methodNotAllowed(method, path);
    }
    throw errors.notFound(`No FHIR endpoint at '${path.slice(0, 200)}'`, 'ERR_NO_ROUTE');
  }
  if (third === '_history') {
    const versionId = checkId(fourth!, 'version id');
    return method === 'GET' || method === 'HEAD' ? { interaction: 'vread', resourceType, id, versionId } : methodNotAllowed(method, path);
  }
  throw errors.notFound(`No FHIR endpoint at '${path.slice(0, 200)}'`, 'ERR_NO_ROUTE');
}

/**
 * A bulk export job's status (`$export-poll-status/[job]`: GET polls, DELETE cancels) and its files
 * (`$export-file/[job]/[type]`), at the URLs the kick-off and the manifest hand out.
 */
function exportJobRoute(method: string, path: string, segments: string[]): RouteMatch {
  const [first, job, type] = segments as [string, string | undefined, string | undefined];
  if (first === '$export-poll-status' && segments.length === 2) {
    if (method !== 'GET' && method !== 'DELETE') return methodNotAllowed(method, path);
    return { interaction: 'operation', operation: first, job: checkId(job!, 'export job id') };
  }
  if (first === '$export-file' && segments.length === 3) {
    if (method !== 'GET') return methodNotAllowed(method, path);
    return { interaction: 'operation', operation: first, job: checkId(job!, 'export job id'), resourceType: checkType(type!) };
  }
  throw errors.notFound(`No FHIR endpoint at '${path.slice(0, 200)}'`, 'ERR_NO_ROUTE');
}

/**
 * Operations, with the methods each accepts and where they run: `at` lists the levels (a type, or an instance of
 * it); without `at`, any type and instance.
 */
const OPERATIONS: Record<string, { methods: string[]; at?: Array<{ type: string; instance: boolean }> }> = {
  $validate: { methods: ['POST'] },
  $everything: { methods: ['GET'], at: [{ type: 'Patient', instance: true }] },
  $export: { methods: ['GET'], at: [{ type: 'Patient', instance: false }, { type: 'Group', instance: true }] },
};

function operation(method: string, path: string, match: { resourceType: string; id?: string; operation: string }): RouteMatch {
  const op = Object.hasOwn(OPERATIONS, match.operation) ? OPERATIONS[match.operation] : undefined;
  if (!op || (op.at && !op.at.some((level) => level.type === match.resourceType && level.instance === (match.id !== undefined)))) {
    throw errors.notFound(`Unknown operation '${match.operation.slice(0, 64)}'`, 'ERR_UNKNOWN_OPERATION');
  }
  if (!op.methods.includes(method)) return methodNotAllowed(method, path);
  return { interaction: 'operation', ...match };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw errors.badRequest(`Malformed percent-encoding in path segment '${segment.slice(0, 80)}'`, undefined, 'ERR_BAD_PATH');
  }
}
