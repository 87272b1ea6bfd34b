/**
 * The Kubo adapter against a real implementation of Kubo's RPC API: js-ipfs (ipfs-core + ipfs-http-server) started
 * in-process on loopback with no bootstrap, no MDNS and no preload, and against the node at IPFS_API_URL when set.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create as createIpfs } from 'ipfs-core';
import { HttpApi } from 'ipfs-http-server';
import { createKuboBlockStore } from '../../src/storage/kubo-blocks.ts';
import { closedPort } from '../helpers/net.ts';
import type { BlockStore } from '../../src/storage/types.ts';
import { blockStoreContract, type BlockStoreHarness } from './fixtures/block-store-contract.ts';

async function startJsIpfs(t: Test): Promise<string> {
  return (await startStoppableJsIpfs(t)).url;
}

/** A js-ipfs node and its RPC API; `stop` (also run at teardown, once) takes both down. */
async function startStoppableJsIpfs(t: Test): Promise<{ url: string; stop(): Promise<void> }> {
  const repo = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-js-ipfs-'));
  const ipfs = await createIpfs({
    repo,
    silent: true,
    preload: { enabled: false },
    config: {
      Bootstrap: [],
      Addresses: { Swarm: ['/ip4/127.0.0.1/tcp/0'], API: '/ip4/127.0.0.1/tcp/0', Gateway: [], Announce: [], NoAnnounce: [], Delegates: [] },
      Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
    },
  });
  const api = new HttpApi(ipfs);
  await api.start();
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await api.stop();
      await ipfs.stop();
      await fs.rm(repo, { recursive: true, force: true });
    })());
  t.teardown(stop);
  return { url: `http://127.0.0.1:${api.apiAddr.nodeAddress().port}`, stop };
}

function harnessFor(url: string, timeoutMs: number) {
  return async (t: Test): Promise<BlockStoreHarness> => {
    let store: BlockStore = await createKuboBlockStore({ url, timeoutMs });
    t.teardown(() => store.close());
    return {
      get store() {
        return store;
      },
      // Kubo stores and pins at stage(); there is nothing left to commit.
      commit: async (ops) => {
        t.same(ops, [], 'stage returns no ops');
      },
      async reopen() {
        await store.close();
        store = await createKuboBlockStore({ url, timeoutMs });
        return store;
      },
    };
  };
}

t.test('js-ipfs Kubo RPC API, in-process', async (t) => {
  const url = await startJsIpfs(t);
  // js-ipfs ignores `offline` and waits for the network on a missing block: a limit keeps that case short, but
  // not so short that ordinary calls time out on a loaded machine (300 ms did, for pin ls after a block rm).
  await blockStoreContract(t, 'Kubo RPC (js-ipfs)', harnessFor(url, 3_000));
});

t.test('a Kubo node that goes away is unreachable (what /readyz reports)', async (t) => {
  const node = await startStoppableJsIpfs(t);
  const store = await createKuboBlockStore({ url: node.url, timeoutMs: 3_000 });
  t.teardown(() => store.close());
  t.equal(await store.reachable(), true);
  await node.stop();
  t.equal(await store.reachable(), false, 'its RPC API no longer answers');
});

t.test('Kubo node at IPFS_API_URL', { skip: process.env.IPFS_API_URL ? false : 'IPFS_API_URL is not set' }, async (t) => {
  await blockStoreContract(t, `Kubo RPC (${process.env.IPFS_API_URL})`, harnessFor(process.env.IPFS_API_URL!, 10_000));
});

t.test('an unreachable node is a clear error at creation', async (t) => {
  await t.rejects(createKuboBlockStore({ url: 'http://127.0.0.1:9', timeoutMs: 2_000 }), {
    code: 'ERR_IPFS_UNREACHABLE',
    status: 503,
    message: /127\.0\.0\.1:9 is not reachable/,
  });
  // A closed port: the message carries the cause, not fetch's bare "fetch failed".
  const closed = await closedPort();
  await t.rejects(createKuboBlockStore({ url: `http://127.0.0.1:${closed}`, timeoutMs: 2_000 }), { code: 'ERR_IPFS_UNREACHABLE', message: /is not reachable: ECONNREFUSED$/ });
});
