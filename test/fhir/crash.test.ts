/**
 * Crash safety of the atomic commit: a real server process under concurrent writes is killed with SIGKILL at a
 * random moment. After a restart every acknowledged write must be readable at its acknowledged version, its
 * ledger entry must be there, the index must agree with the stored versions, and the ledger must verify.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDevIssuer } from '../../src/consent/dev-issuer.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { freePort } from '../helpers/server.ts';

const ROUNDS = 3;

async function startChild(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['src/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('is serving FHIR R4')) resolve();
    });
    child.stderr!.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => reject(new Error(`server exited early (${code}): ${out}`)));
  });
  return child;
}

// Three server processes start and die here: on a loaded 2-core machine that can take minutes.
t.setTimeout(300_000);

t.test('SIGKILL under write load loses no acknowledged write', async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-crash-'));
  t.teardown(() => fs.rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const env = { PORT: String(port), DATA_DIR: dataDir, MASTER_KEY_PASSPHRASE: 'crash test', LOG_LEVEL: 'silent' };
  const config = loadConfig(env);
  const token = await (await loadDevIssuer(config)).sign({ sub: 'crash', scope: 'system/*.cruds' });
  const acknowledged = new Map<string, number>(); // Patient/id → acknowledged version

  for (let round = 0; round < ROUNDS; round++) {
    const child = await startChild(env);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const killAt = 150 + Math.floor(Math.random() * 400);
    let killed = false;
    const writer = async (w: number) => {
      for (let i = 0; !killed; i++) {
        // Half creates, half updates of the same few resources, so versions race under the locks too.
        const id = `crash-${round}-${w}-${i % 3}`;
        try {
          const res = await fetch(`${config.baseUrl}/Patient/${id}`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
            body: JSON.stringify({ resourceType: 'Patient', id, name: [{ family: `Round${round}`, given: [`W${w}`, `I${i}`] }] }),
          });
          if (res.status === 200 || res.status === 201) acknowledged.set(`Patient/${id}`, Number(/\d+/.exec(res.headers.get('etag')!)![0]));
          await res.arrayBuffer();
        } catch {
          return; // the server is gone
        }
      }
    };
    const writers = Array.from({ length: 16 }, (_, w) => writer(w));
    await new Promise((resolve) => setTimeout(resolve, killAt));
    child.kill('SIGKILL');
    killed = true;
    await Promise.all(writers);
    await exited;
  }
  t.ok(acknowledged.size > 0, `${acknowledged.size} resources acknowledged before the kills`);

  const app = await buildApp(config, { logger: false });
  t.teardown(() => app.close());
  const verified = await verifyLedger(app.db);
  t.ok(verified.ok, 'the ledger verifies after every crash');
  const inLedger = new Set<string>();
  for (const { bytes } of await app.ledger.getEntries(0, app.ledger.size())) {
    const entry = JSON.parse(new TextDecoder().decode(bytes));
    for (const e of entry.entity ?? []) if (e.version) inLedger.add(`${e.reference}/${e.version}`);
  }
  let missing = 0;
  for (const [reference, version] of acknowledged) {
    const [type, id] = reference.split('/') as [string, string];
    const head = await app.repo.head(type, id);
    // A write acknowledged at version n may have been followed by later ones that landed before the kill.
    if (!head || head.versionId < version) missing++;
    if (!inLedger.has(`${reference}/${version}`)) missing++;
    const stored = await app.repo.version(type, id, version);
    if (!stored) missing++;
    else JSON.parse(new TextDecoder().decode(await app.repo.open(stored)));
    // The head is the newest stored version: no half-written version above it.
    if (head && (await app.repo.version(type, id, head.versionId + 1))) missing++;
  }
  t.equal(missing, 0, 'every acknowledged write is readable, indexed and in the ledger');
});
