/**
 * The ledger at scale: a store of N entries (generated through Ledger.commit in large synced batches, with the
 * AuditEvent index riders), then, in a FRESH process that opens it as a restarted server would: RSS at open,
 * inclusion-proof latency at size N (random indexes, proofs from stored hashes; the first 100 checked with
 * verifyInclusion) and RSS after them, then the full verification (verifyLedger, workers as the verify CLI uses
 * them) with its entries/s, the process's peak RSS, and, in the same run, the raw SHA-256 rate over the same
 * entry bytes (what hashing alone would allow on this machine at this moment).
 *
 *   node bench/ledger-scale.ts [--entries 100000] [--proofs 10000] [--data-parent /tmp]
 *   node bench/ledger-scale.ts --entries 10000000 --data-dir /tmp/ledger-10m [--generate-only]
 *
 * With --data-dir the store is kept and reused (a store with fewer entries is extended to N), so a 10M store is
 * generated once. benchLedgerScale() is the same as a function for the benchmark suite.
 */
import { spawn } from 'node:child_process';
import { hash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AuditIndex } from '../src/ledger/audit-index.ts';
import { Ledger } from '../src/ledger/log.ts';
import { leafHash, verifyInclusion } from '../src/ledger/merkle.ts';
import { verifyLedger } from '../src/ledger/verify.ts';
import { bytesSublevel, openDatabase, SUBLEVELS } from '../src/storage/db.ts';
import { mib, percentile, readDraft } from './ledger-common.ts';

export interface LedgerScaleOptions {
  /** Entries in the store (default 100,000). */
  entries?: number;
  /** Inclusion proofs to time (default 10,000). */
  proofs?: number;
  /** Keep the store here and reuse it (extended to `entries` if smaller); default: a temporary one, removed. */
  dataDir?: string;
  /** Parent of the temporary store (default the OS temp dir). */
  dataParent?: string;
  /** Entries per synced batch while generating (default 10,000). */
  batch?: number;
  /** Verification worker threads (default: verifyLedger's own choice). */
  workers?: number;
  /** LevelDB max_open_files of the measuring process (default: openDatabase's, the server's too). */
  maxOpenFiles?: number;
}

export interface LedgerScaleResult {
  entries: number;
  /** Generation in this run (0 entries when the kept store was already large enough). */
  generated: { entries: number; seconds: number; perSecond: number };
  verify: { seconds: number; entriesPerSecond: number; mibPerSecond: number; ok: boolean };
  /** Same run, same bytes: one SHA-256 call over them all, and one call per entry (leaf hashes only). */
  sha256: { oneShotMibPerSecond: number; perEntryPerSecond: number; sampleEntries: number };
  proof: { count: number; p50Ms: number; p99Ms: number; maxMs: number };
  rss: {
    atOpenMiB: number;
    afterProofsMiB: number;
    afterVerifyMiB: number;
    peakMiB: number;
    heapUsedMiB: number;
    /** Anonymous vs file-backed (mmapped LevelDB tables) RSS, where the OS tells (Linux). */
    parts?: Record<'atOpen' | 'afterProofs' | 'afterVerify', { anonMiB: number; fileMiB: number }>;
  };
  loadAverage: number[];
}

const DEFAULT_BATCH = 10_000;

/** Opens (or creates) the store in `dir` and appends readDraft entries until it holds `total`. */
export async function generateLedger(dir: string, total: number, batch = DEFAULT_BATCH, log: (line: string) => void = () => undefined): Promise<{ entries: number; seconds: number }> {
  const db = await openDatabase(path.join(dir, 'db'));
  try {
    const ledger = await Ledger.open(db, { entryOps: new AuditIndex(db).ops });
    const from = ledger.size();
    const t0 = performance.now();
    let lastLog = t0;
    // Two commits in flight: the next batch is sealed on this thread while the previous one is written and synced.
    let inFlight: Promise<unknown> = Promise.resolve();
    for (let start = from; start < total; start += batch) {
      const n = Math.min(batch, total - start);
      const commit = ledger.commit({ entries: Array.from({ length: n }, (_, i) => readDraft(start + i)) });
      await inFlight;
      inFlight = commit;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`  … ${(start + n).toLocaleString('en-US')} entries (${Math.round((start + n - from) / ((lastLog - t0) / 1000)).toLocaleString('en-US')}/s)`);
      }
    }
    await inFlight;
    await ledger.close();
    return { entries: Math.max(0, total - from), seconds: (performance.now() - t0) / 1000 };
  } finally {
    await db.close();
  }
}

const toMiB = (bytes: number) => bytes / 1024 / 1024;

