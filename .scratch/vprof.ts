import path from 'node:path';
import { openDatabase } from '../src/storage/db.ts';
import { verifyLedger } from '../src/ledger/verify.ts';
const dir = process.argv[2]!;
const workers = Number(process.argv[3] ?? 0);
const db = await openDatabase(path.join(dir, 'db'));
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const r = await verifyLedger(db, { workers });
  const s = (performance.now() - t0) / 1000;
  console.log(r.ok, r.ok ? r.size : r, (r.ok ? r.size : 0) / s | 0, 'entries/s');
}
await db.close();
