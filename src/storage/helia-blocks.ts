/**
 * The embedded IPFS node: Helia (light: no libp2p, no bootstrap, no routers, no block brokers, so nothing is
 * announced or fetched over any network) over stores that live in the node's one LevelDB database.
 *
 * Blocks go to the `blocks` sublevel (base32 multihash → bytes), so `stage()` can hand back a batch op and a
 * block becomes durable in the same synced write as the index entries and the ledger entry that point at it.
 * Helia's own datastore (its version marker, pins, keychain) goes to the `ipfs-datastore` sublevel of the same
 * database rather than a second LevelDB under the data dir: one lock, one open/close, one backup unit.
 * The index is the pin set: this node never runs `helia.gc()` (it would delete every block, since none is pinned
 * in Helia's sense); erasure removes blocks one by one.
 */
import { createHeliaLight } from 'helia';
import type { Helia } from 'helia';
import { BaseBlockstore } from 'blockstore-core/base';
import { BaseDatastore } from 'datastore-core/base';
import { Key } from 'interface-datastore';
import type { Pair as DatastorePair } from 'interface-datastore';
import type { Pair as BlockPair } from 'interface-blockstore';
import { NotFoundError } from 'interface-store';
import { base32 } from 'multiformats/bases/base32';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import * as Digest from 'multiformats/hashes/digest';
import { blockNotFound, rawCid, verifyBlock } from './cid.ts';
import { bytesSublevel, SUBLEVELS } from './db.ts';
import type { BatchOp, Database, Sublevel } from './db.ts';
import type { BlockStore } from './types.ts';


type Bytes = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

async function concat(chunks: Bytes): Promise<Uint8Array> {
  if (chunks instanceof Uint8Array) return chunks;
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts));
}

/** Key of a block in the `blocks` sublevel: base32 multibase of its multihash (as blockstore-core does). */
export function blockKey(cid: CID): string {
  return base32.encode(cid.multihash.bytes);
}

/** interface-blockstore v7 over a LevelDB sublevel: `get` yields the block as one chunk. */
export class SublevelBlockstore extends BaseBlockstore {
  readonly store: Sublevel<Uint8Array>;

  constructor(store: Sublevel<Uint8Array>) {
    super();
    this.store = store;
  }

  override async put(cid: CID, bytes: Bytes): Promise<CID> {
    await this.store.put(blockKey(cid), await concat(bytes));
    return cid;
  }

  override async *get(cid: CID): AsyncGenerator<Uint8Array> {
    const bytes = await this.store.get(blockKey(cid));
    if (bytes === undefined) throw new NotFoundError(`${cid} not found`);
    yield bytes;
  }

  override async has(cid: CID): Promise<boolean> {
    return (await this.store.get(blockKey(cid))) !== undefined;
  }

  override async delete(cid: CID): Promise<void> {
    await this.store.del(blockKey(cid));
  }

  override async *getAll(): AsyncGenerator<BlockPair> {
    for await (const [key, bytes] of this.store.iterator()) {
      // Keyed by multihash alone, like blockstore-core: the codec is not known, raw is what this server writes.
      yield { cid: CID.createV1(raw.code, Digest.decode(base32.decode(key))), bytes: (async function* () { yield bytes; })() };
    }
  }
}

/** interface-datastore v10 over a LevelDB sublevel, for Helia's bookkeeping. */
export class SublevelDatastore extends BaseDatastore {
  readonly store: Sublevel<Uint8Array>;

  constructor(store: Sublevel<Uint8Array>) {
    super();
    this.store = store;
  }

  override async put(key: Key, value: Uint8Array): Promise<Key> {
    await this.store.put(key.toString(), value);
    return key;
  }

  override async get(key: Key): Promise<Uint8Array> {
    const value = await this.store.get(key.toString());
    if (value === undefined) throw new NotFoundError(`${key} not found`);
    return value;
  }

  override async has(key: Key): Promise<boolean> {
    return (await this.store.get(key.toString())) !== undefined;
  }

  override async delete(key: Key): Promise<void> {
    await this.store.del(key.toString());
  }

  override async *_all(query: { prefix?: string }): AsyncGenerator<DatastorePair> {
    for await (const [key, value] of this.store.iterator(query.prefix ? { gte: query.prefix, lt: `${query.prefix}\xff` } : {})) {
      yield { key: new Key(key), value };
    }
  }

  override async *_allKeys(query: { prefix?: string }): AsyncGenerator<Key> {
    for await (const key of this.store.keys(query.prefix ? { gte: query.prefix, lt: `${query.prefix}\xff` } : {})) {
      yield new Key(key);
    }
  }
}

export interface HeliaBlockStore extends BlockStore {
  readonly kind: 'helia';
  /** The running Helia node (for publishing checkpoints as blocks, or attaching networking later). */
  readonly helia: Helia;
}

export interface HeliaBlockStoreOptions {
  db: Database;
}

export async function createHeliaBlockStore({ db }: HeliaBlockStoreOptions): Promise<HeliaBlockStore> {
  const blocks = bytesSublevel(db, SUBLEVELS.blocks);
  const helia = createHeliaLight({
    blockstore: new SublevelBlockstore(blocks),
    datastore: new SublevelDatastore(bytesSublevel(db, SUBLEVELS.ipfsDatastore)),
  });
  await helia.start();

  /** A block as read from the sublevel: ERR_BLOCK_NOT_FOUND when absent, else verified against its CID. */
  const checked = (cid: CID, bytes: Uint8Array | undefined): Uint8Array => {
    if (bytes === undefined) throw blockNotFound(cid);
    return verifyBlock(cid, bytes);
  };

  return {
    kind: 'helia',
    helia,
    // In the node's own database: reachable whenever the database is open (which /readyz checks itself).
    reachable: async () => true,
    async cidOf(bytes) {
      return rawCid(bytes);
    },
    async stage(bytes) {
      const cid = rawCid(bytes);
      const op: BatchOp = { type: 'put', sublevel: blocks, key: blockKey(cid), value: bytes };
      return { cid, ops: [op] };
    },
    async get(cid) {
      // Helia serves blocks from this very sublevel. Reading it directly (a synchronous LevelDB get: blocks are
      // small and hot) skips Helia's session layer, which costs a has() and a get() per block on the read path.
      // It is offline by construction: a block that is not here is never looked up on a network.
      return checked(cid, blocks.getSync(blockKey(cid)));
    },
    async getMany(cids) {
      // Asynchronous gets, all in flight at once: LevelDB serves them side by side on the libuv pool's threads,
      // where get() above reads one block after another on the main thread. In a large store most of a page's
      // blocks are cold (their table has to be opened and its block read), and those reads are a page's cost.
      const found = await Promise.all(cids.map((cid) => blocks.get(blockKey(cid))));
      return found.map((bytes, i) => checked(cids[i]!, bytes));
    },
    async has(cid) {
      return helia.blockstore.has(cid);
    },
    async remove(cid) {
      await helia.blockstore.delete(cid);
    },
    async close() {
      await helia.stop();
    },
  };
}
