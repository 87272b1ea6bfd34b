/**
 * The CIDs this server writes and how a fetched block is checked against its CID, shared by every block store
 * (Helia embedded, Kubo remote): a block is trusted only after its multihash is recomputed.
 */
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 } from 'multiformats/hashes/sha2';
import { errors, FhirError } from '../errors.ts';
import { sha256 as sha256Bytes } from './sha256.ts';

/** CIDv1, raw codec, sha2-256: the only kind of CID this server writes. */
export function rawCid(bytes: Uint8Array): CID {
  return CID.createV1(raw.code, Digest.create(sha256.code, sha256Bytes(bytes)));
}

/** Recomputes the multihash of fetched bytes; ERR_BLOCK_CORRUPT unless they are exactly the block the CID names. */
export function verifyBlock(cid: CID, bytes: Uint8Array): Uint8Array {
  const digest = sha256Bytes(bytes);
  if (cid.multihash.code !== sha256.code || !digest.equals(cid.multihash.digest)) {
    throw errors.internal(`Block ${cid} does not match its CID`, 'ERR_BLOCK_CORRUPT');
  }
  return bytes;
}

export function blockNotFound(cid: CID): FhirError {
  return errors.internal(`Block ${cid} is not in the block store`, 'ERR_BLOCK_NOT_FOUND');
}

