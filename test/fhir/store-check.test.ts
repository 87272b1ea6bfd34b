/**
 * The records a read goes through and the derived indexes are held to the ledger and the stored versions: a
 * changed head, version or history record is found by `npm run verify -- --data-dir` and stops the server at
 * start; a damaged KEK or wrapped data key (or a changed lastUpdated, bound into the data key's label) is found
 * with the master key: by the verifier when MASTER_KEY_PASSPHRASE is set, and at start; a changed or planted
 * AuditEvent index key is found by the verifier; a changed search-index key is found by
 * `npm run reindex -- --check`. Each case changes one thing in a fresh copy of one stopped store.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.ts';
import { main as reindexCli } from '../../src/cli/reindex.ts';
import { main as verifyCli } from '../../src/cli/verify.ts';
import { loadConfig } from '../../src/config.ts';
import { checkRecords } from '../../src/fhir/store-check.ts';
import { bytesSublevel, jsonSublevel, openDatabase, SUBLEVELS, stringSublevel, type Database } from '../../src/storage/db.ts';
import { startServer } from '../helpers/server.ts';

const clean = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-store-check-'));
t.teardown(() => fs.rm(clean, { recursive: true, force: true }));
const server = await startServer(t, { DATA_DIR: clean });
const patient = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: 'Check' }], birthDate: '1970-01-01' } });
await server.fhir(`Patient/${patient.body.id}`, { method: 'PUT', body: { resourceType: 'Patient', id: patient.body.id, name: [{ family: 'Checked' }], birthDate: '1970-01-02' } });
await server.fhir('Observation', {
  method: 'POST',
  body: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient.body.id}` } },
});
await server.fhir('Patient/gone', { method: 'PUT', body: { resourceType: 'Patient', id: 'gone' } });
await server.fhir('Patient/gone', { method: 'DELETE' });
// Outside any patient compartment: sealed under the node KEK.
await server.fhir('Organization', { method: 'POST', body: { resourceType: 'Organization', name: 'Check' } });
await server.stop();
const env = (dir: string) => ({ DATA_DIR: dir, MASTER_KEY_PASSPHRASE: 'test passphrase', LOG_LEVEL: 'silent', BASE_URL: server.baseUrl });

/** A copy of the clean store with `change` applied through LevelDB (an attacker who rewrites records). */
async function tampered(t: Test, change: (db: Database) => Promise<void>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-store-check-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.cp(clean, dir, { recursive: true });
  const db = await openDatabase(path.join(dir, 'db'));
  await change(db);
  await db.close();
  return dir;
}

/** The offline verifier, by default without MASTER_KEY_PASSPHRASE (it then says the wrapped keys were not checked). */
async function verify(dir: string, passphrase?: string): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await verifyCli(['--data-dir', dir], (l) => lines.push(l), passphrase === undefined ? {} : { MASTER_KEY_PASSPHRASE: passphrase });
  return { code, out: lines.join('\n') };
}

t.test('the clean store passes every check', async (t) => {
  const keyless = await verify(clean);
  t.equal(keyless.code, 0);
  t.match(keyless.out, /keys: NOT CHECKED: MASTER_KEY_PASSPHRASE is not set/, 'without the passphrase it says the keys were not checked');
  t.match(keyless.out, /OK: .* verified; wrapped keys NOT checked \(no MASTER_KEY_PASSPHRASE\)/);
  const keyed = await verify(clean, 'test passphrase');
  t.equal(keyed.code, 0, keyed.out);
  t.match(keyed.out, /keys: 3 KEKs unwrap under the master key, 5 data keys under their KEKs\n/, 'every KEK and data key, all stamped');
  t.notMatch(keyed.out, /NOT CHECKED/);
  t.equal((await verify(clean, 'wrong passphrase')).code, 2, 'a wrong passphrase is a usage error');
  // A development node (no MASTER_KEY_PASSPHRASE) keeps its generated passphrase in keys/master.passphrase: used.
  const dev = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-store-check-dev-'));
  t.teardown(() => fs.rm(dev, { recursive: true, force: true }));
  await fs.cp(clean, dev, { recursive: true });
  await fs.writeFile(path.join(dev, 'keys', 'master.passphrase'), 'test passphrase\n');
  const devRun = await verify(dev);
  t.equal(devRun.code, 0, devRun.out);
  t.match(devRun.out, /note: MASTER_KEY_PASSPHRASE is not set: using the development passphrase file/);
  t.match(devRun.out, /keys: 3 KEKs unwrap under the master key, 5 data keys under their KEKs\n/, 'the keys are checked with it');
  const emptyRun = await verify(dev, '');
  t.equal(emptyRun.code, 0, 'an empty MASTER_KEY_PASSPHRASE is not set, as the server reads it');
  t.match(emptyRun.out, /note: MASTER_KEY_PASSPHRASE is not set: using the development passphrase file/);
  const db = await openDatabase(path.join(clean, 'db'));
  const result = await checkRecords(db);
  await db.close();
  t.same(result.problems, []);
  t.equal(result.versions, 6);
  t.equal(result.heads, 4);
  t.equal(await reindexCli(['--check'], env(clean), () => undefined), 0);
});

