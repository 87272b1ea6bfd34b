/**
 * Cost of the start-up key check per version, beside the other full-mode checks. Builds (once) a store of
 * PATIENTS patients, each with OBS Observations and an update of the Patient, through the real server, then times
 * checkRecords, fsck (blocks: all) and checkKeys on it, RUNS times each.
 *   node bench/key-check.ts [dir] [patients] [obs]   (docs/ledger.md §11)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { loadDevIssuer } from '../src/consent/dev-issuer.ts';
import { checkKeys } from '../src/fhir/key-check.ts';
import { checkRecords } from '../src/fhir/store-check.ts';
import { fsck } from '../src/ledger/fsck.ts';
import { openDatabase } from '../src/storage/db.ts';
import { openKeyFile } from '../src/storage/keyring.ts';

const [dir = '/tmp/kc-bench', p = '150', o = '20'] = process.argv.slice(2);
const PATIENTS = Number(p), OBS = Number(o), RUNS = 5;
const env = { DATA_DIR: dir, MASTER_KEY_PASSPHRASE: 'bench', LOG_LEVEL: 'silent', LEDGER_VERIFY_ON_START: 'tail' };

if (!(await fs.stat(path.join(dir, 'db', 'CURRENT')).catch(() => undefined))) {
  const config = loadConfig(env);
  const app = await buildApp(config, { logger: false });
  const token = await (await loadDevIssuer(config)).sign({ sub: 'bench', scope: 'system/*.cruds' });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
  for (let i = 0; i < PATIENTS; i++) {
    const pid = `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const entry: unknown[] = [{ fullUrl: pid, resource: { resourceType: 'Patient', name: [{ family: `Bench${i}`, given: ['Key'] }], birthDate: '1970-01-01', gender: 'female' }, request: { method: 'POST', url: 'Patient' } }];
    for (let j = 0; j < OBS; j++) {
      entry.push({ resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' }] }, subject: { reference: pid }, effectiveDateTime: `2024-01-${String((j % 28) + 1).padStart(2, '0')}T10:00:00Z`, valueQuantity: { value: 100 + j, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } }, request: { method: 'POST', url: 'Observation' } });
    }
    const res = await app.http.inject({ method: 'POST', url: '/fhir', headers, payload: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    if (res.statusCode !== 200) throw new Error(`transaction ${res.statusCode}: ${res.body.slice(0, 300)}`);
    const id = /Patient\/([^/]+)/.exec(JSON.parse(res.body).entry[0].response.location as string)![1]!;
    const upd = await app.http.inject({ method: 'PUT', url: `/fhir/Patient/${id}`, headers, payload: JSON.stringify({ resourceType: 'Patient', id, name: [{ family: `Bench${i}`, given: ['Key', 'Updated'] }], birthDate: '1970-01-01' }) });
    if (upd.statusCode !== 200) throw new Error(`update ${upd.statusCode} ${upd.body.slice(0, 300)}`);
  }
  await app.close();
}

const keyStore = await openKeyFile({ dataDir: dir, passphrase: 'bench', warn: () => undefined, existingOnly: true });
const db = await openDatabase(path.join(dir, 'db'));
const time = async (label: string, per: number, fn: () => Promise<unknown>) => {
  const ms: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const med = ms[Math.floor(ms.length / 2)]!;
  console.log(`${label.padEnd(34)} median ${med.toFixed(1)} ms (min ${ms[0]!.toFixed(1)}, max ${ms.at(-1)!.toFixed(1)})  = ${((med * 1000) / per).toFixed(1)} µs per version`);
};
const keys = await checkKeys(db, keyStore);
const versions = keys.dataKeys;
console.log(`store: ${versions} content versions, ${keys.keks} KEKs, problems ${keys.problems.length}`);
await time('checkRecords (keyless records)', versions, () => checkRecords(db));
await time('fsck blocks:all (ledger+blocks)', versions, () => fsck(db, { blocks: 'all' }));
await time('fsck blocks:checkpoints (ledger)', versions, () => fsck(db, { blocks: 'checkpoints' }));
await time('checkKeys (KEKs + data keys)', versions, () => checkKeys(db, keyStore));
await db.close();

// Breakdown: reading the version records alone, and one data-key unwrap (stamped: one GCM open; unstamped: a
// failed stamped attempt first).
{
  const { jsonSublevel, SUBLEVELS } = await import('../src/storage/db.ts');
  const db2 = await openDatabase(path.join(dir, 'db'));
  await time('iterate version records only', versions, async () => {
    for await (const _ of jsonSublevel(db2, SUBLEVELS.version).iterator({ fillCache: false } as {})) void _;
  });
  await db2.close();
  const { newKey, secretKey, wrapKey, dataKeyLabel } = await import('../src/storage/envelope.ts');
  const { unwrapDataKey } = await import('../src/storage/sealed-store.ts');
  const kek = secretKey(newKey());
  const a = { resourceType: 'Observation', id: 'o1', versionId: '1', cid: 'x', kek: 'patient/p', hmac: '', lastUpdated: '2025-06-01T12:00:00.000Z', method: 'POST' };
  const stamped = { ...a, wrappedKey: Buffer.from(wrapKey(kek, newKey(), dataKeyLabel(a.kek, a, a))).toString('base64url') };
  const legacy = { ...a, wrappedKey: Buffer.from(wrapKey(kek, newKey(), dataKeyLabel(a.kek, a))).toString('base64url') };
  for (const [label, addr] of [['unwrapDataKey stamped', stamped], ['unwrapDataKey unstamped (legacy)', legacy]] as const) {
    const N = 20000;
    await time(label, N, async () => { for (let i = 0; i < N; i++) unwrapDataKey(kek, addr)!.key.fill(0); });
  }
}
