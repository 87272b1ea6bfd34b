/**
 * Compares the live search index with the one the stored versions give (what `npm run reindex` would write),
 * without changing anything: every current version is decrypted, its entries extracted and sealed; its packed
 * `resource-entries` record must hold exactly those entries, its `resource-ranges` record exactly their date, number
 * and quantity entries (none when there are none), and `search-value` a key for each, and neither may hold
 * anything more (nor the legacy `resource-value` sublevel anything at all). The index is derived data outside the ledger's hashes, so this is how
 * a changed, missing or planted index key is found (`npm run reindex -- --check`); it needs the node's keys.
 */
import type { Problem } from '../../ledger/fsck.ts';
import type { Repository } from '../repository.ts';
import { isRangeCode, unpackEntries } from './index-store.ts';

export interface IndexCheck {
  resources: number;
  entries: number;
  problems: Problem[];
}

const SCAN = { fillCache: false } as {};

export async function checkSearchIndex(repo: Repository, log: (line: string) => void = () => undefined): Promise<IndexCheck> {
  const problems: Problem[] = [];
  const fail = (code: string, at: string, message: string) => {
    if (problems.length < 1000) log(`${at}: ${code} ${message}`);
    problems.push({ code, at, message });
  };
  let resources = 0;
  let entries = 0;
  let records = 0;
  let rangeRecords = 0;
  for await (const head of repo.allHeads()) {
    if (head.deleted) continue;
    resources++;
    const at = `${head.resourceType}/${head.id}`;
    let expected: Set<string>;
    try {
      const resource = await repo.openResource(head);
      expected = new Set(repo.entriesFor(resource).map((e) => `${e.code}/${e.value}`));
    } catch (err) {
      fail('ERR_INDEX_UNREADABLE', at, `cannot open the current version: ${(err as Error).message}`);
      continue;
    }
    entries += expected.size;
    if (expected.size > 0) records++;
    const stored = new Set((await repo.index.entriesOf(head.resourceType, head.id)).map((e) => `${e.code}/${e.value}`));
    const expectedRanges = [...expected].filter((k) => isRangeCode(head.resourceType, k.slice(0, k.indexOf('/')))).sort();
    const storedRanges = unpackEntries(await repo.index.rangeIndex.get(at)).map((e) => `${e.code}/${e.value}`).sort();
    if (expectedRanges.length > 0) rangeRecords++;
    if (expectedRanges.join('\n') !== storedRanges.join('\n')) {
      fail('ERR_INDEX_RANGES', at, `its resource-ranges record holds ${storedRanges.length} entr(ies) where the version gives ${expectedRanges.length} date, number and quantity entr(ies)`);
    }
    const missing = [...expected].filter((k) => !stored.has(k));
    const extra = [...stored].filter((k) => !expected.has(k));
    if (missing.length) fail('ERR_INDEX_MISSING', at, `${missing.length} entr(ies) missing from its resource-entries record, e.g. ${missing[0]}`);
    if (extra.length) fail('ERR_INDEX_EXTRA', at, `${extra.length} entr(ies) in its resource-entries record the version does not give, e.g. ${extra[0]}`);
    const keys = [...expected].map((k) => {
      const slash = k.indexOf('/');
      return `${head.resourceType}/${k.slice(0, slash)}/${k.slice(slash + 1)}\x00${head.id}`;
    });
    const values = await repo.index.valueIndex.getMany(keys);
    const absent = keys.filter((_, i) => values[i] === undefined);
    if (absent.length) fail('ERR_INDEX_MISSING', at, `${absent.length} search-value key(s) missing`);
  }
  // Every expected key was found above; equal totals then mean no record of a resource that should have none
  // (a deleted or unknown one) and no stray value key.
  const totals = [
    ['resource-entries', repo.index.resourceIndex, records],
    ['resource-ranges', repo.index.rangeIndex, rangeRecords],
    ['search-value', repo.index.valueIndex, entries],
    ['resource-value (the layout before packed records: npm run reindex clears it)', repo.index.legacyResourceIndex, 0],
  ] as const;
  for (const [name, level, expected] of totals) {
    let count = 0;
    for await (const _ of level.keys(SCAN)) count++;
    if (count !== expected) fail('ERR_INDEX_EXTRA', name, `${count} keys where the stored versions give ${expected}`);
  }
  log(`search index: ${resources} resources, ${entries} entries checked`);
  return { resources, entries, problems };
}
