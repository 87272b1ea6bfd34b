/**
 * What create, update, patch and delete share: the body must be a resource object, If-Match must name the
 * current version (http://hl7.org/fhir/R4/http.html#concurrency), and a stored version answers with its
 * Location, ETag and Last-Modified.
 */
import type { Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { etagOf, httpDate, versionOfEtag } from '../audit.ts';
import type { PreparedVersion, VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse } from '../request.ts';

export function resourceBody(req: FhirRequest): Resource {
  const body = req.body;
  if (body === undefined || body === null) throw errors.badRequest('The request needs a resource in its body', undefined, 'ERR_NO_BODY');
  if (typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('The request body must be a JSON object (a FHIR resource)', undefined, 'ERR_NOT_A_RESOURCE');
  return body as Resource;
}

export function checkIfMatch(req: FhirRequest, current: VersionRecord | undefined, key: string): void {
  const ifMatch = req.headers.ifMatch;
  if (ifMatch === undefined) return;
  const wanted = versionOfEtag(ifMatch);
  if (!current || current.deleted || wanted !== current.versionId) {
    const actual = !current ? 'it does not exist' : current.deleted ? 'it is deleted' : `the current version is W/"${current.versionId}"`;
    throw errors.preconditionFailed(`If-Match ${ifMatch.slice(0, 40)} does not match ${key}: ${actual}`, 'ERR_VERSION_CONFLICT');
  }
}

export function writtenResponse(baseUrl: string, prepared: PreparedVersion, status: number): FhirResponse {
  const { record } = prepared;
  const response: FhirResponse = {
    status,
    headers: {
      etag: etagOf(record),
      lastModified: httpDate(record.lastUpdated),
      location: `${baseUrl}/${record.resourceType}/${record.id}/_history/${record.versionId}`,
    },
    written: true,
  };
  if (prepared.resource) response.body = prepared.resource;
  return response;
}
