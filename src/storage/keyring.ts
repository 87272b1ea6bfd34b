/**
 * The key hierarchy: master key → key-encryption keys (one per patient, one for the node) → data keys.
 *
 * The master key lives behind the KeyStore interface, so a KMS can replace the key file: everything above it only
 * asks the key store to wrap, unwrap and derive. KEKs are random and stored wrapped in the `kek` sublevel, the node
 * KEK included (under `node`): rotating the master key, or moving it into a KMS, then re-wraps a handful of KEK
 * records instead of every data key of every node-level resource, which a KEK derived from the master key would force.
 * The content-hash HMAC key is derived (HKDF): it never needs to change independently of the master key.
 */
import { createCipheriv, createDecipheriv, hkdf, randomBytes, scrypt, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { LRUCache } from 'lru-cache';
import { errors, FhirError } from '../errors.ts';
import { bytesSublevel, SUBLEVELS } from './db.ts';
import type { BatchOp, Database, Sublevel } from './db.ts';
import { contentHash, decryptError, KEY_BYTES, kekLabel, newKey, secretKey, unwrapKey, wrapKey } from './envelope.ts';
import { makeDirectory } from './make-dir.ts';

const hkdfAsync = promisify(hkdf);
const scryptAsync = promisify(scrypt) as (pass: string, salt: Uint8Array, len: number, opts: object) => Promise<Buffer>;

/** Holds the master key. The key file is one implementation; a KMS client is another. */
export interface KeyStore {
  /** Wraps a key-encryption key; `label` names it and must be given again to unwrap. */
  wrap(key: Uint8Array, label: string): Promise<Uint8Array>;
  /** Throws ERR_DECRYPT when the wrapped key or its label was tampered with. */
  unwrap(wrapped: Uint8Array, label: string): Promise<Uint8Array>;
  /** A 32-byte subkey for one purpose, stable for the life of the master key. */
  deriveKey(purpose: string): Promise<Uint8Array>;
}

/** HKDF-SHA-256 subkey of a master key held in memory (the key file's implementation of `deriveKey`). */
export async function deriveSubkey(master: Uint8Array, purpose: string): Promise<Uint8Array> {
  return new Uint8Array(await hkdfAsync('sha256', master, new Uint8Array(0), `sealed-fhir ${purpose} v1`, KEY_BYTES));
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** ~0.5 s once per start on a 2-core machine; OWASP's floor for scrypt is N=2^17, r=8, p=1. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

export interface KeyFileOptions {
  dataDir: string;
  /** MASTER_KEY_PASSPHRASE; undefined in development, where one is generated and kept beside the key file. */
  passphrase: string | undefined;
  /** Where loud warnings go (the logger's warn). */
  warn: (message: string) => void;
  /** KDF cost of a key file created now; an existing file names its own. */
  scrypt?: ScryptParams;
  /**
   * Open an existing key file only (the offline verifier): nothing is created or written, and a missing file or
   * passphrase is an error rather than a new key.
   */
  existingOnly?: boolean;
}

interface KeyFileJson {
  format: 'sealed-fhir master key';
  version: 1;
  kdf: { name: 'scrypt' } & ScryptParams;
  salt: string;
  nonce: string;
  /** The 32-byte master key encrypted with AES-256-GCM, tag appended. */
  ciphertext: string;
}

const KEY_FILE_AAD = Buffer.from('sealed-fhir master key v1');

function keyFileError(message: string, code = 'ERR_MASTER_KEY'): FhirError {
  return errors.internal(message, code);
}

/** Creates `file` with `data` only if it does not exist (0600, fsynced, atomic): false when another process won. */
async function createExclusive(file: string, data: string): Promise<boolean> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.unlink(tmp);
  }
  const dir = await fs.open(path.dirname(file), 'r');
  await dir.sync().finally(() => dir.close());
  return true;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function developmentPassphrase(keysDir: string, keyFileExists: boolean, warn: (m: string) => void): Promise<string> {
  const file = path.join(keysDir, 'master.passphrase');
  let passphrase = await readIfExists(file);
  if (passphrase === undefined) {
    if (keyFileExists) {
      throw keyFileError(`${path.join(keysDir, 'master.key')} exists but MASTER_KEY_PASSPHRASE is not set (and there is no development passphrase file)`);
    }
    await createExclusive(file, `${randomBytes(32).toString('base64url')}\n`);
    passphrase = await fs.readFile(file, 'utf8');
  }
  warn(
    `!!! WARNING: MASTER_KEY_PASSPHRASE is not set. DEVELOPMENT MODE: the master key passphrase is stored in plain text ` +
      `in ${file}, next to the key it protects. Anyone who can read the data directory can decrypt every record. ` +
      `Set MASTER_KEY_PASSPHRASE (and delete that file) before storing real patient data. !!!`,
  );
  return passphrase.trim();
}

/** The file names its own KDF cost; bounded, so a tampered file cannot ask for gigabytes or hours. */
function kdfParams(kdf: unknown): ScryptParams {
  const { name, N, r, p } = (kdf ?? {}) as { name?: unknown; N?: number; r?: number; p?: number };
  const int = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
  if (name !== 'scrypt' || !int(N, 2 ** 10, 2 ** 22) || (N & (N - 1)) !== 0 || !int(r, 1, 32) || !int(p, 1, 16) || 128 * N * r > 2 ** 30) {
    throw keyFileError('The master key file names unsupported KDF parameters');
  }
  return { N, r, p };
}

async function kdf(passphrase: string, salt: Uint8Array, { N, r, p }: ScryptParams): Promise<Buffer> {
  return scryptAsync(passphrase, salt, KEY_BYTES, { N, r, p, maxmem: 256 * N * r + (1 << 20) });
}

async function createKeyFile(file: string, passphrase: string, params: ScryptParams): Promise<void> {
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await kdf(passphrase, salt, params), nonce).setAAD(KEY_FILE_AAD);
  const ciphertext = Buffer.concat([cipher.update(randomBytes(KEY_BYTES)), cipher.final(), cipher.getAuthTag()]);
  const json: KeyFileJson = {
    format: 'sealed-fhir master key',
    version: 1,
    kdf: { name: 'scrypt', ...params },
    salt: salt.toString('base64url'),
    nonce: nonce.toString('base64url'),
    ciphertext: ciphertext.toString('base64url'),
  };
  await createExclusive(file, `${JSON.stringify(json, null, 2)}\n`);
}

