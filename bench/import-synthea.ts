/**
 * Bulk-import throughput: loads the Synthea data (default /work/shared/data/synthea, `_shared/` first) into a fresh
 * temporary data dir through the same in-process path as `npm run import` (buildApp + runImport: validation,
 * encryption, search index, ledger), once per concurrency level, and prints resources/s with the machine's state
 * and the CPU time the import used (resources per CPU-second stays meaningful on a shared, loaded machine).
 *
 *   node bench/import-synthea.ts [dir] [--concurrency 1,2] [--json]
 *
 * Target (issue 3): >= 2,500 resources/s on 2 cores. Results: docs/benchmarks-import.md.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { runImport, type ImportSummary } from '../src/import/run.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { concurrency: { type: 'string', default: '1,2' }, json: { type: 'boolean', default: false } },
});
const source = path.resolve(positionals[0] ?? '/work/shared/data/synthea');
const levels = values.concurrency.split(',').map(Number).filter((n) => n > 0);

async function once(concurrency: number): Promise<ImportSummary & { concurrency: number; startupMs: number; cpuMs: number }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-bench-import-'));
  try {
    const started = Date.now();
    const app = await buildApp(loadConfig({ DATA_DIR: dataDir, MASTER_KEY_PASSPHRASE: 'bench', LOG_LEVEL: 'warn' }), { logger: false });
    const startupMs = Date.now() - started;
    try {
      const cpu = process.cpuUsage();
      const summary = await runImport(app, source, { concurrency, chunkLines: 500, progress: process.stderr });
      const used = process.cpuUsage(cpu);
      if (summary.failures.length > 0) throw new Error(`import failed: ${JSON.stringify(summary.failures.slice(0, 3))}`);
      return { ...summary, concurrency, startupMs, cpuMs: (used.user + used.system) / 1000 };
    } finally {
      await app.close();
    }
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadBefore: os.loadavg().map((n) => n.toFixed(1)).join(' ') };
const results = [];
for (const concurrency of levels) results.push(await once(concurrency));
const rows = results.map((r) => ({
  concurrency: r.concurrency,
  files: r.files,
  resources: r.resources,
  seconds: +(r.elapsedMs / 1000).toFixed(1),
  'resources/s': Math.round(r.rate),
  // CPU seconds this process used (all its threads): what the import costs, whatever else runs on the machine.
  'CPU s': +(r.cpuMs / 1000).toFixed(1),
  'resources per CPU-s': Math.round(r.resources / (r.cpuMs / 1000)),
  'startup s': +(r.startupMs / 1000).toFixed(1),
}));
if (values.json) {
  process.stdout.write(`${JSON.stringify({ bench: 'import-synthea', source, machine: { ...machine, loadAfter: os.loadavg().map((n) => n.toFixed(1)).join(' ') }, rows })}\n`);
} else {
  process.stdout.write(`\nImport of ${source} (${machine.cpus} × ${machine.cpu}, Node ${machine.node}, load average before ${machine.loadBefore}, after ${os.loadavg().map((n) => n.toFixed(1)).join(' ')})\n`);
  console.table(rows);
  process.stdout.write(`target: 2,500 resources/s on 2 cores\n`);
}
