/**
 * What LevelDB alone allows the write path: synced batches of N puts (a Patient create writes ~120: 105 search
 * index keys, the packed index record, four version keys, its block and its ledger entry with the AuditEvent
 * riders) written one after another through `writeBatch`, the way the ledger's group commit writes them, into a
 * fresh store opened as the server opens it. Keys are random, as search-index keys are (hashes spread over the key
 * space), or sequential, as the ledger's own keys are; values are 120 random bytes. Variants alternate and repeat,
 * so a change in the machine's load shows as spread instead of as a difference. Nothing of the server runs: this
 * is the floor under every durable create, whatever the server's own CPU cost per create becomes.
 *
 *   node bench/leveldb-batch.ts [--ops 1100] [--seconds 6] [--rounds 2] [--data-parent /tmp]
 *
 * Not part of `npm run bench`; docs/benchmarks.md ("What bounds a durable create") records its figures.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase, writeBatch, type BatchOp } from '../src/storage/db.ts';

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '1100' },
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    'data-parent': { type: 'string', default: os.tmpdir() },
  },
});
const opsPerBatch = Number(args.ops);
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
if (!Number.isInteger(opsPerBatch) || opsPerBatch < 1 || !(seconds > 0) || !Number.isInteger(rounds) || rounds < 1) {
  throw new Error('--ops ≥ 1, --seconds > 0, --rounds ≥ 1');
}

interface Variant {
  name: string;
  keys: 'random' | 'sequential';
  sync: boolean;
}

const variants: Variant[] = [
  { name: 'random keys, synced', keys: 'random', sync: true },
  { name: 'random keys, not synced', keys: 'random', sync: false },
  { name: 'sequential keys, synced', keys: 'sequential', sync: true },
];

async function measure(variant: Variant): Promise<{ opsPerSecond: number; p50Ms: number; p90Ms: number }> {
  const dir = await fs.mkdtemp(path.join(args['data-parent'], 'leveldb-batch-'));
  const db = await openDatabase(dir);
  try {
    const latencies: number[] = [];
    let batches = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      const ops: BatchOp[] = [];
      for (let i = 0; i < opsPerBatch; i++) {
        const key = variant.keys === 'random'
          ? `k${randomBytes(16).toString('base64url')}`
          : `k${String(batches).padStart(10, '0')}/${String(i).padStart(6, '0')}`;
        ops.push({ type: 'put', key, value: randomBytes(120) });
      }
      const t0 = performance.now();
      await writeBatch(db, ops, { sync: variant.sync });
      latencies.push(performance.now() - t0);
      batches++;
    }
    latencies.sort((a, b) => a - b);
    return {
      // The rate counts only the time spent in writeBatch, not in building the random operations.
      opsPerSecond: (batches * opsPerBatch) / (latencies.reduce((sum, ms) => sum + ms, 0) / 1000),
      p50Ms: latencies[Math.floor(latencies.length / 2)]!,
      p90Ms: latencies[Math.floor(latencies.length * 0.9)]!,
    };
  } finally {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

console.log(`LevelDB batches of ${opsPerBatch} puts (120-byte values), ${seconds} s per variant, ${rounds} round(s); load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (let round = 1; round <= rounds; round++) {
  for (const variant of variants) {
    const r = await measure(variant);
    console.log(`  round ${round}  ${variant.name.padEnd(24)} ${Math.round(r.opsPerSecond).toLocaleString('en-US').padStart(9)} puts/s  batch p50 ${r.p50Ms.toFixed(2)} ms, p90 ${r.p90Ms.toFixed(2)} ms`);
  }
}
