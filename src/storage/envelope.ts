/**
 * The sealed envelope of one resource version, and the key wrapping around it. Pure: node:crypto only, no I/O
 * (random bytes come from random.ts's pool).
 *
 * Block (what goes into IPFS, self-describing, no key material, no plaintext metadata):
 *   magic "SFB" · format 0x01 · nonce (12) · ciphertext · GCM tag (16)
 * The associated data names `resourceType/id/versionId`, so a block opens only as the version it was sealed for.
 *
 * Wrapped key (what the index keeps): format 0x01 · nonce (12) · encrypted key (32) · GCM tag (16).
 * Keys are wrapped with AES-256-GCM rather than AES-KW (RFC 3394): GCM takes associated data, so each wrapped key
 * is bound to a label naming what it is (`kek patient/123`, `dek node Observation/5/2`), and a wrapped key copied
 * to another index record does not unwrap there. AES-KW has no such input; binding would need a second MAC.
 * The 28 extra bytes per key are cheap, and one primitive keeps one code path to review.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, KeyObject } from 'node:crypto';
import { FhirError } from '../errors.ts';
import { freshRandom } from './random.ts';

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const BLOCK_HEADER = Uint8Array.from([0x53, 0x46, 0x42, 0x01]); // "SFB", format 1
const WRAP_FORMAT = 0x01;
export const WRAPPED_KEY_BYTES = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES;

/** Which resource version a block belongs to: bound into the ciphertext as associated data. */
export interface VersionAddress {
  resourceType: string;
  id: string;
  versionId: string;
}

/**
 * The one answer to every failed decryption: which check failed is nobody's business outside this process. A
 * `cause` (which version, which step) goes to the log only: the OperationOutcome carries the message alone.
 */
export function decryptError(cause?: Error): FhirError {
  return new FhirError('Stored data could not be decrypted', { status: 500, code: 'ERR_DECRYPT', issueType: 'exception', ...(cause ? { cause } : {}) });
}

/**
 * A key as bytes or as a KeyObject. Long-lived keys (master, KEKs, HMAC key) are kept as KeyObjects: node:crypto
 * sets up a cipher from a KeyObject several times faster than from raw bytes (~8 µs against ~60 µs here).
 */
export type SecretKey = Uint8Array | KeyObject;

