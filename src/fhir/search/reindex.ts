/**
 * Rebuilds the whole search index from the stored versions: clears the index sublevels (and the former
 * one-key-per-entry `resource-value`), then decrypts every current (non-deleted) version and writes its entries,
 * in batches. The index is derived data (docs/storage.md), so this must give exactly the index that writing the
 * versions one by one gave (tested). Run it with the server stopped: LevelDB admits one process. It reads every
 * resource, so it appends one ledger entry for that.
 */
import type { LedgerWriter } from '../../ledger/types.ts';
import { writeBatch, type BatchOp, type Database } from '../../storage/db.ts';
import type { Repository } from '../repository.ts';
import { indexFormatOp } from './index-format.ts';

export interface ReindexProgress {
  done: number;
  total: number;
}

export interface ReindexResult {
  resources: number;
  entries: number;
}

const BATCH = 256;

export async function reindex(
  db: Database,
  repo: Repository,
  ledger: LedgerWriter,
  onProgress: (p: ReindexProgress) => void = () => {},
): Promise<ReindexResult> {
  let total = 0;
  for await (const _ of repo.allHeads()) total++;
  await repo.index.valueIndex.clear();
  await repo.index.resourceIndex.clear();
  await repo.index.rangeIndex.clear();
  await repo.index.legacyResourceIndex.clear();
  let done = 0;
  let resources = 0;
  let entries = 0;
  let ops: BatchOp[] = [];
  const flush = async () => {
    if (ops.length) await writeBatch(db, ops);
    ops = [];
  };
  for await (const head of repo.allHeads()) {
    done++;
    if (!head.deleted) {
      const resource = await repo.openResource(head);
      const found = repo.entriesFor(resource);
      ops.push(...repo.index.ops(head.resourceType, head.id, [], found));
      resources++;
      entries += found.length;
    }
    if (done % BATCH === 0) {
      await flush();
      onProgress({ done, total });
    }
  }
  await flush();
  onProgress({ done, total });
  // The format is recorded with the entry, in one synced batch: an interrupted rebuild leaves the store refused.
  await ledger.commit({
    entries: [{ interaction: 'reindex', status: 200, agent: { sub: 'reindex' } }],
    ops: () => [indexFormatOp(db)],
  });
  return { resources, entries };
}
