/**
 * What LevelDB's write buffer (memtable) size costs the ledger: the same audited appends (entries, stored hashes
 * and AuditEvent index riders, 64 concurrent writers) into a fresh store per size, measured as process CPU per
 * append (main thread, LevelDB's writes and its compaction thread together) beside the rate and the RSS. Sizes
 * alternate and repeat, so that a change in the machine's load shows as spread instead of as a difference.
 *
 *   node bench/write-buffer.ts [--entries 600000] [--sizes 4,32] [--rounds 2]
 *
 * Not part of `npm run bench` (about a minute per store); docs/benchmarks.md records its figures.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AuditIndex } from '../src/ledger/audit-index.ts';
import { Ledger } from '../src/ledger/log.ts';
import { openDatabase } from '../src/storage/db.ts';
import { readDraft } from './ledger-common.ts';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '600000' },
    sizes: { type: 'string', default: '4,32' },
    rounds: { type: 'string', default: '2' },
    'data-parent': { type: 'string', default: os.tmpdir() },
  },
});
const entries = Number(args.entries);
const sizes = args.sizes.split(',').map(Number);
const rounds = Number(args.rounds);
if (!Number.isInteger(entries) || entries < 1000 || sizes.some((s) => !Number.isInteger(s) || s < 1) || !Number.isInteger(rounds) || rounds < 1) {
  throw new Error('--entries ≥ 1000, --sizes whole MiB ≥ 1, --rounds ≥ 1');
}

interface Result {
  mib: number;
  perSecond: number;
  cpuMicrosPerEntry: number;
  rssMiB: number;
  files: number;
}

async function run(mib: number): Promise<Result> {
  const dir = await fs.mkdtemp(path.join(args['data-parent'], 'sealed-write-buffer-'));
  try {
    const db = await openDatabase(path.join(dir, 'db'), { writeBufferMiB: mib });
    const ledger = await Ledger.open(db, { entryOps: new AuditIndex(db).ops });
    const cpu = process.cpuUsage();
    const start = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < entries) await ledger.commit({ entries: [readDraft(next++)] });
    }));
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    const rssMiB = process.memoryUsage().rss / 2 ** 20;
    await ledger.close();
    await db.close();
    return {
      mib,
      perSecond: entries / seconds,
      cpuMicrosPerEntry: (used.user + used.system) / entries,
      rssMiB,
      files: (await fs.readdir(path.join(dir, 'db'))).filter((f) => f.endsWith('.ldb')).length,
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

console.log(`write buffer: ${entries.toLocaleString('en')} audited appends per store, sizes ${sizes.join(', ')} MiB, ${rounds} rounds; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const results: Result[] = [];
for (let round = 0; round < rounds; round++) {
  for (const mib of sizes) {
    const r = await run(mib);
    results.push(r);
    console.log(`${String(mib).padStart(5)} MiB  ${r.cpuMicrosPerEntry.toFixed(1).padStart(6)} µs CPU/append  ${r.perSecond.toFixed(0).padStart(6)} appends/s  RSS ${r.rssMiB.toFixed(0)} MiB  ${r.files} tables`);
  }
}
const base = sizes[0]!;
const mean = (mib: number) => {
  const own = results.filter((r) => r.mib === mib);
  return own.reduce((sum, r) => sum + r.cpuMicrosPerEntry, 0) / own.length;
};
for (const mib of sizes.slice(1)) console.log(`CPU per append, ${mib} MiB / ${base} MiB: ${(mean(mib) / mean(base)).toFixed(2)}`);
