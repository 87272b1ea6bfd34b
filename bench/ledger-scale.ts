/**
 * The ledger at scale: N entries generated directly through Ledger.commit (1,000 per synced batch, with the
 * AuditEvent index riders), then full verification (verifyLedger) in entries/s, inclusion-proof latency at size N
 * (random indexes, proofs computed from stored hashes), and process RSS before, after generation and after the
 * proofs (the tree is never held in memory, so RSS should not grow with N).
 *
 *   node bench/ledger-scale.ts [--entries 100000] [--proofs 10000] [--data-parent /tmp]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { AuditIndex } from '../src/ledger/audit-index.ts';
import { Ledger } from '../src/ledger/log.ts';
import { verifyInclusion } from '../src/ledger/merkle.ts';
import { verifyLedger } from '../src/ledger/verify.ts';
import { mib, percentile, readDraft, tempDatabase } from './ledger-common.ts';

const { values } = parseArgs({
  options: { entries: { type: 'string', default: '100000' }, proofs: { type: 'string', default: '10000' }, 'data-parent': { type: 'string', default: os.tmpdir() } },
});
const total = Number(values.entries);
const proofs = Number(values.proofs);
const BATCH = 1000;

const tmp = await tempDatabase(values['data-parent']);
const index = new AuditIndex(tmp.db);
const ledger = await Ledger.open(tmp.db, { entryOps: index.ops });
global.gc?.();
const rss0 = process.memoryUsage().rss;

let t0 = performance.now();
for (let start = 0; start < total; start += BATCH) {
  const n = Math.min(BATCH, total - start);
  // Two commits in flight, so one is sealed while the other is written.
  await Promise.all([
    ledger.commit({ entries: Array.from({ length: Math.ceil(n / 2) }, (_, i) => readDraft(start + i)) }),
    ledger.commit({ entries: Array.from({ length: Math.floor(n / 2) }, (_, i) => readDraft(start + Math.ceil(n / 2) + i)) }),
  ].filter((_, i) => i === 0 || Math.floor(n / 2) > 0));
}
const genSeconds = (performance.now() - t0) / 1000;
global.gc?.();
const rss1 = process.memoryUsage().rss;

t0 = performance.now();
const verified = await verifyLedger(tmp.db);
const verifySeconds = (performance.now() - t0) / 1000;
if (!verified.ok) throw new Error(`verification failed: ${verified.message}`);

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
global.gc?.();
const rss2 = process.memoryUsage().rss;
await ledger.close();
await tmp.remove();

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`ledger of ${fmt(size)} entries (with AuditEvent index riders)`);
console.log(`  generation            ${fmt(size / genSeconds)} entries/s through Ledger.commit (${genSeconds.toFixed(1)} s, ${BATCH} per synced batch)`);
console.log(`  full verification     ${fmt(size / verifySeconds)} entries/s (${verifySeconds.toFixed(2)} s; target ≥ 500,000/s)`);
console.log(`  inclusion proof       p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms over ${fmt(proofs)} random indexes (target ≤ 1 ms)`);
console.log(`  RSS                   ${mib(rss0)} MiB before, ${mib(rss1)} MiB after generation, ${mib(rss2)} MiB after the proofs (growth ${mib(rss2 - rss0)} MiB; target ≤ 64 MiB)`);