async function readKeyFile(file: string, passphrase: string): Promise<Uint8Array> {
  let json: KeyFileJson;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8')) as KeyFileJson;
  } catch {
    throw keyFileError(`The master key file ${file} is not readable JSON`);
  }
  if (json.format !== 'sealed-fhir master key' || json.version !== 1) throw keyFileError(`${file} is not a version 1 master key file`);
  const sealed = Buffer.from(String(json.ciphertext), 'base64url');
  try {
    const key = await kdf(passphrase, Buffer.from(String(json.salt), 'base64url'), kdfParams(json.kdf));
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(String(json.nonce), 'base64url')).setAAD(KEY_FILE_AAD);
    decipher.setAuthTag(sealed.subarray(KEY_BYTES));
    return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(0, KEY_BYTES)), decipher.final()]));
  } catch (err) {
    if (err instanceof FhirError) throw err;
    throw keyFileError(`Cannot decrypt the master key file ${file}: wrong MASTER_KEY_PASSPHRASE (or a damaged key file)`, 'ERR_MASTER_KEY_PASSPHRASE');
  }
}

/** Opens (creating on first start) `<dataDir>/keys/master.key`: the KeyStore of a node without a KMS. */
export async function openKeyFile({ dataDir, passphrase, warn, scrypt: params = DEFAULT_SCRYPT, existingOnly = false }: KeyFileOptions): Promise<KeyStore> {
  const keysDir = path.join(dataDir, 'keys');
  const file = path.join(keysDir, 'master.key');
  if (existingOnly) {
    if ((await readIfExists(file)) === undefined) throw keyFileError(`There is no master key file ${file}`);
    if (passphrase === undefined) throw keyFileError('MASTER_KEY_PASSPHRASE is not set', 'ERR_MASTER_KEY_PASSPHRASE');
  }
  await makeDirectory(keysDir, 0o700);
  const exists = (await readIfExists(file)) !== undefined;
  const secret = passphrase ?? (await developmentPassphrase(keysDir, exists, warn));
  if (!exists) await createKeyFile(file, secret, params);
  if (((await fs.stat(file)).mode & 0o077) !== 0) warn(`${file} is readable by other users: chmod 600 it`);
  const masterBytes = await readKeyFile(file, secret);
  const master = secretKey(masterBytes);
  return {
    wrap: async (key, label) => wrapKey(master, key, label),
    unwrap: async (wrapped, label) => unwrapKey(master, wrapped, label),
    deriveKey: (purpose) => deriveSubkey(masterBytes, purpose),
  };
}

