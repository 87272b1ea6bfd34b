import t, { type Test } from 'tap';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bytesSublevel, openDatabase, SUBLEVELS, type Database } from '../../src/storage/db.ts';
import { blockKey, createHeliaBlockStore } from '../../src/storage/helia-blocks.ts';
import type { BlockStore } from '../../src/storage/types.ts';
import { blockStoreContract, type BlockStoreHarness } from './fixtures/block-store-contract.ts';

async function openHelia(t: Test): Promise<BlockStoreHarness & { db(): Database }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-helia-'));
  let db = await openDatabase(path.join(dir, 'db'));
  let store: BlockStore = await createHeliaBlockStore({ db });
  t.teardown(async () => {
    await store.close();
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return {
    get store() {
      return store;
    },
    db: () => db,
    commit: (ops) => db.batch(ops, { sync: true }),
    corrupt: (cid, bytes) => bytesSublevel(db, SUBLEVELS.blocks).put(blockKey(cid), bytes),
    async reopen() {
      await store.close();
      await db.close();
      db = await openDatabase(path.join(dir, 'db'));
      store = await createHeliaBlockStore({ db });
      return store;
    },
  };
}

blockStoreContract(t, 'Helia (embedded, blocks in the shared LevelDB)', openHelia);

t.test('blocks are keyed by base32 multihash in the blocks sublevel; Helia keeps its datastore beside them', async (t) => {
  const harness = await openHelia(t);
  const { cid, ops } = await harness.store.stage(new TextEncoder().encode('hello'));
  t.equal(ops.length, 1, 'one put op, nothing written before the commit');
  t.equal(await harness.store.has(cid), false);
  await harness.commit(ops);
  t.equal(cid.toString(), 'bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq');
  const stored = await bytesSublevel(harness.db(), SUBLEVELS.blocks).get(blockKey(cid));
  t.equal(new TextDecoder().decode(stored), 'hello');
  t.match(blockKey(cid), /^bciqc/, 'base32 multibase of the sha2-256 multihash');
  const version = await bytesSublevel(harness.db(), SUBLEVELS.ipfsDatastore).get('/version');
  t.equal(new TextDecoder().decode(version), '1', "Helia's datastore marker is persisted in its sublevel");
});

t.test('Helia reads through its own blockstore', async (t) => {
  const harness = await openHelia(t);
  const { cid, ops } = await harness.store.stage(new Uint8Array([1, 2, 3]));
  await harness.commit(ops);
  const helia = (harness.store as Awaited<ReturnType<typeof createHeliaBlockStore>>).helia;
  const chunks: Uint8Array[] = [];
  for await (const chunk of helia.blockstore.get(cid, { offline: true })) chunks.push(chunk);
  t.same(Buffer.concat(chunks), Buffer.from([1, 2, 3]));
  const all = [];
  for await (const pair of helia.blockstore.getAll()) all.push(pair.cid.toString());
  t.same(all, [cid.toString()], 'getAll lists what the sublevel holds');
});