const recordCases: Array<[string, string, (db: Database) => Promise<void>]> = [
  ['a version record names another block', 'ERR_VERSION_MISMATCH', async (db) => {
    const versions = jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.version);
    const [[key, record]] = await versions.iterator({ limit: 1 }).all() as [[string, Record<string, unknown>]];
    const [, other] = (await versions.iterator().all()).find(([k, r]) => k !== key && r.cid)!;
    await versions.put(key, { ...record, cid: other.cid });
  }],
  ['a head is rolled back to an older version', 'ERR_HEAD_MISMATCH', async (db) => {
    const heads = jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.head);
    const versions = jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.version);
    const v1 = (await versions.iterator().all()).find(([, r]) => r.resourceType === 'Patient' && r.versionId === 1 && r.id === patient.body.id)!;
    await heads.put(`Patient/${patient.body.id}`, v1[1]);
  }],
  ['a version record changes its time', 'ERR_VERSION_UNRECORDED', async (db) => {
    const versions = jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.version);
    const [[key, record]] = await versions.iterator({ limit: 1 }).all() as [[string, Record<string, unknown>]];
    await versions.put(key, { ...record, t: (record.t as number) + 1 });
  }],
  ['a history pointer is deleted', 'ERR_HISTORY', async (db) => {
    const history = jsonSublevel<unknown>(db, SUBLEVELS.systemHistory);
    const [key] = await history.keys({ limit: 1 }).all();
    await history.del(key!);
  }],
  ['a version record changes its method', 'ERR_VERSION_MISMATCH', async (db) => {
    await alterPatientVersion(db, 1, (record) => ({ ...record, method: 'PUT' }));
  }],
  ['a version record moves to another compartment', 'ERR_VERSION_MISMATCH', async (db) => {
    await alterPatientVersion(db, 1, (record) => ({ ...record, patient: 'gone' }));
  }],
  ["a version record names another compartment's KEK", 'ERR_VERSION_KEK', async (db) => {
    await alterPatientVersion(db, 1, (record) => ({ ...record, kek: 'node' }));
  }],
  ['a head is planted', 'ERR_HEAD_EXTRA', async (db) => {
    const heads = jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.head);
    const [[, record]] = await heads.iterator({ limit: 1 }).all() as [[string, Record<string, unknown>]];
    await heads.put('Patient/planted', { ...record, id: 'planted' });
  }],
];

/** The version record of the checked Patient at `versionId` (version 1 is not the head: version 2 is). */
async function patientVersion(db: Database, versionId: number): Promise<[string, Record<string, unknown>]> {
  const versions = jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.version);
  const found = (await versions.iterator().all()).find(([, r]) => r.resourceType === 'Patient' && r.id === patient.body.id && r.versionId === versionId);
  return found!;
}

/** Stores `change` of the checked Patient's version record at `versionId` in its place; returns the new record. */
async function alterPatientVersion(db: Database, versionId: number, change: (record: Record<string, unknown>) => Record<string, unknown>): Promise<Record<string, unknown>> {
  const [key, record] = await patientVersion(db, versionId);
  const changed = change(record);
  await jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.version).put(key, changed);
  return changed;
}

/**
 * Cuts the stored JSON of the checked Patient's head, or of its version record at `versionId`, short (as a torn or
 * damaged write would): no longer valid JSON. Returns the record's key.
 */
async function truncatePatientRecord(db: Database, sublevel: 'head' | 'version', versionId = 2): Promise<string> {
  const key = sublevel === 'head' ? `Patient/${patient.body.id}` : (await patientVersion(db, versionId))[0];
  const level = stringSublevel(db, SUBLEVELS[sublevel]);
  const text = (await level.get(key))!;
  await level.put(key, text.slice(0, -5));
  return key;
}

