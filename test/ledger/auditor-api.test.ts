/**
 * The auditor API end to end on a real node: a workload, then every path of the issue over HTTP, with proofs
 * verified by the pure RFC 9162 verifiers against the signed checkpoints; who may call what; bad parameters;
 * reading the log is itself audited; the verifier CLI against the running node and on an offline bundle.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { main as verifyCli } from '../../src/cli/verify.ts';
import { verifyBundle } from '../../src/ledger/bundle.ts';
import { fromBase64, parseEntry } from '../../src/ledger/entry.ts';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.ts';
import { openCheckpoint, parseVerifierKey } from '../../src/ledger/note.ts';
import { closedPort } from '../helpers/net.ts';
import { startServer } from '../helpers/server.ts';

const server = await startServer(t, { LEDGER_CHECKPOINT_ENTRIES: '8', LEDGER_CHECKPOINT_INTERVAL_MS: '50' });
const origin = server.baseUrl.replace(/\/fhir$/, '');
const auditor = await server.token({ scope: 'system/AuditEvent.rs' });
const clinician = await server.token({ scope: 'system/Patient.cruds' });

async function get(p: string, token?: string) {
  const res = await fetch(`${origin}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body, type: res.headers.get('content-type') ?? '', headers: res.headers };
}

// A workload: creates, reads, updates, a denial.
const ids: string[] = [];
for (let i = 0; i < 12; i++) {
  const created = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: `P${i}` }] } });
  ids.push(created.body.id);
  await server.fhir(`Patient/${created.body.id}`);
}
await server.fhir('Patient/does-not-exist');
await new Promise((r) => setTimeout(r, 200));

t.test('public: latest checkpoint (text/plain), verifier key, JWKS', async (t) => {
  const key = await get('/ledger/key');
  t.equal(key.status, 200);
  t.match(key.type, /^text\/plain/);
  const verifier = parseVerifierKey(key.text);
  const jwks = await get('/ledger/jwks.json');
  t.match(jwks.body, { keys: [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', kid: Buffer.from(verifier.keyId).toString('hex') }] });
  t.same(Buffer.from(jwks.body.keys[0].x, 'base64url'), Buffer.from(verifier.publicKey), 'JWKS and note key are the same key');
  const cp = await get('/ledger/checkpoint');
  t.equal(cp.status, 200);
  t.match(cp.type, /^text\/plain/);
  const opened = openCheckpoint(cp.text, verifier);
  t.ok(opened.size >= 24, `checkpoint of ${opened.size} entries`);
  t.equal(opened.origin, verifier.name);
});

t.test('auditors only: 401 without a token, 403 without the scope, both audited', async (t) => {
  const before = server.app.ledger.size();
  const anonymous = await get('/ledger/entries?start=0&end=1');
  t.equal(anonymous.status, 401);
  t.equal(anonymous.body.resourceType, 'OperationOutcome');
  const denied = await get('/ledger/entries?start=0&end=1', clinician);
  t.equal(denied.status, 403);
  t.equal(denied.body.resourceType, 'OperationOutcome');
  const entries = await server.app.ledger.getEntries(before, server.app.ledger.size());
  t.match(entries.map((e) => parseEntry(e.bytes)), [
    { interaction: 'ledger-read', status: 401, operation: '/ledger/entries' },
    { interaction: 'ledger-read', status: 403, error: 'ERR_NOT_AUDITOR', agent: { sub: 'test-user' } },
  ]);
});

t.test('bad parameters are 400 OperationOutcomes', async (t) => {
  for (const p of [
    '/ledger/entries?start=x&end=1', '/ledger/entries?start=2&end=1', '/ledger/entries?start=0&end=5000', '/ledger/entries?start=0',
    '/ledger/entries?start=0&end=1&start=0', '/ledger/entries?start=0&end=1&foo=1', '/ledger/entries?start=0&end=999999',
    '/ledger/proof/inclusion?index=5&size=5', '/ledger/proof/inclusion?index=-1&size=5', '/ledger/proof/inclusion?index=0&size=99999',
    '/ledger/proof/consistency?from=5&to=4', '/ledger/proof/consistency?from=1&to=1e3', '/ledger/bundle?index=99999', '/ledger/bundle',
    '/ledger/checkpoints?limit=x', '/ledger/checkpoints?limit=1001', '/ledger/checkpoints?limit=100000000',
  ]) {
    const res = await get(p, auditor);
    t.equal(res.status, 400, p);
    t.equal(res.body?.resourceType, 'OperationOutcome', `${p} is an OperationOutcome`);
  }
  t.match((await get('/ledger/checkpoints?limit=1001', auditor)).body, { issue: [{ diagnostics: /limit.*1000/ }] }, 'says the maximum');
  for (const p of ['/ledger/checkpoints?limit=1000', '/ledger/checkpoints?limit=0', '/ledger/checkpoints']) t.equal((await get(p, auditor)).status, 200, p);
});

t.test('entries, inclusion and consistency proofs verify against the signed checkpoints', async (t) => {
  const verifier = parseVerifierKey((await get('/ledger/key')).text);
  const history = await get('/ledger/checkpoints', auditor);
  t.equal(history.status, 200);
  const cps = history.body.map((r: { note: string }) => openCheckpoint(r.note, verifier));
  t.ok(cps.length >= 2, `${cps.length} checkpoints`);
  const last = cps.at(-1)!;
  const entries = await get(`/ledger/entries?start=0&end=${last.size}`, auditor);
  t.equal(entries.body.length, last.size);
  for (const item of entries.body) {
    const bytes = Buffer.from(item.entry, 'utf8');
    t.equal(item.leafHash, Buffer.from(leafHash(bytes)).toString('base64'));
    t.equal(parseEntry(bytes).seq, item.index);
  }
  for (const index of [0, 1, Math.floor(last.size / 2), last.size - 1]) {
    const res = await get(`/ledger/proof/inclusion?index=${index}&size=${last.size}`, auditor);
    t.equal(res.status, 200);
    t.same(Object.keys(res.body).sort(), ['index', 'leafHash', 'proof', 'size']);
    t.equal(res.body.leafHash, entries.body[index].leafHash);
    t.ok(verifyInclusion(fromBase64(res.body.leafHash), index, last.size, res.body.proof.map(fromBase64), last.root), `inclusion of ${index}`);
    const wrong = res.body.proof.map(fromBase64);
    if (wrong.length) {
      wrong[0] = new Uint8Array(32);
      t.notOk(verifyInclusion(fromBase64(res.body.leafHash), index, last.size, wrong, last.root), 'a corrupted proof fails');
    }
  }
  for (let i = 1; i < cps.length; i++) {
    const res = await get(`/ledger/proof/consistency?from=${cps[i - 1].size}&to=${cps[i].size}`, auditor);
    t.same(Object.keys(res.body).sort(), ['from', 'proof', 'to']);
    t.ok(verifyConsistency(cps[i - 1].size, cps[i].size, res.body.proof.map(fromBase64), cps[i - 1].root, cps[i].root), `consistency ${cps[i - 1].size} → ${cps[i].size}`);
  }
});

t.test('an offline bundle verifies with the key alone, by API and by the CLI', async (t) => {
  const key = (await get('/ledger/key')).text.trim();
  const res = await get('/ledger/bundle?index=3', auditor);
  t.equal(res.status, 200);
  t.match(res.body, { index: 3, format: 'sealed-fhir proof bundle v1', tlogProof: /^c2sp\.org\/tlog-proof@v1\nextra /, key });
  t.match(verifyBundle(res.body, parseVerifierKey(key)), { ok: true, index: 3 });
  t.match(verifyBundle(res.body.tlogProof, parseVerifierKey(key)), { ok: true, index: 3 }, 'the text form alone');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bundle-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'bundle.json');
  await fs.writeFile(file, res.text);
  const lines: string[] = [];
  t.equal(await verifyCli(['--bundle', file, '--key', key], (l) => lines.push(l)), 0, lines.join('\n'));
  const tampered = { ...res.body, entry: res.body.entry.replace('"status":', '"status": ') };
  await fs.writeFile(file, JSON.stringify(tampered));
  t.equal(await verifyCli(['--bundle', file, '--key', key], () => undefined), 1, 'an altered bundle fails');
  t.match(verifyBundle({ ...res.body, format: 'sealed-fhir proof bundlf v1' }, parseVerifierKey(key)), { ok: false, code: 'ERR_BUNDLE_MALFORMED' }, 'an unknown format fails');
  const otherKey = (await import('../../src/ledger/note.ts')).verifierKeyString('other.example/log', new Uint8Array(32).fill(3));
  await fs.writeFile(file, JSON.stringify({ ...res.body, key: otherKey }));
  const noted: string[] = [];
  t.equal(await verifyCli(['--bundle', file, '--key', key], (l) => noted.push(l)), 0, 'the bundle\'s own key is never trusted over --key');
  t.match(noted.join('\n'), /note: the bundle names another key/, 'but a mismatch is said');
  const text = res.body.tlogProof.replace(/\nindex 3\n/, '\nindex 4\n');
  await fs.writeFile(file, text);
  t.equal(await verifyCli(['--bundle', file, '--key', key], () => undefined), 1, 'a proof for another index fails');
});

t.test('the verifier CLI checks the whole running log over HTTP', async (t) => {
  const key = (await get('/ledger/key')).text.trim();
  const lines: string[] = [];
  const code = await verifyCli(['--url', server.baseUrl, '--key', key, '--token', auditor], (l) => lines.push(l));
  t.equal(code, 0, lines.join('\n'));
  t.match(lines.at(-1), /^OK: \d+ entries and \d+ checkpoints verified/);
  t.equal(await verifyCli(['--url', server.baseUrl, '--key', key], () => undefined), 1, 'without a token it cannot read');
  t.equal(await verifyCli(['--url', server.baseUrl], () => undefined), 2, 'without a key it refuses to start');
  const other = 'other.example/log+' + (await import('../../src/ledger/note.ts')).verifierKeyString('other.example/log', new Uint8Array(32).fill(3)).split('+').slice(1).join('+');
  t.equal(await verifyCli(['--url', server.baseUrl, '--key', other, '--token', auditor], () => undefined), 1, 'a wrong key fails');
  // A node that cannot be reached: the cause, not fetch's bare "fetch failed".
  const closed = await closedPort();
  const said: string[] = [];
  t.equal(await verifyCli(['--url', `http://127.0.0.1:${closed}/fhir`, '--key', key, '--token', auditor], (l) => said.push(l)), 1, 'an unreachable node fails');
  t.match(said.join('\n'), /FAIL: GET http:\/\/127\.0\.0\.1:\d+\/ledger\/checkpoints.*: ECONNREFUSED/);
});

t.test('reading the log is audited', async (t) => {
  const before = server.app.ledger.size();
  await get('/ledger/proof/inclusion?index=0&size=1', auditor);
  const [entry] = await server.app.ledger.getEntries(before, before + 1);
  t.match(parseEntry(entry!.bytes), { interaction: 'ledger-read', status: 200, operation: '/ledger/proof/inclusion', query: 'index=0&size=1', agent: { sub: 'test-user' } });
});
