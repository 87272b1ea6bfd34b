/**
 * The sealed store: a resource version in, an encrypted IPFS block plus the key material the index keeps out.
 *
 * seal: fresh data key → AES-256-GCM under `type/id/version` → stage the block → wrap the data key with the KEK
 *       named in the input (created on first use; its ops join the commit), its label stamped with the version's
 *       lastUpdated and method → HMAC of the plaintext for the ledger.
 * open: KEK (ERR_KEY_DESTROYED once erased) → block, verified against its CID → unwrap (stamped label, else the
 *       unstamped label of keys wrapped before stamps) → decrypt with the same AAD, unless the decrypted version is
 *       still in the in-memory cache (keyed by the whole address, dropped on erasure). openMany does the same for
 *       many versions, fetching the blocks the cache does not hold together.
 * A failure is the one opaque ERR_DECRYPT (500) to the caller; its cause, which only the log sees, names the version
 * and the step that failed, never key material.
 * The ops returned by seal (a new KEK, the block itself with Helia) must be written in the same batch as the index
 * entries that point at them.
 */
import type { KeyObject } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { errors, FhirError } from '../errors.ts';
import { dataKeyLabel, decryptError, newKey, openBlock, sealBlock, tryUnwrapKey, wrapKey, type VersionStamp } from './envelope.ts';
import type { Keyring } from './keyring.ts';
import { PlaintextCache } from './plaintext-cache.ts';
import type { BlockStore, SealedAddress, SealedStore } from './types.ts';

export interface SealedStoreOptions {
  blocks: BlockStore;
  keyring: Keyring;
  /** Bytes of decrypted versions kept in memory (0 turns the cache off). */
  cacheBytes?: number;
}

function parseCid(cid: string): CID {
  try {
    return CID.parse(cid);
  } catch {
    throw errors.internal('The index holds a malformed CID', 'ERR_BLOCK_CORRUPT');
  }
}

/**
 * The whole address, not just the CID: a hit must be exactly what decrypting this record would give, so a record
 * pointing at another version's block or wrapped key still fails as it would without the cache.
 */
function cacheKey(a: SealedAddress): string {
  return `${a.resourceType}/${a.id}/${a.versionId} ${a.cid} ${a.kek} ${a.wrappedKey} ${a.lastUpdated} ${a.method}`;
}

/** What unwrapping a data key reads of a version's address: its label's parts and the wrapped bytes. */
export type DataKeyAddress = Pick<SealedAddress, 'resourceType' | 'id' | 'versionId' | 'kek' | 'wrappedKey' | 'lastUpdated' | 'method'>;

/**
 * The data key of a stored version: unwrapped under its stamped label, or under the unstamped one that keys wrapped
 * before stamps were bound carry. Undefined when neither opens it (the wrapped key, the KEK name, the address or the
 * stamp was altered). Used by reads and by the start-up key check alike.
 */
export function unwrapDataKey(kek: KeyObject, address: DataKeyAddress): { key: Uint8Array; stamped: boolean } | undefined {
  const wrapped = Buffer.from(address.wrappedKey, 'base64url');
  const stamp: VersionStamp = { lastUpdated: address.lastUpdated, method: address.method };
  for (const stamped of [true, false]) {
    const key = tryUnwrapKey(kek, wrapped, dataKeyLabel(address.kek, address, stamped ? stamp : undefined));
    if (key) return { key, stamped };
  }
  return undefined;
}

/** ERR_DECRYPT for the caller; the cause (logged, never answered) says which version and which step. */
function failure(address: SealedAddress, step: string): FhirError {
  return decryptError(new Error(`${address.resourceType}/${address.id}/_history/${address.versionId}: ${step}`));
}

export function createSealedStore({ blocks, keyring, cacheBytes = 64 * 1024 * 1024 }: SealedStoreOptions): SealedStore {
  const cache = new PlaintextCache(cacheBytes);

  /** Unwraps the version's data key, decrypts its (verified) block and keeps the plaintext in the cache. */
  function decrypt(kek: KeyObject, block: Uint8Array, address: SealedAddress): Uint8Array {
    const unwrapped = unwrapDataKey(kek, address);
    if (!unwrapped) throw failure(address, `its wrapped data key does not unwrap under KEK ${address.kek} (the record's wrappedKey, kek, lastUpdated or method was altered)`);
    const dataKey = unwrapped.key;
    try {
      const plaintext = openBlock(dataKey, block, address);
      cache.set(cacheKey(address), address.kek, plaintext);
      return plaintext;
    } catch (err) {
      throw err instanceof FhirError && err.code === 'ERR_DECRYPT' ? failure(address, 'its block does not decrypt under its data key') : err;
    } finally {
      dataKey.fill(0);
    }
  }

  return {
    async seal(input) {
      const { resourceType, id, versionId, plaintext, kek: kekName, lastUpdated, method } = input;
      const address = { resourceType, id, versionId };
      // The KEK first: a block is only sent to a remote node once its key can be kept.
      const kek = await keyring.kekForWrite(kekName, { fresh: input.freshKek === true });
      const dataKey = newKey();
      try {
        const staged = await blocks.stage(sealBlock(dataKey, plaintext, address));
        const wrapped = wrapKey(kek.key, dataKey, dataKeyLabel(kekName, address, { lastUpdated, method }));
        // Recently written versions are the likeliest to be read next. If the commit fails the entry is harmless:
        // nothing in the index will ever ask for that address.
        const sealed = { cid: staged.cid.toString(), kek: kekName, wrappedKey: Buffer.from(wrapped).toString('base64url'), hmac: keyring.contentHash(plaintext) };
        cache.set(cacheKey({ ...address, ...sealed, lastUpdated, method }), kekName, plaintext);
        return {
          sealed,
          ops: [...kek.ops, ...staged.ops],
        };
      } finally {
        dataKey.fill(0);
      }
    },

    async open(address) {
      // The KEK is asked for even on a cache hit: that is where an erased patient's data stops being readable.
      const kek = await keyring.kekForRead(address.kek);
      const cached = cache.get(cacheKey(address));
      if (cached) return cached;
      return decrypt(kek, await blocks.get(parseCid(address.cid)), address);
    },

    async openMany(addresses) {
      // One KEK lookup per name, as the KEK is asked for even on a cache hit: a page's versions mostly share one
      // patient's KEK, and concurrent lookups of a KEK not yet cached would each read and unwrap it.
      const names = [...new Set(addresses.map((a) => a.kek))];
      const keys = await Promise.all(names.map((name) => keyring.kekForRead(name)));
      const keks = new Map(names.map((name, i) => [name, keys[i]!]));
      const out: Uint8Array[] = new Array(addresses.length);
      const misses: number[] = [];
      addresses.forEach((address, i) => {
        const cached = cache.get(cacheKey(address));
        if (cached) out[i] = cached;
        else misses.push(i);
      });
      if (misses.length === 0) return out;
      const found = await blocks.getMany(misses.map((i) => parseCid(addresses[i]!.cid)));
      misses.forEach((i, j) => (out[i] = decrypt(keks.get(addresses[i]!.kek)!, found[j]!, addresses[i]!)));
      return out;
    },

    forget(kek) {
      cache.forget(kek);
    },
  };
}
