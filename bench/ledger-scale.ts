/**
 * The ledger at scale: N entries generated directly through Ledger.commit (1,000 per synced batch, with the
 * AuditEvent index riders); then, in a FRESH process that opens the store (as a restarted server would), full
 * verification (verifyLedger) in entries/s, inclusion-proof latency at size N (random indexes, proofs from stored
 * hashes) and RSS: at open, after verification and after the proofs. The tree is never held in memory, so the
 * RSS of the measuring process should not depend on N.
 *
 *   node --expose-gc bench/ledger-scale.ts [--entries 100000] [--proofs 10000] [--data-parent /tmp]
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AuditIndex } from '../src/ledger/audit-index.ts';
import { Ledger } from '../src/ledger/log.ts';
import { verifyInclusion } from '../src/ledger/merkle.ts';
import { verifyLedger } from '../src/ledger/verify.ts';
import { openDatabase } from '../src/storage/db.ts';
import { mib, percentile, readDraft, tempDatabase } from './ledger-common.ts';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    proofs: { type: 'string', default: '10000' },
    'data-parent': { type: 'string', default: os.tmpdir() },
    measure: { type: 'string' },
  },
});
const proofs = Number(values.proofs);
const BATCH = 1000;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rss = () => {
  global.gc?.();
  return process.memoryUsage().rss;
};
const heapUsed = () => mib(process.memoryUsage().heapUsed);

if (values.measure) {
  const db = await openDatabase(path.join(values.measure, 'db'));
  const ledger = await Ledger.open(db);
  const rss0 = rss();
  let t0 = performance.now();
  const verified = await verifyLedger(db);
  const verifySeconds = (performance.now() - t0) / 1000;
  if (!verified.ok) throw new Error(`verification failed: ${verified.message}`);
  const rss1 = rss();
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
  const rss2 = rss();
  await ledger.close();
  await db.close();
  console.log(`  full verification     ${fmt(size / verifySeconds)} entries/s (${verifySeconds.toFixed(2)} s; target ≥ 500,000/s)`);
  console.log(`  inclusion proof       p50 ${percentile(latencies, 50).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms over ${fmt(proofs)} random indexes (target ≤ 1 ms)`);
  console.log(`  RSS (fresh process)   ${mib(rss0)} MiB at open, ${mib(rss1)} MiB after verification, ${mib(rss2)} MiB after the proofs (V8 heap in use after gc: ${heapUsed()} MiB)`);
} else {
  const total = Number(values.entries);
  const tmp = await tempDatabase(values['data-parent']);
  const index = new AuditIndex(tmp.db);
  const ledger = await Ledger.open(tmp.db, { entryOps: index.ops });
  const t0 = performance.now();
  for (let start = 0; start < total; start += BATCH) {
    const n = Math.min(BATCH, total - start);
    await ledger.commit({ entries: Array.from({ length: n }, (_, i) => readDraft(start + i)) });
  }
  const genSeconds = (performance.now() - t0) / 1000;
  await ledger.close();
  await tmp.db.close();
  console.log(`ledger of ${fmt(total)} entries (with AuditEvent index riders)`);
  console.log(`  generation            ${fmt(total / genSeconds)} entries/s through Ledger.commit (${genSeconds.toFixed(1)} s, ${BATCH} per synced batch)`);
  const child = spawnSync(process.execPath, ['--expose-gc', import.meta.filename, '--measure', tmp.dir, '--proofs', String(proofs)], { stdio: 'inherit' });
  await tmp.remove();
  process.exitCode = child.status ?? 1;
}
