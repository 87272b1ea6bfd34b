/**
 * The ledger's public contract: what callers hand in (an EntryDraft plus the index operations it records) and
 * what they get back. The implementation (group commit, hash chain, RFC 9162 tree) is in log.ts.
 * Entries never hold plaintext PHI: references, versions, CIDs and keyed (HMAC) content hashes only.
 */
import type { BatchOp } from '../storage/db.ts';

/** Who acted. Taken from the verified access token and the connection; never from the request body. */
export interface Agent {
  /** Token `sub`. Absent for unauthenticated (rejected) requests. */
  sub?: string;
  /** Token `iss`. */
  issuer?: string;
  /** SMART `fhirUser` claim, e.g. `Practitioner/123`. */
  fhirUser?: string;
  /** OAuth client (`client_id` or `azp`). */
  clientId?: string;
  /** Remote network address of the request. */
  address?: string;
}

/** What an entry is about: one resource version (its reference, version, CID and keyed content hash). */
export interface EntityRef {
  /** `Type/id` (or just `Type` for type-level interactions). */
  reference: string;
  version?: string;
  /** CID of the encrypted block (ciphertext only). */
  cid?: string;
  /** base64url HMAC-SHA-256 of the canonical plaintext under the node's content-hash key. */
  hmac?: string;
  /** Patient compartment the resource belongs to (`Patient/id`), for patient-specific audit views. */
  patient?: string;
}

/**
 * What happened, as the FHIR RESTful interaction code (http://hl7.org/fhir/R4/valueset-type-restful-interaction.html)
 * or a server event: read vread update patch delete history-instance history-type history-system create
 * search-type search-system search-compartment batch transaction operation capabilities, and ledger-read, erase,
 * startup, tamper-override.
 */
export type Interaction = string;

export interface EntryDraft {
  interaction: Interaction;
  /** HTTP status the request ended with (2xx success, 4xx denied/failed, 5xx our failure). */
  status: number;
  agent: Agent;
  entity?: EntityRef[];
  /** For operations: the operation name, e.g. `$validate`. */
  operation?: string;
  /** For searches: the query as received (issue 3 decides how it is protected). */
  query?: string;
  /** Patients a search touched. */
  patients?: string[];
  /** Purpose of use, e.g. break-glass. */
  purpose?: string;
  /** Stable error code for failures (FhirError.code), never a message with PHI. */
  error?: string;
}

/** The stored entry: the draft plus the fields the ledger fills in at append time. */
export interface Entry extends EntryDraft {
  /** Format version of the entry schema. */
  v: 1;
  /** 0-based index of the entry in the log (= its Merkle leaf index). */
  seq: number;
  /** ISO 8601 time the entry was appended. */
  time: string;
  /** base64 RFC 9162 leaf hash of the previous entry (for seq 0: base64 of SHA-256 of the empty string). */
  prev: string;
}

export interface Appended {
  seq: number;
  /** base64 leaf hash of the appended entry. */
  leafHash: string;
  time: string;
}

export interface CommitRequest {
  /** Entries to append, in order; at least one. */
  entries: EntryDraft[];
  /**
   * Index changes the entries record. Called synchronously at append time with the seq numbers and time
   * assigned to the entries, so keys can embed them (e.g. history keyed by seq). Written in the SAME synced
   * LevelDB batch as the entries.
   */
  ops?: (appended: Appended[]) => BatchOp[];
}

export interface LedgerWriter {
  /**
   * Appends entries (and their riders) durably: resolves only once the batch holding them is synced to disk.
   * Concurrent commits share one synced write (group commit). Rejects if the write fails; nothing is then stored.
   */
  commit(request: CommitRequest): Promise<Appended[]>;
}
