/**
 * `npm run import -- <file-or-dir> [options]`: bulk import of FHIR Bundles and NDJSON into this node's data dir.
 *
 * In-process, not through HTTP: the importer builds the node with buildApp(config) (same config as the server)
 * and dispatches every Bundle through the FHIR router as a system agent, so every resource takes the same path as
 * a REST request — validation, encryption, IPFS block, search index, ledger entry — without the HTTP body limit,
 * JSON re-serialization and token round trips. It also lets a file's progress record ride in the same synced
 * batch as its resources. The node's LevelDB allows one process at a time: while a server runs on the data dir,
 * the importer stops with a clear message (stop the server, or POST the bundles to its /fhir endpoint instead).
 */
import { parseArgs } from 'node:util';
import { buildApp, type App } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { formatDuration } from '../import/bar.ts';
import { runImport, type FileOutcome, type ImportSummary } from '../import/run.ts';
import { isLockedError } from '../storage/db.ts';

const USAGE = `Usage: npm run import -- <file-or-directory> [options]

Loads FHIR R4 data into the node's data dir (DATA_DIR) through the same validation, encryption, search index and
audit ledger as the REST API. The server must not be running on the same data dir.

  *.json             a Bundle: transaction (one atomic commit per file), batch (entries one by one),
                     collection or searchset (their resources as one transaction: PUT Type/id keeps ids),
                     or a single resource
  *.ndjson, *.jsonl  one resource per line, committed in transactions of --chunk lines

Directories are walked recursively: _shared/ first (Synthea's shared Organization, Location and Practitioner
bundles), then the rest in name order. Progress is recorded in the data dir: a rerun skips what is done, so an
interrupted import is resumed by running the same command again.

Options:
  --concurrency <n>  files in flight (default 2)
  --chunk <n>        NDJSON lines per transaction (default 500)
  --restart          forget the progress record and import everything again
  --verbose          one line per file on stderr as it ends
  -h, --help         this text

Exit status: 0 when everything was imported, 1 when anything failed (listed in the summary), 2 on usage errors
or when the data dir is in use.
`;

class UsageError extends Error {}

function positiveInt(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new UsageError(`--${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

export function parseImportArgs(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      concurrency: { type: 'string' },
      chunk: { type: 'string' },
      restart: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help' as const;
  if (positionals.length !== 1) throw new UsageError('name exactly one file or directory to import');
  return {
    target: positionals[0]!,
    concurrency: positiveInt('concurrency', values.concurrency, 2, 64),
    chunkLines: positiveInt('chunk', values.chunk, 500, 100_000),
    restart: values.restart ?? false,
    verbose: values.verbose ?? false,
  };
}

/** LevelDB's lock file says another process (a running server, another import) has the database open. */
export function formatSummary(s: ImportSummary): string {
  const lines = [
    `Imported ${s.resources.toLocaleString('en-US')} resources in ${formatDuration(s.elapsedMs)} (${Math.round(s.rate).toLocaleString('en-US')} resources/s)`,
    `Files: ${s.files} found, ${s.imported} imported, ${s.skipped} already done, ${s.failedFiles} failed${s.notStarted ? `, ${s.notStarted} not started (interrupted)` : ''}${s.ignored.length ? `; ${s.ignored.length} other files ignored` : ''}`,
  ];
  if (s.failures.length > 0) {
    lines.push(`Failures (${s.failures.length}):`);
    for (const f of s.failures.slice(0, 100)) lines.push(`  ${f.file}${f.where ? ` ${f.where}` : ''}: ${f.code}: ${f.message}`);
    if (s.failures.length > 100) lines.push(`  … and ${s.failures.length - 100} more`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseImportArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`import: ${(err as Error).message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let app: App;
  try {
    const config = loadConfig();
    app = await buildApp({ ...config, logLevel: 'warn' }, { logger: { level: 'warn' } });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`import: configuration error: ${err.message}\n`);
      return 2;
    }
    if (isLockedError(err)) {
      process.stderr.write(
        `import: the data dir is in use by another process (a running server or another import): LevelDB allows one at a time.\n` +
          `Stop the server first, or POST the bundles to its /fhir endpoint instead.\n`,
      );
      return 2;
    }
    throw err;
  }
  const abort = new AbortController();
  const interrupt = () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('\nimport: interrupted; finishing the files in flight (Ctrl-C again to stop at once; a rerun resumes)\n');
    abort.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    const onFile = (o: FileOutcome) => process.stderr.write(`${o.status} ${o.file.path} (${o.resources} resources${o.failures.length ? `, ${o.failures.length} failed` : ''})\n`);
    const summary = await runImport(app, args.target, { ...args, progress: process.stderr, signal: abort.signal, ...(args.verbose ? { onFile } : {}) });
    process.stdout.write(formatSummary(summary));
    return summary.failures.length > 0 || summary.failedFiles > 0 || summary.notStarted > 0 ? 1 : 0;
  } catch (err) {
    process.stderr.write(`import: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await app.close();
  }
}

if (import.meta.main) process.exitCode = await main();