/** Every wrapped key of a store (versions' data keys, KEKs), as base64url, base64 and hex. */
async function keyMaterial(dir: string): Promise<string[]> {
  const db = await openDatabase(path.join(dir, 'db'));
  const raw = [
    ...(await jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.version).values().all()).flatMap((r) => (typeof r.wrappedKey === 'string' ? [Buffer.from(r.wrappedKey, 'base64url')] : [])),
    ...(await bytesSublevel(db, SUBLEVELS.kek).values().all()).map((v) => Buffer.from(v)),
  ];
  await db.close();
  return raw.flatMap((b) => [b.toString('base64url'), b.toString('base64'), b.toString('hex')].map((s) => s.slice(0, 24)));
}

const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);

for (const [name, code, change] of recordCases) {
  t.test(`${name}: the verifier and the server at start find it`, async (t) => {
    const dir = await tampered(t, change);
    const result = await verify(dir);
    t.equal(result.code, 1, 'verify fails');
    t.match(result.out, code);
    await t.rejects(buildApp(loadConfig({ ...env(dir), PORT: '0' }), { logger: false }), { code: 'ERR_LEDGER_TAMPERED' }, 'the server refuses to start');
  });
}

// What only the keys can tell: the records still name the same blocks and hashes as the ledger, but the version (or
// every version under a KEK) can no longer be opened, or its lastUpdated is not the one it was sealed with.
const keyCases: Array<[string, string, (db: Database) => Promise<void>]> = [
  ["a byte of a version's wrapped key flipped", 'ERR_DATA_KEY_UNWRAP', async (db) => {
    await alterPatientVersion(db, 1, (record) => ({ ...record, wrappedKey: flip(record.wrappedKey as string, 40) }));
  }],
  ["a version's lastUpdated changed", 'ERR_DATA_KEY_UNWRAP', async (db) => {
    await alterPatientVersion(db, 1, (record) => ({ ...record, lastUpdated: '2001-01-01T00:00:00.000Z' }));
  }],
  ["the head's lastUpdated changed with its version's", 'ERR_DATA_KEY_UNWRAP', async (db) => {
    const changed = await alterPatientVersion(db, 2, (record) => ({ ...record, lastUpdated: '2001-01-01T00:00:00.000Z' }));
    await jsonSublevel<Record<string, unknown>>(db, SUBLEVELS.head).put(`Patient/${patient.body.id}`, changed);
  }],
  ["a byte of a patient's KEK flipped", 'ERR_KEK_UNWRAP', async (db) => {
    const keks = bytesSublevel(db, SUBLEVELS.kek);
    const wrapped = Uint8Array.from((await keks.get(`patient/${patient.body.id}`))!);
    wrapped[30]! ^= 1;
    await keks.put(`patient/${patient.body.id}`, wrapped);
  }],
  ['the node KEK deleted', 'ERR_KEK_MISSING', async (db) => {
    await bytesSublevel(db, SUBLEVELS.kek).del('node');
  }],
];

for (const [name, code, change] of keyCases) {
  t.test(`${name}: found with the keys (verifier with MASTER_KEY_PASSPHRASE, server at start), not without`, async (t) => {
    const dir = await tampered(t, change);
    const keyless = await verify(dir);
    t.equal(keyless.code, 0, 'without the master key nothing looks wrong...');
    t.match(keyless.out, /keys: NOT CHECKED/, '...and the verifier says what it did not check');
    const keyed = await verify(dir, 'test passphrase');
    t.equal(keyed.code, 1, 'with the master key the verifier fails');
    t.match(keyed.out, code);
    const material = await keyMaterial(dir);
    t.ok(material.every((m) => !keyed.out.includes(m)), 'no wrapped key in the output, in any encoding');
    await t.rejects(buildApp(loadConfig({ ...env(dir), PORT: '0' }), { logger: false }), { code: 'ERR_LEDGER_TAMPERED', message: new RegExp(code) }, 'full: the server refuses to start');
    await t.rejects(buildApp(loadConfig({ ...env(dir), PORT: '0', LEDGER_VERIFY_ON_START: 'ledger' }), { logger: false }), { code: 'ERR_LEDGER_TAMPERED' }, 'ledger: so does it');
  });
}

