/**
 * The sealed store: a resource version in, an encrypted IPFS block plus the key material the index keeps out.
 *
 * seal: fresh data key → AES-256-GCM under `type/id/version` → stage the block → wrap the data key with the KEK
 *       named in the input (created on first use; its ops join the commit) → HMAC of the plaintext for the ledger.
 * open: KEK (ERR_KEY_DESTROYED once erased) → block, verified against its CID → unwrap → decrypt with the same AAD,
 *       unless the decrypted version is still in the in-memory cache (keyed by CID, dropped on erasure). openMany
 *       does the same for many versions, fetching the blocks the cache does not hold together.
 * The ops returned by seal (a new KEK, the block itself with Helia) must be written in the same batch as the index
 * entries that point at them.
 */
import { CID } from 'multiformats/cid';
import { errors } from '../errors.ts';
import { dataKeyLabel, newKey, openBlock, sealBlock, unwrapKey, wrapKey } from './envelope.ts';
import type { Keyring } from './keyring.ts';
import { PlaintextCache } from './plaintext-cache.ts';
import type { BlockStore, SealedStore } from './types.ts';

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
function cacheKey(a: { resourceType: string; id: string; versionId: string; cid: string; kek: string; wrappedKey: string }): string {
  return `${a.resourceType}/${a.id}/${a.versionId} ${a.cid} ${a.kek} ${a.wrappedKey}`;
}

export function createSealedStore({ blocks, keyring, cacheBytes = 64 * 1024 * 1024 }: SealedStoreOptions): SealedStore {
  const cache = new PlaintextCache(cacheBytes);

  /** Unwraps the version's data key, decrypts its (verified) block and keeps the plaintext in the cache. */
  function decrypt(kek: Awaited<ReturnType<Keyring['kekForRead']>>, block: Uint8Array, address: Parameters<SealedStore['open']>[0]): Uint8Array {
    const dataKey = unwrapKey(kek, Buffer.from(address.wrappedKey, 'base64url'), dataKeyLabel(address.kek, address));
    try {
      const plaintext = openBlock(dataKey, block, address);
      cache.set(cacheKey(address), address.kek, plaintext);
      return plaintext;
    } finally {
      dataKey.fill(0);
    }
  }

  return {
    async seal(input) {
      const { resourceType, id, versionId, plaintext, kek: kekName } = input;
      const address = { resourceType, id, versionId };
      // The KEK first: a block is only sent to a remote node once its key can be kept.
      const kek = await keyring.kekForWrite(kekName, { fresh: input.freshKek === true });
      const dataKey = newKey();
      try {
        const staged = await blocks.stage(sealBlock(dataKey, plaintext, address));
        const wrapped = wrapKey(kek.key, dataKey, dataKeyLabel(kekName, address));
        // Recently written versions are the likeliest to be read next. If the commit fails the entry is harmless:
        // nothing in the index will ever ask for that address.
        const sealed = { cid: staged.cid.toString(), kek: kekName, wrappedKey: Buffer.from(wrapped).toString('base64url'), hmac: keyring.contentHash(plaintext) };
        cache.set(cacheKey({ ...address, ...sealed }), kekName, plaintext);
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
