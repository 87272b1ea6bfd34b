/**
 * Durable appends per second with 64 concurrent writers: each writer commits one entry at a time and waits until
 * it is durable (synced), as an audited request does. Group commit makes them share synced batches. Measured
 * bare, with the AuditEvent index riders, and with riders plus checkpoints (default policy), in one run, beside
 * what bounds them on this machine at this moment: the fsync latency of the disk, the synced-batch latency, and
 * the raw SHA-256 rate over the same entry bytes.
 *
 *   node bench/ledger-append.ts [--seconds 5] [--writers 64]
 *
 * benchLedgerAppend() is the same as a function for the benchmark suite.
 */
import { hash } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { AuditIndex } from '../src/ledger/audit-index.ts';
import { Checkpointer } from '../src/ledger/checkpoint.ts';
import { GENESIS_PREV, sealEntry } from '../src/ledger/entry.ts';
import { Ledger } from '../src/ledger/log.ts';
import { leafHash } from '../src/ledger/merkle.ts';
import { signerFromSeed } from '../src/ledger/note.ts';
import { createHeliaBlockStore } from '../src/storage/helia-blocks.ts';
import { fsyncP50, percentile, readDraft, tempDatabase } from './ledger-common.ts';

export interface LedgerAppendOptions {
  /** Measured seconds per variant (default 5). */
  seconds?: number;
  /** Concurrent writers (default 64). */
  writers?: number;
  /** Parent directory of the temporary stores (default the OS temp dir). */
  dataParent?: string;
}

export interface AppendVariant {
  name: 'ledger' | 'riders' | 'riders+checkpoints';
  appendsPerSecond: number;
  appended: number;
  seconds: number;
  batches: number;
  entriesPerBatch: number;
  /** Submission to durable, as a writer waits for it. */
  commitP50Ms: number;
  commitP99Ms: number;
  checkpoints: number;
}

export interface LedgerAppendResult {
  writers: number;
  variants: AppendVariant[];
  /** write(4 KiB) + fdatasync p50 in the same directory: the floor under every synced batch. */
  fsyncP50Ms: number;
  /** Same run, same entry bytes: one SHA-256 call per entry (leaf hashes), and one call over all of them. */
  sha256: { leafHashesPerSecond: number; oneShotMibPerSecond: number };
  peakRssMiB: number;
  loadAverage: number[];
}

async function variant(name: AppendVariant['name'], writers: number, seconds: number, dataParent: string | undefined): Promise<AppendVariant> {
  const withIndex = name !== 'ledger';
  const withCheckpoints = name === 'riders+checkpoints';
  const tmp = await tempDatabase(dataParent);
  try {
    const index = new AuditIndex(tmp.db);
    const ledger = await Ledger.open(tmp.db, withIndex ? { entryOps: index.ops } : {});
    let batches = 0;
    ledger.onDurable(() => batches++);
    const blocks = withCheckpoints ? await createHeliaBlockStore({ db: tmp.db }) : undefined;
    const checkpointer = blocks
      ? await Checkpointer.open({ db: tmp.db, ledger, blocks, signer: signerFromSeed('bench/ledger', new Uint8Array(32).fill(1)), origin: 'bench/ledger', everyEntries: 1000, everyMs: 1000, onError: (e) => console.error(e) })
      : undefined;
    const latencies: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    const start = performance.now();
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      for (let i = w; performance.now() < deadline; i += writers) {
        const submitted = performance.now();
        await ledger.commit({ entries: [readDraft(i)] });
        latencies.push(performance.now() - submitted);
      }
    }));
    const elapsed = (performance.now() - start) / 1000;
    await checkpointer?.close();
    const checkpoints = checkpointer ? (await checkpointer.list()).length : 0;
    await ledger.close();
    await blocks?.close();
    latencies.sort((a, b) => a - b);
    return {
      name,
      appendsPerSecond: latencies.length / elapsed,
      appended: latencies.length,
      seconds: elapsed,
      batches,
      entriesPerBatch: latencies.length / Math.max(1, batches),
      commitP50Ms: percentile(latencies, 50),
      commitP99Ms: percentile(latencies, 99),
      checkpoints,
    };
  } finally {
    await tmp.remove();
  }
}

/** SHA-256 over the canonical bytes of the entries the writers append, measured now. */
function sha256Rates(): LedgerAppendResult['sha256'] {
  const sample = Array.from({ length: 20_000 }, (_, i) => sealEntry(readDraft(i), i, new Date(0).toISOString(), GENESIS_PREV).bytes);
  let t = performance.now();
  for (const bytes of sample) leafHash(bytes);
  const leafHashesPerSecond = sample.length / ((performance.now() - t) / 1000);
  const joined = Buffer.concat(sample);
  t = performance.now();
  for (let r = 0; r < 10; r++) hash('sha256', joined, 'buffer');
  const oneShotMibPerSecond = (10 * joined.length) / 1024 / 1024 / ((performance.now() - t) / 1000);
  return { leafHashesPerSecond, oneShotMibPerSecond };
}

export async function benchLedgerAppend(options: LedgerAppendOptions = {}): Promise<LedgerAppendResult> {
  const seconds = options.seconds ?? 5;
  const writers = options.writers ?? 64;
  const fsync = await fsyncP50(options.dataParent ?? os.tmpdir());
  const sha256 = sha256Rates();
  const variants: AppendVariant[] = [];
  for (const name of ['ledger', 'riders', 'riders+checkpoints'] as const) variants.push(await variant(name, writers, seconds, options.dataParent));
  return {
    writers,
    variants,
    fsyncP50Ms: fsync,
    sha256,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    loadAverage: os.loadavg(),
  };
}

const LABELS: Record<AppendVariant['name'], string> = {
  ledger: 'ledger only',
  riders: '+ AuditEvent index riders',
  'riders+checkpoints': '+ riders + checkpoints (N=1000, T=1s)',
};

export function formatLedgerAppend(r: LedgerAppendResult): string {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  return [
    `durable appends, ${r.writers} concurrent writers (target ≥ 20,000/s on 2 cores)`,
    `machine: ${os.cpus().length} cores, load average ${r.loadAverage.map((l) => l.toFixed(1)).join(' ')}, fsync p50 ${r.fsyncP50Ms.toFixed(2)} ms, ` +
      `SHA-256 now: ${fmt(r.sha256.leafHashesPerSecond)} leaf hashes/s, ${fmt(r.sha256.oneShotMibPerSecond)} MiB/s in one call`,
    ...r.variants.map((v) =>
      `${LABELS[v.name].padEnd(38)} ${fmt(v.appendsPerSecond).padStart(8)} durable appends/s  (${v.appended} in ${v.seconds.toFixed(1)} s, ${v.batches} synced batches, ` +
      `${v.entriesPerBatch.toFixed(1)} entries/batch, commit p50 ${v.commitP50Ms.toFixed(1)} ms p99 ${v.commitP99Ms.toFixed(1)} ms${v.name === 'riders+checkpoints' ? `, ${v.checkpoints} checkpoints` : ''})`),
    `peak RSS ${r.peakRssMiB.toFixed(1)} MiB`,
  ].join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, writers: { type: 'string', default: '64' }, 'data-parent': { type: 'string' } } });
  const result = await benchLedgerAppend({ seconds: Number(values.seconds), writers: Number(values.writers), ...(values['data-parent'] ? { dataParent: values['data-parent'] } : {}) });
  console.log(formatLedgerAppend(result));
}