t.test("an erased patient (its KEK deleted) is not a problem: its versions are counted as erased", async (t) => {
  const dir = await tampered(t, (db) => bytesSublevel(db, SUBLEVELS.kek).del(`patient/${patient.body.id}`));
  const keyed = await verify(dir, 'test passphrase');
  t.equal(keyed.code, 0, keyed.out);
  t.match(keyed.out, /keys: 2 KEKs unwrap under the master key, 2 data keys under their KEKs; 3 versions under erased patient keys/);
});

t.test('a read of a version whose key was altered: 500 OperationOutcome, audited, and logged naming the version', async (t) => {
  const dir = await tampered(t, keyCases[0]![2]);
  const lines: string[] = [];
  const stream = { write: (line: string) => void lines.push(line) };
  // tail: the start-up check that would refuse this store is not run, as on a node whose store was damaged after start.
  const config = loadConfig({ ...env(dir), PORT: '0', LEDGER_VERIFY_ON_START: 'tail', LOG_LEVEL: 'info' });
  const app = await buildApp(config, { logger: { level: 'info', stream } });
  t.teardown(() => app.close());
  const { loadDevIssuer } = await import('../../src/consent/dev-issuer.ts');
  const token = await (await loadDevIssuer(config)).sign({ sub: 'reader', scope: 'system/*.cruds' });
  const before = app.ledger.size();
  const res = await app.http.inject({ method: 'GET', url: `/fhir/Patient/${patient.body.id}/_history/1`, headers: { authorization: `Bearer ${token}` } });
  t.equal(res.statusCode, 500);
  const outcome = JSON.parse(res.body);
  t.match(outcome, { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', diagnostics: 'Stored data could not be decrypted' }] });
  t.notMatch(res.body, /wrapped|unwrap|KEK/, 'the client learns nothing of which check failed');
  t.equal(app.ledger.size(), before + 1, 'the failed read is one ledger entry');
  const [last] = await app.ledger.getEntries(before, before + 1);
  t.match(JSON.parse(Buffer.from(last!.bytes).toString('utf8')), { interaction: 'vread', status: 500, error: 'ERR_DECRYPT', entity: [{ reference: `Patient/${patient.body.id}` }] });
  const logged = lines.map((l) => JSON.parse(l)).find((l) => l.level >= 50 && l.code === 'ERR_DECRYPT');
  t.ok(logged, 'logged at error level with its code');
  t.match(logged.err.message, `Patient/${patient.body.id}/_history/1: its wrapped data key does not unwrap under KEK patient/${patient.body.id}`);
});

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

t.test('a head or version record that is not valid JSON: the verifier and the start-up check name it', async (t) => {
  const cases: Array<[sublevel: 'head' | 'version', versionId: number, code: string]> = [
    ['head', 2, 'ERR_HEAD_MISMATCH'],
    ['version', 1, 'ERR_VERSION_RECORD'],
    // the newest version: the head has nothing to be held to, and is not reported besides
    ['version', 2, 'ERR_VERSION_RECORD'],
  ];
  for (const [sublevel, versionId, code] of cases) {
    let key = '';
    const dir = await tampered(t, async (db) => {
      key = await truncatePatientRecord(db, sublevel, versionId);
    });
    const named = `${sublevel} ${key}: the stored record is not valid JSON`;
    for (const passphrase of [undefined, 'test passphrase']) {
      const label = `${sublevel} ${versionId}, ${passphrase ? 'with' : 'without'} the keys`;
      const result = await verify(dir, passphrase);
      t.equal(result.code, 1, `${label}: verify fails`);
      t.match(result.out, `  ${code} at `, `${label}: its problem code`);
      t.match(result.out, named, `${label}: names the sublevel and key`);
      t.match(result.out, /FAIL: 1 problem\(s\)/, `${label}: one problem, nothing else taken for one`);
      t.notMatch(result.out, /decode/i, `${label}: not abstract-level's message`);
    }
    await t.rejects(
      buildApp(loadConfig({ ...env(dir), PORT: '0' }), { logger: false }),
      { code: 'ERR_LEDGER_TAMPERED', message: new RegExp(`${code}: ${escape(named)}`) },
      `${sublevel} ${versionId}: the server refuses to start, naming it`,
    );
  }
});

t.test('a read through a head or version record that is not valid JSON: 500 ERR_DECRYPT, audited, logged naming it', async (t) => {
  for (const [sublevel, url, interaction] of [
    ['head', `Patient/${patient.body.id}`, 'read'],
    ['head', `Patient?_id=${patient.body.id}`, 'search-type'],
    ['version', `Patient/${patient.body.id}/_history/1`, 'vread'],
  ] as const) {
    let key = '';
    const dir = await tampered(t, async (db) => {
      key = await truncatePatientRecord(db, sublevel, 1);
    });
    const lines: string[] = [];
    const stream = { write: (line: string) => void lines.push(line) };
    // tail: the start-up check that would refuse this store is not run, as on a node whose store was damaged after start.
    const config = loadConfig({ ...env(dir), PORT: '0', LEDGER_VERIFY_ON_START: 'tail', LOG_LEVEL: 'info' });
    const app = await buildApp(config, { logger: { level: 'info', stream } });
    const { loadDevIssuer } = await import('../../src/consent/dev-issuer.ts');
    const token = await (await loadDevIssuer(config)).sign({ sub: 'reader', scope: 'system/*.cruds' });
    const before = app.ledger.size();
    const res = await app.http.inject({ method: 'GET', url: `/fhir/${url}`, headers: { authorization: `Bearer ${token}` } });
    t.equal(res.statusCode, 500, url);
    t.match(JSON.parse(res.body), { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', diagnostics: 'Stored data could not be decrypted' }] }, url);
    const [last] = await app.ledger.getEntries(before, before + 1);
    t.match(JSON.parse(Buffer.from(last!.bytes).toString('utf8')), { interaction, status: 500, error: 'ERR_DECRYPT' }, `${url}: audited`);
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.level >= 50 && l.code === 'ERR_DECRYPT');
    t.match(logged?.err?.message, `${sublevel} ${key}: the stored record is not valid JSON`, `${url}: the log names the record`);
    await app.close();
  }
});

t.test('a missing or planted AuditEvent index key: the verifier finds it', async (t) => {
  for (const [label, code, change] of [
    ['missing', 'ERR_AUDIT_INDEX_MISSING', async (db: Database) => {
      const level = stringSublevel(db, SUBLEVELS.auditEntity);
      const [key] = await level.keys({ limit: 1 }).all();
      await level.del(key!);
    }],
    ['planted', 'ERR_AUDIT_INDEX_EXTRA', async (db: Database) => {
      await stringSublevel(db, SUBLEVELS.auditPatient).put('Patient/someone-else|0000000000000000', '');
    }],
  ] as const) {
    const result = await verify(await tampered(t, change));
    t.equal(result.code, 1, `${label}: verify fails`);
    t.match(result.out, code, label);
  }
});

t.test('a changed search-index key: reindex --check finds it', async (t) => {
  const dir = await tampered(t, async (db) => {
    const level = stringSublevel(db, SUBLEVELS.searchValue);
    const [key] = await level.keys({ gte: 'Patient/birthdate/', lt: 'Patient/birthdate0', limit: 1 }).all();
    await level.del(key!);
    // One day later: a birthdate search would now answer wrongly.
    await level.put(key!.replace(/\/(\d{15})~/, (_, low: string) => `/${String(Number(low) + 86_400_000).padStart(15, '0')}~`), '');
  });
  const lines: string[] = [];
  t.equal(await reindexCli(['--check'], env(dir), (l) => lines.push(l)), 1, 'reindex --check fails');
  t.match(lines.join('\n'), /ERR_INDEX_MISSING/);
  t.equal(await reindexCli(['--bogus'], env(dir), () => undefined), 2, 'unknown argument');
});

t.test('a changed or planted resource-ranges record: reindex --check finds it', async (t) => {
  for (const [label, change] of [
    ['changed', async (db: Database) => {
      const level = stringSublevel(db, SUBLEVELS.resourceRanges);
      const [[key, value]] = await level.iterator({ gte: 'Patient/', lt: 'Patient0', limit: 1 }).all();
      // One day later: a birthdate range test or sort would now answer wrongly, the full record still rightly.
      await level.put(key!, value!.replace(/\x1f(\d{15})~/, (_, low: string) => `\x1f${String(Number(low) + 86_400_000).padStart(15, '0')}~`));
    }],
    ['planted', async (db: Database) => {
      await stringSublevel(db, SUBLEVELS.resourceRanges).put('Observation/no-such-id', '\x1edate\x1f063871322400000~063871322400999\x1e');
    }],
  ] as const) {
    const lines: string[] = [];
    t.equal(await reindexCli(['--check'], env(await tampered(t, change)), (l) => lines.push(l)), 1, `${label}: reindex --check fails`);
    t.match(lines.join('\n'), label === 'changed' ? /ERR_INDEX_RANGES/ : /resource-ranges: ERR_INDEX_EXTRA/, label);
  }
});