export interface Keyring {
  /** base64url HMAC-SHA-256 of bytes under the node's content-hash key (what the ledger records). */
  contentHash(bytes: Uint8Array): string;
  /**
   * The KEK `patient/<id>` or `node` for sealing a new version. A KEK that does not exist yet is created here and
   * returned with the ops that store it: they must go into the same batch as the first commit that uses it, so a key
   * never exists without data, nor data without its key. Until that commit lands every caller gets the same key.
   */
  kekForWrite(name: string, options?: KekForWriteOptions): Promise<{ key: KeyObject; ops: BatchOp[] }>;
  /** The KEK of stored data. Throws ERR_KEY_DESTROYED (410) once the patient was erased. */
  kekForRead(name: string): Promise<KeyObject>;
  /** Crypto-shredding: deletes the patient's wrapped KEK (synced) and forgets it, so all versions under it are unreadable. */
  destroyPatientKey(patientId: string): Promise<void>;
}

export interface KekForWriteOptions {
  /**
   * The caller knows no such KEK can be stored: the patient's id was just generated (a random UUID) for the
   * resource being sealed. The database lookup, a certain miss, is skipped; a KEK already created in this process
   * (cached or pending) is still shared.
   */
  fresh?: boolean;
}

export interface KeyringOptions {
  db: Database;
  keyStore: KeyStore;
  /** Unwrapped KEKs kept in memory (least recently used are dropped). */
  cacheSize?: number;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** Pending (uncommitted) KEKs above this many trigger a sweep that confirms the committed ones. */
const PENDING_SWEEP = 1024;

export function patientKekName(patientId: string): string {
  return `patient/${patientId}`;
}

/** `node` or `patient/<FHIR id>`: the names a KEK can have. */
export function isKekName(name: string): boolean {
  return name === 'node' || (name.startsWith('patient/') && FHIR_ID.test(name.slice('patient/'.length)));
}

/**
 * A stored KEK unwrapped under the master key, or undefined when its record fails authentication (altered or
 * damaged); a key store that cannot answer throws. The keyring and the start-up key check read KEKs through it.
 */
export async function unwrapStoredKek(keyStore: KeyStore, name: string, wrapped: Uint8Array): Promise<KeyObject | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await keyStore.unwrap(wrapped, kekLabel(name));
  } catch (err) {
    if (err instanceof FhirError && err.code === 'ERR_DECRYPT') return undefined;
    throw err;
  }
  const key = secretKey(bytes);
  bytes.fill(0);
  return key;
}

function assertKekName(name: string): void {
  if (!isKekName(name)) throw errors.internal(`Not a key-encryption key name: ${JSON.stringify(name)}`, 'ERR_KEK_NAME');
}

export function keyDestroyed(): FhirError {
  return errors.gone('The key protecting this data was destroyed (patient erased)', 'ERR_KEY_DESTROYED');
}

interface Pending {
  key: KeyObject;
  wrapped: Uint8Array;
}