function rssNow(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

/** Linux's split of the RSS: anonymous memory (heaps, caches) and file pages (LevelDB's mmapped tables), MiB. */
async function rssParts(): Promise<{ anonMiB: number; fileMiB: number } | undefined> {
  try {
    const status = await fs.readFile('/proc/self/status', 'utf8');
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { anonMiB: kib('RssAnon') / 1024, fileMiB: kib('RssFile') / 1024 };
  } catch {
    return undefined;
  }
}

/** The measuring half, run in a fresh process (`--measure`): prints one JSON line. */
async function measure(dir: string, proofs: number, workers: number | undefined, maxOpenFiles: number | undefined): Promise<Omit<LedgerScaleResult, 'generated' | 'loadAverage'>> {
  const db = await openDatabase(path.join(dir, 'db'), { multithreading: true, ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }) });
  try {
    const ledger = await Ledger.open(db);
    const atOpen = rssNow();
    const partsAtOpen = await rssParts();
    const size = ledger.size();
    const root = await ledger.rootAt(size);
    const latencies: number[] = [];
    for (let i = 0; i < proofs; i++) {
      const leafIndex = Math.floor(Math.random() * size);
      const s = performance.now();
      const proof = await ledger.inclusionProof(leafIndex, size);
      latencies.push(performance.now() - s);
      if (i < 100) {
        const [entry] = await ledger.getEntries(leafIndex, leafIndex + 1);
        if (!verifyInclusion(entry!.leafHash, leafIndex, size, proof, root)) throw new Error(`proof of ${leafIndex} does not verify`);
      }
    }
    latencies.sort((a, b) => a - b);
    const afterProofs = rssNow();
    const partsAfterProofs = await rssParts();

    let t = performance.now();
    const verified = await verifyLedger(db, workers === undefined ? {} : { workers });
    const verifySeconds = (performance.now() - t) / 1000;
    if (!verified.ok) throw new Error(`verification failed: ${verified.code} at ${verified.index}: ${verified.message}`);
    const afterVerify = rssNow();
    const partsAfterVerify = await rssParts();
    // ru_maxrss is in KiB on Linux; taken before the SHA-256 sample below adds its own buffers.
    const peak = process.resourceUsage().maxRSS / 1024;

    // Raw SHA-256 over the same kind of bytes, in the same process and minute as the verification.
    const sample: Uint8Array[] = [];
    let sampleBytes = 0;
    for await (const bytes of bytesSublevel(db, SUBLEVELS.ledgerEntry).values({ limit: Math.min(size, 20_000) })) {
      sample.push(bytes);
      sampleBytes += bytes.length;
    }
    const joined = Buffer.concat(sample);
    t = performance.now();
    for (let r = 0; r < 10; r++) hash('sha256', joined, 'buffer');
    const oneShotMibPerSecond = toMiB(10 * joined.length) / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let r = 0; r < 5; r++) for (const bytes of sample) leafHash(bytes);
    const perEntryPerSecond = (5 * sample.length) / ((performance.now() - t) / 1000);
    await ledger.close();
    const meanEntryBytes = sampleBytes / Math.max(1, sample.length);
    return {
      entries: size,
      verify: { seconds: verifySeconds, entriesPerSecond: size / verifySeconds, mibPerSecond: toMiB(size * meanEntryBytes) / verifySeconds, ok: true },
      sha256: { oneShotMibPerSecond, perEntryPerSecond, sampleEntries: sample.length },
      proof: { count: proofs, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies.at(-1) ?? 0 },
      rss: {
        atOpenMiB: toMiB(atOpen),
        afterProofsMiB: toMiB(afterProofs),
        afterVerifyMiB: toMiB(afterVerify),
        peakMiB: peak,
        heapUsedMiB: toMiB(process.memoryUsage().heapUsed),
        ...(partsAtOpen && partsAfterProofs && partsAfterVerify ? { parts: { atOpen: partsAtOpen, afterProofs: partsAfterProofs, afterVerify: partsAfterVerify } } : {}),
      },
    };
  } finally {
    await db.close();
  }
}