export function newKey(): Uint8Array {
  // freshRandom's buffer is the key's own (not a pool view): no second copy of the key bytes is left behind.
  const bytes = freshRandom(KEY_BYTES);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function secretKey(key: SecretKey): KeyObject {
  const object = key instanceof KeyObject ? key : createSecretKey(key);
  if (object.type !== 'secret' || object.symmetricKeySize !== KEY_BYTES) {
    throw new RangeError(`AES-256 keys are ${KEY_BYTES} bytes, got ${object.symmetricKeySize}`);
  }
  return object;
}

/** Associated data of a block. The separator cannot occur in a FHIR resource type, id or version id. */
export function blockAad({ resourceType, id, versionId }: VersionAddress): Buffer {
  return Buffer.concat([BLOCK_HEADER, Buffer.from(`${resourceType}/${id}/${versionId}`, 'utf8')]);
}

function gcmSeal(key: SecretKey, plaintext: Uint8Array, aad: Uint8Array, prefix: Uint8Array): Uint8Array {
  const nonce = freshRandom(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', secretKey(key), nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const last = cipher.final();
  return Buffer.concat([prefix, nonce, body, last, cipher.getAuthTag()]);
}

function gcmOpen(key: SecretKey, sealed: Uint8Array, aad: Uint8Array, prefixLength: number): Uint8Array {
  const opened = gcmTryOpen(key, sealed, aad, prefixLength);
  if (opened === undefined) throw decryptError();
  return opened;
}

/** gcmOpen without building an error on failure (a label tried first that may not be the one: unwrapDataKey). */
function gcmTryOpen(key: SecretKey, sealed: Uint8Array, aad: Uint8Array, prefixLength: number): Uint8Array | undefined {
  const keyObject = secretKey(key);
  if (sealed.byteLength < prefixLength + NONCE_BYTES + TAG_BYTES) return undefined;
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const nonce = bytes.subarray(prefixLength, prefixLength + NONCE_BYTES);
  const body = bytes.subarray(prefixLength + NONCE_BYTES, bytes.byteLength - TAG_BYTES);
  const tag = bytes.subarray(bytes.byteLength - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyObject, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const head = decipher.update(body);
    return new Uint8Array(Buffer.concat([head, decipher.final()]));
  } catch {
    return undefined;
  }
}

/** Encrypts one resource version under its own data key (never reuse a data key: the nonce is random). */
export function sealBlock(dataKey: SecretKey, plaintext: Uint8Array, address: VersionAddress): Uint8Array {
  return gcmSeal(dataKey, plaintext, blockAad(address), BLOCK_HEADER);
}

export function openBlock(dataKey: SecretKey, block: Uint8Array, address: VersionAddress): Uint8Array {
  if (block.byteLength < BLOCK_HEADER.byteLength || !BLOCK_HEADER.every((b, i) => block[i] === b)) throw decryptError();
  return gcmOpen(dataKey, block, blockAad(address), BLOCK_HEADER.byteLength);
}

function wrapAad(label: string): Buffer {
  return Buffer.from(`sealed-fhir wrapped key v1\n${label}`, 'utf8');
}

/** Wraps a 32-byte key under a key-encryption key; `label` says what the key is and must match on unwrap. */
export function wrapKey(kek: SecretKey, key: Uint8Array, label: string): Uint8Array {
  if (key.byteLength !== KEY_BYTES) throw new RangeError(`Only ${KEY_BYTES}-byte keys are wrapped, got ${key.byteLength}`);
  return gcmSeal(kek, key, wrapAad(label), Uint8Array.of(WRAP_FORMAT));
}

export function unwrapKey(kek: SecretKey, wrapped: Uint8Array, label: string): Uint8Array {
  const key = tryUnwrapKey(kek, wrapped, label);
  if (key === undefined) throw decryptError();
  return key;
}

/** unwrapKey, undefined rather than ERR_DECRYPT when the key does not unwrap under that KEK and label. */
export function tryUnwrapKey(kek: SecretKey, wrapped: Uint8Array, label: string): Uint8Array | undefined {
  if (wrapped.byteLength !== WRAPPED_KEY_BYTES || wrapped[0] !== WRAP_FORMAT) return undefined;
  return gcmTryOpen(kek, wrapped, wrapAad(label), 1);
}

/**
 * What the version record says of a version beyond its address, bound into its data key's label: the ledger entry
 * records the address, block and content hash but not these, so the label is what lets a holder of the keys check
 * them without reading the content (src/fhir/key-check.ts).
 */
export interface VersionStamp {
  /** The record's `lastUpdated` (the sealed resource's `meta.lastUpdated`). */
  lastUpdated: string;
  /** The record's `method` (`POST`, `PUT`, `PATCH`). */
  method: string;
}

/**
 * Label of a data key: which KEK wraps it, which version it encrypts and, for keys wrapped since the stamp was
 * bound, the version's `lastUpdated` and `method` (`dek <kek> <Type>/<id>/<version> <lastUpdated> <method>`). None
 * of the fields holds a space, so a stamped label never equals an unstamped one (`dek <kek> <Type>/<id>/<version>`),
 * which data keys wrapped before keep.
 */
export function dataKeyLabel(kekName: string, { resourceType, id, versionId }: VersionAddress, stamp?: VersionStamp): string {
  const label = `dek ${kekName} ${resourceType}/${id}/${versionId}`;
  return stamp ? `${label} ${stamp.lastUpdated} ${stamp.method}` : label;
}

/** Label of a key-encryption key wrapped by the master key. */
export function kekLabel(kekName: string): string {
  return `kek ${kekName}`;
}

/** base64url HMAC-SHA-256: a content hash that cannot be recomputed (or guessed) without the node's key. */
export function contentHash(key: SecretKey, bytes: Uint8Array): string {
  return createHmac('sha256', key).update(bytes).digest('base64url');
}
