/**
 * Resource analysis on worker threads gives exactly what it gives on the main thread — the same canonical bytes,
 * compartment owner and sealed index entries for every official R4 example, the same errors (status, code, issues)
 * for invalid ones — and the pool survives a worker that dies: only what that worker had in flight fails.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../../src/errors.ts';
import { indexHasher, inlineAnalyzer, type Analyzer } from '../../src/fhir/analysis/analyze.ts';
import { createAnalysisPool } from '../../src/fhir/analysis/pool.ts';
import { PatientCompartment } from '../../src/fhir/compartment.ts';
import { createValidator } from '../../src/fhir/validate.ts';
import { secretKey } from '../../src/storage/envelope.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const EXAMPLES = path.join(ROOT, 'test/fixtures/fhir-r4-examples');
const profilesDir = path.join(ROOT, 'profiles');
const baseUrl = 'https://hospital.example/fhir';
const key = new Uint8Array(randomBytes(32));

const inline = inlineAnalyzer({
  validator: createValidator({ profilesDir, maxDepth: 64 }),
  compartment: new PatientCompartment(),
  baseUrl,
  indexHash: indexHasher(secretKey(key.slice())),
});

async function outcome(analyzer: Analyzer, resource: Resource) {
  try {
    const a = await analyzer.analyze(resource, { expectedType: resource.resourceType });
    return { plaintext: Buffer.from(a.plaintext).toString('utf8'), patient: a.patient, entries: a.entries };
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    return { status: err.status, code: err.code, message: err.message, issues: err.issues };
  }
}

t.test('the pool and the main thread agree on every official example and on invalid resources', async (t) => {
  const errorsSeen: string[] = [];
  const pool = await createAnalysisPool({
    size: 2,
    settings: { profilesDir, maxDepth: 64, baseUrl },
    hashKey: () => key.slice(),
    onWorkerError: (err) => errorsSeen.push(err.message),
  });
  t.teardown(() => pool.close());
  const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
  t.ok(files.length > 400, `${files.length} examples`);
  const resources = files.map((f) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')) as Resource);
  // invalid on purpose: a wrong type for an element, a missing required element, an impossible date
  resources.push({ resourceType: 'Patient', active: 'yes' } as never);
  resources.push({ resourceType: 'Observation', code: { text: 'x' } } as never);
  resources.push({ resourceType: 'Patient', birthDate: '2023-02-30' } as never);
  // all at once, so both workers are busy and answers come back out of order
  const [fromPool, fromInline] = await Promise.all([Promise.all(resources.map((r) => outcome(pool, r))), Promise.all(resources.map((r) => outcome(inline, r)))]);
  let different = 0;
  fromPool.forEach((p, i) => {
    if (JSON.stringify(p) !== JSON.stringify(fromInline[i])) {
      different++;
      t.fail(`${files[i] ?? `invalid #${i - files.length}`} differs`);
    }
  });
  t.equal(different, 0, 'identical analyses and errors');
  const rejected = fromPool.filter((o) => 'status' in o);
  t.ok(rejected.length >= 5, `the invalid ones are rejected (${rejected.length})`);
  t.ok(rejected.every((o) => 'status' in o && (o.status === 400 || o.status === 422)), 'with 400 or 422');
  t.ok(fromPool.some((o) => 'entries' in o && o.patient !== undefined && o.entries.length > 0), 'compartment owners and index entries come back');
  t.same(errorsSeen, [], 'no worker died');
});

t.test('a worker that dies fails only its own requests and is replaced', async (t) => {
  const died: string[] = [];
  const pool = await createAnalysisPool({
    size: 1,
    settings: { profilesDir, maxDepth: 64, baseUrl },
    hashKey: () => key.slice(),
    onWorkerError: (err) => died.push(err.message),
    workerUrl: new URL('./fixtures/dying-worker.ts', import.meta.url),
  });
  t.teardown(() => pool.close());
  const ok = await pool.analyze({ resourceType: 'Patient' } as Resource, {});
  t.equal(Buffer.from(ok.plaintext).toString(), '{"resourceType":"Patient"}');
  const [killed, alongside] = await Promise.allSettled([pool.analyze({ resourceType: 'Die' } as never, {}), pool.analyze({ resourceType: 'Patient', id: 'b' } as Resource, {})]);
  t.match(killed, { status: 'rejected', reason: { status: 500, code: 'ERR_ANALYSIS_WORKER' } }, 'the request that was in the dead worker fails with a 500');
  t.match(alongside, { status: 'rejected', reason: { code: 'ERR_ANALYSIS_WORKER' } }, 'so does the one queued behind it in the same worker');
  t.match(died, [/exited with code 3/], 'the death is reported once');
  await t.rejects(pool.analyze({ resourceType: 'Patient' } as Resource, {}), { status: 503, code: 'ERR_ANALYSIS_UNAVAILABLE' }, 'no worker alive and no fallback: a 503, never a hang');
  // the replacement starts in the background
  let after: string | undefined;
  for (let i = 0; i < 200 && after === undefined; i++) {
    try {
      after = Buffer.from((await pool.analyze({ resourceType: 'Patient', id: 'c' } as Resource, {})).plaintext).toString();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  t.equal(after, '{"resourceType":"Patient","id":"c"}', 'a replacement worker answers');
  await pool.close();
  await t.rejects(pool.analyze({ resourceType: 'Patient' } as Resource, {}), { status: 503, code: 'ERR_CLOSING' }, 'a closed pool refuses work');
});

t.test('while no worker is alive the fallback answers', async (t) => {
  const pool = await createAnalysisPool({
    size: 1,
    settings: { profilesDir, maxDepth: 64, baseUrl },
    hashKey: () => key.slice(),
    onWorkerError: () => undefined,
    workerUrl: new URL('./fixtures/dying-worker.ts', import.meta.url),
    fallback: inline,
  });
  t.teardown(() => pool.close());
  await t.rejects(pool.analyze({ resourceType: 'Die' } as never, {}), { code: 'ERR_ANALYSIS_WORKER' });
  const answered = await pool.analyze({ resourceType: 'Patient', birthDate: '1970-01-01' } as Resource, { expectedType: 'Patient' });
  t.equal(Buffer.from(answered.plaintext).toString(), '{"birthDate":"1970-01-01","resourceType":"Patient"}', 'the inline analyzer answered: canonical JSON, keys sorted');
});
