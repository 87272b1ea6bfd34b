/**
 * Contracts of the storage floor: IPFS block stores (Helia embedded, Kubo remote) and the sealed store that
 * turns a resource version into an encrypted block plus the key material the index keeps.
 */
import type { CID } from 'multiformats/cid';
import type { BatchOp } from './db.ts';
import type { VersionStamp } from './envelope.ts';

/**
 * An IPFS block store. Blocks are raw (codec 0x55) with SHA-256 multihashes, CIDv1.
 * `stage` makes a block durable before, or together with, the commit batch that points at it:
 * the embedded Helia store returns batch ops (the block lands in the same synced LevelDB write as the index);
 * a remote Kubo node stores (and pins) it right away and returns no ops.
 */
export interface BlockStore {
  readonly kind: 'helia' | 'kubo';
  /** CID of bytes as this store addresses them (raw codec, sha2-256). Pure. */
  cidOf(bytes: Uint8Array): Promise<CID>;
  stage(bytes: Uint8Array): Promise<{ cid: CID; ops: BatchOp[] }>;
  /** Fetches a block and verifies it against its CID (multihash recomputed); throws ERR_BLOCK_CORRUPT on mismatch, ERR_BLOCK_NOT_FOUND if absent. */
  get(cid: CID): Promise<Uint8Array>;
  /** Several blocks, in order, each fetched and verified as by `get`, all requested at once (a search page). */
  getMany(cids: CID[]): Promise<Uint8Array[]>;
  has(cid: CID): Promise<boolean>;
  /** Unpins and removes the local copy (erasure). */
  remove(cid: CID): Promise<void>;
  /** Whether the store answers now (readiness: a remote node may be down while this server runs). Never throws. */
  reachable(): Promise<boolean>;
  close(): Promise<void>;
}

/** What the index keeps per resource version so that it can be opened again. */
export interface SealedVersion {
  /** CIDv1 (base32) of the encrypted block. */
  cid: string;
  /** Which key-encryption key wrapped the data key: `patient/<id>` or `node`. */
  kek: string;
  /** The data key wrapped by that KEK (base64url). Lives in the index only: never in IPFS, never in the ledger. */
  wrappedKey: string;
  /** base64url HMAC-SHA-256 of the canonical plaintext under the node content-hash key (for the ledger). */
  hmac: string;
}

/** Where a version is and what its record says of it: what opening it needs (the record, in the index). */
export interface SealedAddress extends SealedVersion, VersionStamp {
  resourceType: string;
  id: string;
  versionId: string;
}

export interface SealInput extends VersionStamp {
  resourceType: string;
  id: string;
  versionId: string;
  /** Canonical JSON bytes of the resource version (what gets encrypted). */
  plaintext: Uint8Array;
  /** `patient/<id>` for resources in a patient compartment, else `node`. */
  kek: string;
  /** The KEK cannot be stored yet (its patient's id was just generated): see Keyring.kekForWrite. */
  freshKek?: boolean;
}

export interface SealedStore {
  /** Encrypts a version under a fresh data key and stages its block. Ops go into the commit batch. */
  seal(input: SealInput): Promise<{ sealed: SealedVersion; ops: BatchOp[] }>;
  /**
   * Fetches, verifies against the CID, unwraps and decrypts. Throws ERR_KEY_DESTROYED if the KEK was erased, and
   * ERR_DECRYPT if the KEK, the wrapped key, the record's stamp or the block does not open (its cause names the
   * version and the step, never key material).
   */
  open(address: SealedAddress): Promise<Uint8Array>;
  /** Several versions, in order, as by `open`, their blocks fetched together (a search page, a Bundle). */
  openMany(addresses: SealedAddress[]): Promise<Uint8Array[]>;
  /** Drops every decrypted version protected by this KEK from memory (erasure, after the KEK is destroyed). */
  forget(kek: string): void;
}
