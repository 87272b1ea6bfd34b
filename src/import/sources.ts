/**
 * Which files a bulk import loads, and in what order: a file, or a directory walked recursively with `_shared/`
 * first at every level (Synthea's shared Organization, Location and Practitioner bundles, which the patient
 * bundles refer to by conditional references), then everything else in name order.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export type SourceKind = 'bundle' | 'ndjson';

export interface SourceFile {
  path: string;
  size: number;
  kind: SourceKind;
  /** Inside a `_shared/` directory: loaded before the rest, one at a time. */
  shared: boolean;
}

/** `.json` holds one Bundle (or one resource); `.ndjson` / `.jsonl` one resource per line. Other files are skipped. */
export function kindOf(file: string): SourceKind | undefined {
  const name = file.toLowerCase();
  if (name.endsWith('.ndjson') || name.endsWith('.jsonl')) return 'ndjson';
  if (name.endsWith('.json')) return 'bundle';
  return undefined;
}

/** Orders directory entries: `_shared` first, then by name (code-point order, the same on every machine). */
export function orderEntries(names: string[]): string[] {
  return [...names].sort((a, b) => Number(b === '_shared') - Number(a === '_shared') || (a < b ? -1 : a > b ? 1 : 0));
}

export async function listSources(target: string): Promise<{ files: SourceFile[]; ignored: string[] }> {
  const files: SourceFile[] = [];
  const ignored: string[] = [];
  const walk = async (at: string, shared: boolean): Promise<void> => {
    const stat = await fs.stat(at);
    if (stat.isDirectory()) {
      for (const name of orderEntries(await fs.readdir(at))) {
        if (name.startsWith('.')) continue;
        await walk(path.join(at, name), shared || name === '_shared');
      }
      return;
    }
    const kind = kindOf(at);
    if (kind && stat.isFile()) files.push({ path: at, size: stat.size, kind, shared });
    else ignored.push(at);
  };
  await walk(path.resolve(target), false);
  // Shared files anywhere go first (a stable partition keeps the walk's order within each group).
  return { files: [...files.filter((f) => f.shared), ...files.filter((f) => !f.shared)], ignored };
}
