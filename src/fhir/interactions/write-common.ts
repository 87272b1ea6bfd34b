/**
 * What create, update, patch and delete share: the body must be a resource object, If-Match must name the
 * current version (http://hl7.org/fhir/R4/http.html#concurrency), and a stored version answers with its
 * Location, ETag and Last-Modified.
 */
import type { Resource } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { etagOf, versionOfEtag } from '../audit.ts';
import type { PreparedVersion, VersionRecord } from '../repository.ts';
import type { FhirRequest, FhirResponse } from '../request.ts';

export function resourceBody(req: FhirRequest): Resource {
  const body = req.body;
  if (body === undefined || body === null) throw errors.badRequest('The request needs a resource in its body', undefined, 'ERR_NO_BODY');
  if (typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('The request body must be a JSON object (a FHIR resource)', undefined, 'ERR_NOT_A_RESOURCE');
  return body as Resource;
}

/** An entity-tag (RFC 9110 §8.8.3): optionally weak, quoted, no quote inside. */
const ENTITY_TAG = /^\s*(?:W\/)?"[^"]*"\s*$/;
const BARE_VERSION = /^\s*\d{1,15}\s*$/;

/**
 * If-Match as RFC 9110 §13.1.1 reads it, with FHIR's weak version ETags: `*` (the resource exists) or a list of
 * ETags, any of which may name the current version. A bare version number (`2`) is taken too, as HAPI does;
 * anything else is a 400, not a mismatch, so a client with a bug is told so rather than to retry.
 */
export function checkIfMatch(req: FhirRequest, current: VersionRecord | undefined, key: string): void {
  const ifMatch = req.headers.ifMatch;
  if (ifMatch === undefined) return;
  const exists = current !== undefined && !current.deleted;
  let matches: boolean;
  if (ifMatch.trim() === '*') {
    matches = exists;
  } else {
    const tags = ifMatch.split(',');
    if (!tags.every((tag) => ENTITY_TAG.test(tag) || BARE_VERSION.test(tag))) {
      throw errors.badRequest(`If-Match ${ifMatch.slice(0, 40)} is not a version ETag: send W/"<versionId>" (or *)`, undefined, 'ERR_IF_MATCH_SYNTAX');
    }
    // An ETag we did not issue (W/"abc") is well-formed but names no version: it never matches.
    matches = exists && tags.some((tag) => (BARE_VERSION.test(tag) ? Number(tag) : versionOfEtag(tag)) === current.versionId);
  }
  if (!matches) {
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
      lastModified: record.lastUpdated,
      location: `${baseUrl}/${record.resourceType}/${record.id}/_history/${record.versionId}`,
    },
    written: true,
  };
  if (prepared.resource) response.body = prepared.resource;
  return response;
}
