/**
 * Durable appends per second with 64 concurrent writers: each writer commits one entry at a time and waits until
 * it is durable (synced), as an audited request does. Group commit makes them share synced batches. Measured
 * bare, with the AuditEvent index riders, and with riders plus checkpoints (default policy), in one run.
 *
 *   node bench/ledger-append.ts [--seconds 5] [--writers 64]
 */
import { parseArgs } from 'node:util';
import { AuditIndex } from '../src/ledger/audit-index.ts';
import { Checkpointer } from '../src/ledger/checkpoint.ts';
import { Ledger } from '../src/ledger/log.ts';
import { signerFromSeed } from '../src/ledger/note.ts';
import { createHeliaBlockStore } from '../src/storage/helia-blocks.ts';
import os from 'node:os';
import { fsyncP50, readDraft, tempDatabase } from './ledger-common.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, writers: { type: 'string', default: '64' } } });
const seconds = Number(values.seconds);
const writers = Number(values.writers);

async function run(label: string, withIndex: boolean, withCheckpoints: boolean) {
  const tmp = await tempDatabase();
  const index = new AuditIndex(tmp.db);
  const ledger = await Ledger.open(tmp.db, withIndex ? { entryOps: index.ops } : {});
  let batches = 0;
  ledger.onDurable(() => batches++);
  const blocks = withCheckpoints ? await createHeliaBlockStore({ db: tmp.db }) : undefined;
  const checkpointer = blocks
    ? await Checkpointer.open({ db: tmp.db, ledger, blocks, signer: signerFromSeed('bench/ledger', new Uint8Array(32).fill(1)), origin: 'bench/ledger', everyEntries: 1000, everyMs: 1000, onError: (e) => console.error(e) })
    : undefined;
  const deadline = performance.now() + seconds * 1000;
  let appended = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    for (let i = w; performance.now() < deadline; i += writers) {
      await ledger.commit({ entries: [readDraft(i)] });
      appended++;
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  await checkpointer?.close();
  const checkpoints = checkpointer ? (await checkpointer.list()).length : 0;
  await ledger.close();
  await blocks?.close();
  await tmp.remove();
  const rate = appended / elapsed;
  console.log(`${label.padEnd(38)} ${Math.round(rate).toLocaleString('en-US').padStart(8)} durable appends/s  (${appended} in ${elapsed.toFixed(1)} s, ${batches} synced batches, ${(appended / batches).toFixed(1)} entries/batch${checkpointer ? `, ${checkpoints} checkpoints` : ''})`);
  return rate;
}

console.log(`durable appends, ${writers} concurrent writers, ${seconds} s each (target ≥ 20,000/s on 2 cores)`);
console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, fsync p50 ${(await fsyncP50(os.tmpdir())).toFixed(2)} ms`);
await run('ledger only', false, false);
await run('+ AuditEvent index riders', true, false);
await run('+ riders + checkpoints (N=1000, T=1s)', true, true);