export async function openKeyring({ db, keyStore, cacheSize = 10_000 }: KeyringOptions): Promise<Keyring> {
  const hashKey = secretKey(await keyStore.deriveKey('content-hash'));
  const store: Sublevel<Uint8Array> = bytesSublevel(db, SUBLEVELS.kek);
  // lru-cache, not a Map re-inserted on each use: V8 makes that O(size) per call, and the node KEK is used by
  // every request on a resource outside a patient compartment.
  const cache = new LRUCache<string, KeyObject>({ max: Math.max(1, cacheSize) });
  // KEKs created but not yet seen in the database: every writer gets the same one until a commit carries it.
  const pending = new Map<string, Promise<Pending>>();
  // Bumped when a pending KEK is found committed (a writer that read the database before must read again) and on
  // destruction (a reader that started before must not put the key back into the cache).
  let confirmations = 0;
  let destructions = 0;

  /** Reads and unwraps a stored KEK; undefined when there is none. */
  async function load(name: string): Promise<KeyObject | undefined> {
    const epoch = destructions;
    const wrapped = await store.get(name);
    if (wrapped === undefined) return undefined;
    const key = await unwrapStoredKek(keyStore, name, wrapped);
    // Still the opaque 500 for the caller; the log learns which KEK (every version under it is unreadable).
    if (!key) throw decryptError(new Error(`KEK ${name} does not unwrap under the master key (its kek record was altered or damaged)`));
    if (epoch === destructions) {
      cache.set(name, key);
      if (pending.delete(name)) confirmations++;
    }
    return key;
  }

  /**
   * Confirms pending KEKs that are committed by now (moves them to the cache), so `pending` stays small. One
   * batched read; a stored key equal to the pending one needs no unwrapping (it is the key in hand).
   */
  let sweeping = false;
  async function sweepPending(): Promise<void> {
    if (sweeping) return;
    sweeping = true;
    try {
      const epoch = destructions;
      const names = [...pending.keys()].slice(0, PENDING_SWEEP);
      const stored = await store.getMany(names);
      for (const [i, name] of names.entries()) {
        const wrapped = stored[i];
        const mine = pending.get(name);
        if (wrapped === undefined || mine === undefined) continue;
        const { key, wrapped: expected } = await mine;
        if (epoch !== destructions || pending.get(name) !== mine) continue;
        if (Buffer.from(wrapped).equals(Buffer.from(expected))) {
          cache.set(name, key);
          pending.delete(name);
          confirmations++;
        } else await load(name);
      }
    } catch {
      // a failed read only leaves the entries pending, as they were
    } finally {
      sweeping = false;
    }
  }

  async function kekForWrite(name: string, options: KekForWriteOptions = {}): Promise<{ key: KeyObject; ops: BatchOp[] }> {
    assertKekName(name);
    const fresh = options.fresh === true && name !== 'node';
    for (;;) {
      const hit = cache.get(name);
      if (hit) return { key: hit, ops: [] };
      // A KEK created earlier and not yet seen committed: share it without reading the database again (a transaction
      // writes hundreds of resources of one new patient). Its put travels with every such write; re-putting the same
      // wrapped bytes is harmless. Entries are confirmed (moved to the cache) by load(), swept now and then.
      const early = pending.get(name);
      if (early) {
        const { key, wrapped } = await early;
        return { key, ops: [{ type: 'put', sublevel: store, key: name, value: wrapped }] };
      }
      if (!fresh) {
        const seen = confirmations;
        const stored = await load(name);
        if (stored) return { key: stored, ops: [] };
        // A KEK confirmed while we read may be this one, and no longer pending: read again rather than create a second.
        if (seen !== confirmations) continue;
      }
      let created = pending.get(name);
      if (!created) {
        // Set before any await, so concurrent writers of the same new patient share this one key.
        created = (async () => {
          const bytes = newKey();
          const wrapped = await keyStore.wrap(bytes, kekLabel(name));
          const key = secretKey(bytes);
          bytes.fill(0);
          return { key, wrapped };
        })();
        pending.set(name, created);
        if (pending.size > PENDING_SWEEP) void sweepPending();
        const mine = created;
        mine.catch(() => pending.get(name) === mine && pending.delete(name));
      }
      const { key, wrapped } = await created;
      return { key, ops: [{ type: 'put', sublevel: store, key: name, value: wrapped }] };
    }
  }

  async function kekForRead(name: string): Promise<KeyObject> {
    assertKekName(name);
    const key = cache.get(name) ?? (await load(name));
    if (!key) throw keyDestroyed();
    return key;
  }

  async function destroyPatientKey(patientId: string): Promise<void> {
    const name = patientKekName(patientId);
    assertKekName(name);
    destructions++;
    cache.delete(name);
    pending.delete(name);
    await db.batch([{ type: 'del', sublevel: store, key: name }], { sync: true });
  }

  return {
    contentHash: (bytes) => contentHash(hashKey, bytes),
    kekForWrite,
    kekForRead,
    destroyPatientKey,
  };
}
