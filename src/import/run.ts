/**
 * A whole import: the files in order (`_shared/` first, one at a time, because later files refer to them), then
 * the rest with `concurrency` files in flight — each file's transaction is independent of the others', so two
 * bundles overlap their I/O (block writes, the synced ledger commit) with each other's CPU work. Stops starting new
 * files once `signal` aborts; files in flight finish (each is atomic anyway).
 */
import os from 'node:os';
import type { Agent } from '../ledger/types.ts';
import { ProgressBar, type BarState } from './bar.ts';
import { Importer, type FileOutcome, type ImporterDeps, type ImportFailure } from './importer.ts';
export type { FileOutcome } from './importer.ts';
import { listSources, type SourceFile } from './sources.ts';

export interface RunOptions {
  concurrency: number;
  chunkLines: number;
  /** Forget earlier progress records and import everything again. */
  restart?: boolean;
  /** Where the progress bar goes (stderr); none when undefined. */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  signal?: AbortSignal;
  /** Called once per file as it ends (`--verbose`). */
  onFile?(outcome: FileOutcome): void;
}

export interface ImportSummary {
  files: number;
  imported: number;
  skipped: number;
  failedFiles: number;
  /** Files not started because the run was interrupted. */
  notStarted: number;
  resources: number;
  failures: ImportFailure[];
  ignored: string[];
  elapsedMs: number;
  /** Resources stored per second of this run. */
  rate: number;
}

export function importAgent(): Agent {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no user name (container without passwd entry): the agent still says it was the importer
  }
  return { sub: `import:${user}`, issuer: 'sealed-fhir:import', clientId: 'npm run import' };
}

export async function runImport(deps: ImporterDeps, target: string, options: RunOptions): Promise<ImportSummary> {
  const started = Date.now();
  const { files, ignored } = await listSources(target);
  const state: BarState = { bytesDone: 0, bytesTotal: files.reduce((n, f) => n + f.size, 0), filesDone: 0, filesTotal: files.length, resources: 0, failures: 0, elapsedMs: 0 };
  const bar = options.progress ? new ProgressBar(options.progress) : undefined;
  const tick = (force = false) => {
    state.elapsedMs = Date.now() - started;
    bar?.update(state, force);
  };
  const importer = new Importer(deps, {
    chunkLines: options.chunkLines,
    agent: importAgent(),
    onResources: (n) => {
      state.resources += n;
      tick();
    },
    onBytes: (n) => {
      state.bytesDone += n;
      tick();
    },
  });
  if (options.restart) await importer.progressStore.clear();

  const outcomes: FileOutcome[] = [];
  const one = async (file: SourceFile) => {
    const outcome = await importer.importFile(file);
    outcomes.push(outcome);
    options.onFile?.(outcome);
    state.filesDone++;
    state.failures += outcome.failures.length;
    tick();
  };
  const shared = files.filter((f) => f.shared);
  const rest = files.filter((f) => !f.shared);
  for (const file of shared) {
    if (options.signal?.aborted) break;
    await one(file);
  }
  let next = 0;
  const worker = async () => {
    while (next < rest.length && !options.signal?.aborted) await one(rest[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  state.elapsedMs = Date.now() - started;
  bar?.finish(state);

  const count = (status: FileOutcome['status']) => outcomes.filter((o) => o.status === status).length;
  const elapsedMs = Date.now() - started;
  return {
    files: files.length,
    imported: count('imported'),
    skipped: count('skipped'),
    failedFiles: count('failed'),
    notStarted: files.length - outcomes.length,
    resources: state.resources,
    failures: outcomes.flatMap((o) => o.failures),
    ignored,
    elapsedMs,
    rate: elapsedMs > 0 ? state.resources / (elapsedMs / 1000) : 0,
  };
}
