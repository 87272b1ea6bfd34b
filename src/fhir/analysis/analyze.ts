/**
 * What a write must know about a resource before it can be stored, computed with no I/O: whether it is valid,
 * whose patient compartment it is in, its search-index entries (identifying values already keyed hashes) and its
 * canonical bytes. This is most of a write's CPU, so it can run on worker threads (pool.ts) while the main thread
 * does the I/O; `inlineAnalyzer` runs the very same function on the calling thread.
 */
import type { KeyObject } from 'node:crypto';
import type { Resource } from '@medplum/fhirtypes';
import { canonicalBytes } from '../../ledger/canonical.ts';
import { contentHash } from '../../storage/envelope.ts';
import type { PatientCompartment } from '../compartment.ts';
import { extractEntries, sealEntries, type IndexEntry, type IndexHash } from '../search/extract.ts';
import type { ValidateOptions, Validator } from '../validate.ts';

export interface Analysis {
  /** RFC 8785 canonical JSON of the resource as given (meta already stamped by the caller). */
  plaintext: Uint8Array;
  /** Owner of the patient compartment the resource is in (its key wraps the data key), if any. */
  patient: string | undefined;
  /** Search-index entries as stored. */
  entries: IndexEntry[];
}

export interface Analyzer {
  /** Throws the validator's FhirError (400/422) for an invalid resource. */
  analyze(resource: Resource, options: ValidateOptions): Promise<Analysis>;
  close(): Promise<void>;
}

export interface AnalysisDeps {
  validator: Validator;
  compartment: PatientCompartment;
  /** The server's FHIR base URL: absolute references under it are indexed as local. */
  baseUrl: string | undefined;
  indexHash: IndexHash;
}

export function analyze(deps: AnalysisDeps, resource: Resource, options: ValidateOptions): Analysis {
  deps.validator.assertValid(resource, options);
  return {
    plaintext: canonicalBytes(resource),
    patient: deps.compartment.patientsOf(resource)[0],
    entries: indexEntriesOf(deps, resource),
  };
}

/** Index entries of a resource as stored: extracted, then sealed (also what reindex writes). */
export function indexEntriesOf(deps: Pick<AnalysisDeps, 'baseUrl' | 'indexHash'>, resource: Resource): IndexEntry[] {
  const plain = extractEntries(resource, deps.baseUrl ? { baseUrl: deps.baseUrl } : {});
  return sealEntries(resource.resourceType, plain, deps.indexHash);
}

export function inlineAnalyzer(deps: AnalysisDeps): Analyzer {
  return {
    analyze: async (resource, options) => analyze(deps, resource, options),
    close: async () => undefined,
  };
}

/** Codes, systems and statuses repeat across resources: an HMAC costs more than a map lookup. */
const HASH_CACHE = 100_000;
const encoder = new TextEncoder();

/**
 * The keyed hash that stands for an identifying index value (docs/storage.md, search index), the same on every
 * thread: HMAC-SHA-256 under the node's content-hash key of `search-index\0<value>`, 22 base64url characters.
 */
export function indexHasher(hashKey: KeyObject): IndexHash {
  const cache = new Map<string, string>();
  return (value) => {
    let hashed = cache.get(value);
    if (hashed === undefined) {
      hashed = `h${contentHash(hashKey, encoder.encode(`search-index\u0000${value}`)).slice(0, 22)}`;
      if (cache.size >= HASH_CACHE) cache.clear();
      cache.set(value, hashed);
    }
    return hashed;
  };
}
