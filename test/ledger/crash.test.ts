import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ledger } from '../../src/ledger/log.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { toBase64 } from '../../src/ledger/entry.ts';
import { tempDb } from './fixtures/helpers.ts';

// The child needs Node 24's type stripping whichever node runs tap.
const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const writer = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

t.test('SIGKILL during a write load: every acknowledged entry is in the log and the log verifies', async (t) => {
  const tmp = await tempDb(t);
  await tmp.db.close();
  const location = join(tmp.dir, 'db');
  for (const round of [1, 2]) {
    const child = spawn(node, [writer, location], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, string>();
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', () => resolve());
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          const [seq, hash] = line.split(' ');
          if (hash !== undefined) acked.set(Number(seq), hash);
        }
        if (acked.size >= 400 && child.exitCode === null) child.kill('SIGKILL');
      });
    });
    t.equal(child.signalCode, 'SIGKILL', `round ${round}: killed mid-load`);
    const db = await tmp.reopen();
    const ledger = await Ledger.open(db);
    const maxAcked = Math.max(...acked.keys());
    t.ok(ledger.size() > maxAcked, `round ${round}: size ${ledger.size()} covers every ack (max ${maxAcked})`);
    const entries = await ledger.getEntries(0, ledger.size());
    const lost = [...acked].filter(([seq, hash]) => toBase64(entries[seq]!.leafHash) !== hash);
    t.same(lost, [], `round ${round}: acknowledged entries are stored unchanged`);
    t.ok((await verifyLedger(db)).ok, `round ${round}: the log verifies`);
    await ledger.close();
    await db.close();
  }
});
