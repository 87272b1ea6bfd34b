/**
 * Compares the live search index with the one the stored versions give (what `npm run reindex` would write),
 * without changing anything: every current version is decrypted, its entries extracted and sealed, and both
 * sublevels must hold exactly those keys. The index is derived data outside the ledger's hashes, so this is how
 * a changed, missing or planted index key is found (`npm run reindex -- --check`); it needs the node's keys.
 */
import type { Problem } from '../../ledger/fsck.ts';
import type { Repository } from '../repository.ts';

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
  const decoder = new TextDecoder();
  let resources = 0;
  let entries = 0;
  for await (const head of repo.allHeads()) {
    if (head.deleted) continue;
    resources++;
    const at = `${head.resourceType}/${head.id}`;
    let expected: Set<string>;
    try {
      const resource = JSON.parse(decoder.decode(await repo.open(head)));
      expected = new Set(repo.entriesFor(resource).map((e) => `${e.code}/${e.value}`));
    } catch (err) {
      fail('ERR_INDEX_UNREADABLE', at, `cannot open the current version: ${(err as Error).message}`);
      continue;
    }
    entries += expected.size;
    const stored = new Set((await repo.index.entriesOf(head.resourceType, head.id)).map((e) => `${e.code}/${e.value}`));
    const missing = [...expected].filter((k) => !stored.has(k));
    const extra = [...stored].filter((k) => !expected.has(k));
    if (missing.length) fail('ERR_INDEX_MISSING', at, `${missing.length} resource-value key(s) missing, e.g. ${missing[0]}`);
    if (extra.length) fail('ERR_INDEX_EXTRA', at, `${extra.length} resource-value key(s) the version does not give, e.g. ${extra[0]}`);
    const keys = [...expected].map((k) => {
      const slash = k.indexOf('/');
      return `${head.resourceType}/${k.slice(0, slash)}/${k.slice(slash + 1)}\x00${head.id}`;
    });
    const values = await repo.index.valueIndex.getMany(keys);
    const absent = keys.filter((_, i) => values[i] === undefined);
    if (absent.length) fail('ERR_INDEX_MISSING', at, `${absent.length} search-value key(s) missing`);
  }
  // Every expected key was found above; equal totals then mean no key of a resource that should have none
  // (a deleted or unknown one) and no stray value key.
  for (const [name, level] of [['resource-value', repo.index.resourceIndex], ['search-value', repo.index.valueIndex]] as const) {
    let count = 0;
    for await (const _ of level.keys(SCAN)) count++;
    if (count !== entries) fail('ERR_INDEX_EXTRA', name, `${count} keys where the stored versions give ${entries}`);
  }
  log(`search index: ${resources} resources, ${entries} entries checked`);
  return { resources, entries, problems };
}
