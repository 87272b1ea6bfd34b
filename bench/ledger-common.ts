/**
 * Shared by the ledger benchmarks: a temporary LevelDB, a realistic entry draft (a read of an encrypted
 * Observation by a practitioner, ~450 bytes canonical), and small statistics helpers.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../src/storage/db.ts';
import type { EntryDraft } from '../src/ledger/types.ts';

export async function tempDatabase(parent = os.tmpdir()): Promise<{ db: Database; dir: string; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(parent, 'sealed-ledger-bench-'));
  const db = await openDatabase(path.join(dir, 'db'));
  return {
    db,
    dir,
    async remove() {
      if (db.status === 'open') await db.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export function readDraft(i: number): EntryDraft {
  return {
    interaction: 'read',
    status: 200,
    agent: { sub: `user-${i % 97}`, issuer: 'https://idp.example/realms/hospital', fhirUser: `Practitioner/${i % 97}`, clientId: 'ehr-app', address: '10.0.0.7' },
    entity: [{
      reference: `Observation/${i}`,
      version: '1',
      cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku',
      hmac: 'Jv1Ff3V2cH8cZb0sV5m8gmbVf8b7w0kqgN6oJr0qEzU',
      patient: `Patient/${i % 5000}`,
    }],
  };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

/** p50 of write(4 KiB) + fdatasync in `dir`: the floor under any durable append. */
export async function fsyncP50(dir: string, rounds = 100): Promise<number> {
  const handle = await fs.open(path.join(dir, 'fsync-probe'), 'w');
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const start = performance.now();
      await handle.write(Buffer.alloc(4096, 0x5a));
      await handle.datasync();
      times.push(performance.now() - start);
    }
  } finally {
    await handle.close();
    await fs.rm(path.join(dir, 'fsync-probe'), { force: true });
  }
  return percentile(times.sort((a, b) => a - b), 50);
}
