/**
 * The sealed store: a resource version in, an encrypted IPFS block plus the key material the index keeps out.
 *
 * seal: fresh data key → AES-256-GCM under `type/id/version` → stage the block → wrap the data key with the KEK
 *       named in the input (created on first use; its ops join the commit) → HMAC of the plaintext for the ledger.
 * open: KEK (ERR_KEY_DESTROYED once erased) → block, verified against its CID → unwrap → decrypt with the same AAD.
 * The ops returned by seal (a new KEK, the block itself with Helia) must be written in the same batch as the index
 * entries that point at them.
 */
import { CID } from 'multiformats/cid';
import { errors } from '../errors.ts';
import { dataKeyLabel, newKey, openBlock, sealBlock, unwrapKey, wrapKey } from './envelope.ts';
import type { Keyring } from './keyring.ts';
import type { BlockStore, SealedStore } from './types.ts';

export interface SealedStoreOptions {
  blocks: BlockStore;
  keyring: Keyring;
}

function parseCid(cid: string): CID {
  try {
    return CID.parse(cid);
  } catch {
    throw errors.internal('The index holds a malformed CID', 'ERR_BLOCK_CORRUPT');
  }
}

export function createSealedStore({ blocks, keyring }: SealedStoreOptions): SealedStore {
  return {
    async seal(input) {
      const { resourceType, id, versionId, plaintext, kek: kekName } = input;
      const address = { resourceType, id, versionId };
      // The KEK first: a block is only sent to a remote node once its key can be kept.
      const kek = await keyring.kekForWrite(kekName);
      const dataKey = newKey();
      try {
        const staged = await blocks.stage(sealBlock(dataKey, plaintext, address));
        const wrapped = wrapKey(kek.key, dataKey, dataKeyLabel(kekName, address));
        return {
          sealed: {
            cid: staged.cid.toString(),
            kek: kekName,
            wrappedKey: Buffer.from(wrapped).toString('base64url'),
            hmac: keyring.contentHash(plaintext),
          },
          ops: [...kek.ops, ...staged.ops],
        };
      } finally {
        dataKey.fill(0);
      }
    },

    async open(address) {
      const kek = await keyring.kekForRead(address.kek);
      const block = await blocks.get(parseCid(address.cid));
      const dataKey = unwrapKey(kek, Buffer.from(address.wrappedKey, 'base64url'), dataKeyLabel(address.kek, address));
      try {
        return openBlock(dataKey, block, address);
      } finally {
        dataKey.fill(0);
      }
    },
  };
}