/** Generates (or reuses) the store, then measures it in a fresh child process. */
export async function benchLedgerScale(options: LedgerScaleOptions = {}, log: (line: string) => void = () => undefined): Promise<LedgerScaleResult> {
  const total = options.entries ?? 100_000;
  const proofs = options.proofs ?? 10_000;
  const kept = options.dataDir !== undefined;
  const dir = kept ? path.resolve(options.dataDir!) : await fs.mkdtemp(path.join(options.dataParent ?? os.tmpdir(), 'sealed-ledger-bench-'));
  try {
    await fs.mkdir(dir, { recursive: true });
    const gen = await generateLedger(dir, total, options.batch ?? DEFAULT_BATCH, log);
    const args = ['--expose-gc', import.meta.filename, '--measure', dir, '--proofs', String(proofs), ...(options.workers === undefined ? [] : ['--workers', String(options.workers)]),
      ...(options.maxOpenFiles === undefined ? [] : ['--max-open-files', String(options.maxOpenFiles)])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (code !== 0 || line === undefined) throw new Error(`the measuring process failed (exit ${code})`);
    const measured = JSON.parse(line) as Omit<LedgerScaleResult, 'generated' | 'loadAverage'>;
    return {
      ...measured,
      generated: { entries: gen.entries, seconds: gen.seconds, perSecond: gen.entries > 0 ? gen.entries / gen.seconds : 0 },
      loadAverage: os.loadavg(),
    };
  } finally {
    if (!kept) await fs.rm(dir, { recursive: true, force: true });
  }
}

export function formatLedgerScale(r: LedgerScaleResult): string {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const f1 = (n: number) => n.toFixed(1);
  return [
    `ledger of ${fmt(r.entries)} entries (with AuditEvent index riders); load average ${r.loadAverage.map((l) => l.toFixed(1)).join(' ')}`,
    r.generated.entries > 0
      ? `  generation            ${fmt(r.generated.perSecond)} entries/s through Ledger.commit (${fmt(r.generated.entries)} in ${f1(r.generated.seconds)} s)`
      : '  generation            (kept store reused)',
    `  full verification     ${fmt(r.verify.entriesPerSecond)} entries/s, ${f1(r.verify.mibPerSecond)} MiB/s of entries (${r.verify.seconds.toFixed(2)} s; target ≥ 500,000/s)`,
    `  same run, SHA-256     ${fmt(r.sha256.oneShotMibPerSecond)} MiB/s in one call; ${fmt(r.sha256.perEntryPerSecond)} leaf hashes/s one call per entry (${fmt(r.sha256.sampleEntries)} entries)`,
    `  inclusion proof       p50 ${r.proof.p50Ms.toFixed(3)} ms, p99 ${r.proof.p99Ms.toFixed(3)} ms, max ${r.proof.maxMs.toFixed(1)} ms over ${fmt(r.proof.count)} random indexes (target ≤ 1 ms)`,
    `  RSS (fresh process)   ${f1(r.rss.atOpenMiB)} MiB at open, ${f1(r.rss.afterProofsMiB)} MiB after the proofs (growth ${f1(r.rss.afterProofsMiB - r.rss.atOpenMiB)} MiB), ${f1(r.rss.afterVerifyMiB)} MiB after verification (growth ${f1(r.rss.afterVerifyMiB - r.rss.atOpenMiB)} MiB), peak ${f1(r.rss.peakMiB)} MiB (V8 heap in use ${f1(r.rss.heapUsedMiB)} MiB)`,
    ...(r.rss.parts
      ? [`  RSS anon / file       ${(['atOpen', 'afterProofs', 'afterVerify'] as const).map((k) => `${f1(r.rss.parts![k].anonMiB)} / ${f1(r.rss.parts![k].fileMiB)}`).join(' → ')} MiB (file = LevelDB's mmapped tables)`]
      : []),
  ].join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string', default: '100000' },
      proofs: { type: 'string', default: '10000' },
      'data-parent': { type: 'string', default: os.tmpdir() },
      'data-dir': { type: 'string' },
      batch: { type: 'string' },
      workers: { type: 'string' },
      'generate-only': { type: 'boolean', default: false },
      measure: { type: 'string' },
      'max-open-files': { type: 'string' },
    },
  });
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (values.measure) {
    console.log(JSON.stringify(await measure(values.measure, Number(values.proofs), workers, values['max-open-files'] === undefined ? undefined : Number(values['max-open-files']))));
  } else if (values['generate-only']) {
    if (!values['data-dir']) throw new Error('--generate-only needs --data-dir');
    const dir = path.resolve(values['data-dir']);
    await fs.mkdir(dir, { recursive: true });
    const gen = await generateLedger(dir, Number(values.entries), values.batch ? Number(values.batch) : DEFAULT_BATCH, console.log);
    console.log(`generated ${gen.entries.toLocaleString('en-US')} entries in ${gen.seconds.toFixed(1)} s (${Math.round(gen.entries / gen.seconds).toLocaleString('en-US')}/s)`);
  } else {
    const result = await benchLedgerScale({
      entries: Number(values.entries),
      proofs: Number(values.proofs),
      dataParent: values['data-parent'],
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      ...(values.batch ? { batch: Number(values.batch) } : {}),
      ...(workers === undefined ? {} : { workers }),
      ...(values['max-open-files'] ? { maxOpenFiles: Number(values['max-open-files']) } : {}),
    }, console.log);
    console.log(formatLedgerScale(result));
  }
}
