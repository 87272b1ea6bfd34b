/**
 * Blocks on a Kubo node, through its RPC API (kubo-rpc-client). Selected by IPFS_API_URL.
 *
 * `stage()` puts and pins the block on the node right away (Kubo's flatfs syncs each block by default), so the block
 * is durable there before the index batch that points at it is written; it returns no ops. Pinned is what "stored"
 * means here: an unpinned block may be garbage-collected by the node at any time, so `has()` asks the pin set.
 * Requests carry `offline=true`, so the node answers from its own repo and never searches the network for a block.
 */
import http from 'node:http';
import https from 'node:https';
import { create } from 'kubo-rpc-client';
import type { KuboRPCClient } from 'kubo-rpc-client';
import type { CID } from 'multiformats/cid';
import { errors, networkFailure } from '../errors.ts';
import { blockNotFound, rawCid, verifyBlock } from './cid.ts';
import type { BlockStore } from './types.ts';

export interface KuboBlockStoreOptions {
  /** Base URL of the RPC API, e.g. http://127.0.0.1:5001 */
  url: string;
  /** Per-request time limit in milliseconds (a node that ignores `offline` would otherwise wait for the network). */
  timeoutMs?: number;
}

export interface KuboBlockStore extends BlockStore {
  readonly kind: 'kubo';
}

const NOT_PINNED = /is not pinned/i;
/** Block requests in flight at once in getMany (the agent's socket limit). */
const KUBO_CONCURRENT_GETS = 16;

export async function createKuboBlockStore({ url, timeoutMs = 30_000 }: KuboBlockStoreOptions): Promise<KuboBlockStore> {
  // Our own keep-alive agent, so close() can release its sockets (the client's default one is never closed).
  const agent = new (url.startsWith('https:') ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 16 });
  const client: KuboRPCClient = create({ url, agent });
  const local = () => ({ timeout: timeoutMs, searchParams: new URLSearchParams({ offline: 'true' }) });
  const unavailable = (what: string, err: unknown) =>
    errors.unavailable(`IPFS node at ${url}: ${what} failed (${(err as Error).message})`, 'ERR_IPFS_UNAVAILABLE', err);

  try {
    await client.version({ timeout: Math.min(timeoutMs, 10_000) });
  } catch (err) {
    agent.destroy();
    throw errors.unavailable(`IPFS node at ${url} is not reachable: ${networkFailure(err)}`, 'ERR_IPFS_UNREACHABLE', err);
  }

  async function has(cid: CID): Promise<boolean> {
    try {
      for await (const pin of client.pin.ls({ paths: cid, type: 'recursive', ...local() })) {
        if (pin.cid.equals(cid)) return true;
      }
      return false;
    } catch (err) {
      if (NOT_PINNED.test((err as Error).message)) return false;
      throw unavailable('pin ls', err);
    }
  }

  async function get(cid: CID): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await client.block.get(cid, local());
    } catch (err) {
      // Kubo's wording for a missing block differs between versions: the pin set decides instead.
      if (!(await has(cid))) throw blockNotFound(cid);
      throw unavailable('block get', err);
    }
    return verifyBlock(cid, bytes);
  }

  return {
    kind: 'kubo',
    async cidOf(bytes) {
      return rawCid(bytes);
    },
    async stage(bytes) {
      const cid = rawCid(bytes);
      let stored: CID;
      try {
        stored = await client.block.put(bytes, { format: 'raw', mhtype: 'sha2-256', pin: true, timeout: timeoutMs });
      } catch (err) {
        throw unavailable('block put', err);
      }
      if (!stored.equals(cid)) {
        throw errors.internal(`IPFS node at ${url} stored a block as ${stored}, expected ${cid}`, 'ERR_BLOCK_CORRUPT');
      }
      return { cid, ops: [] };
    },
    get,
    async getMany(cids) {
      const out: Uint8Array[] = [];
      // A few requests at a time: a page of a thousand resources must not open a thousand connections.
      for (let i = 0; i < cids.length; i += KUBO_CONCURRENT_GETS) out.push(...(await Promise.all(cids.slice(i, i + KUBO_CONCURRENT_GETS).map((cid) => get(cid)))));
      return out;
    },
    has,
    async reachable() {
      try {
        await client.version({ timeout: Math.min(timeoutMs, 2_000) });
        return true;
      } catch {
        return false;
      }
    },
    async remove(cid) {
      try {
        await client.pin.rm(cid, { timeout: timeoutMs });
      } catch (err) {
        if (!NOT_PINNED.test((err as Error).message)) throw unavailable('pin rm', err);
      }
      try {
        for await (const result of client.block.rm(cid, { force: true, timeout: timeoutMs })) {
          if (result.error) throw result.error;
        }
      } catch (err) {
        throw unavailable('block rm', err);
      }
    },
    async close() {
      agent.destroy();
    },
  };
}
