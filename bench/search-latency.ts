/**
 * Search latency at scale: `node bench/search-latency.ts` (env BENCH_SEARCH_SIZES, default `100000`; e.g.
 * `100000,1000000`; LEVELDB_MAX_OPEN_FILES as for the server). Loads Synthea records cloned with new ids straight through the repository and the ledger
 * (validation, encryption, index, audit entries: the real write path, without HTTP), then measures p50/p95 of
 *   A  Observation?patient=<id>&code=http://loinc.org|<code>
 *   B  Observation?patient=<id>&date=ge<date>&_sort=-date
 * at each size, for random cloned patients (every clone has the same records, so result counts are equal
 * across sizes), at two levels: the search core (index → heads → sort → page) and the whole interaction through
 * the FHIR router (plus decrypting the page and the audited ledger entry). Prints the ratio largest/smallest.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { KeyedLocks } from '../src/fhir/locks.ts';
import { withReferences } from '../src/fhir/references.ts';
import { dispatch, route } from '../src/fhir/router.ts';
import type { InteractionContext } from '../src/fhir/request.ts';
import { planOf } from '../src/fhir/interactions/search.ts';
import { runSearch } from '../src/fhir/search/run.ts';
import { WorkUnit } from '../src/fhir/work.ts';
import { searchTargets } from './synthea-scenarios.ts';

type R = Record<string, any>;
const ROOT = path.resolve(import.meta.dirname, '..');
const DIR = path.join(ROOT, 'test/fixtures/synthea');
const SIZES = (process.env.BENCH_SEARCH_SIZES ?? '100000').split(',').map(Number);
const SAMPLES = Number(process.env.BENCH_SEARCH_SAMPLES ?? 300);
const read = (f: string) => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as { entry: Array<{ fullUrl: string; resource: R }> };

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealed-fhir-bench-search-'));
  const config = loadConfig({
    DATA_DIR: dataDir, MASTER_KEY_PASSPHRASE: 'bench', LOG_LEVEL: 'silent', DEV_ISSUER: 'off',
    // the server's setting, passed through: the table cache decides how many block reads reopen a table at 1M
    ...(process.env.LEVELDB_MAX_OPEN_FILES ? { LEVELDB_MAX_OPEN_FILES: process.env.LEVELDB_MAX_OPEN_FILES } : {}),
  });
  const app = await buildApp(config, { logger: false });
  const locks = new KeyedLocks();
  const agent = { sub: 'bench' };
  let written = 0;

  // As a transaction runs its entries: up to 16 prepared at once (validation and indexing on the analysis
  // workers overlap the main thread's sealing), recorded in order, one synced batch per patient.
  const write = async (resources: R[]) => {
    const work = new WorkUnit(app.ledger, locks, true);
    const prepared = new Array<Awaited<ReturnType<typeof app.repo.prepare>>>(resources.length);
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < resources.length) {
        const i = next++;
        const resource = resources[i]!;
        prepared[i] = await app.repo.prepare({ resourceType: resource.resourceType, id: resource.id, resource: resource as never, method: 'PUT', previous: undefined });
      }
    }));
    for (const p of prepared) await work.record({ interaction: 'update', status: 201, agent, entity: [p.entity] }, [p]);
    await work.flush();
    written += resources.length;
  };

  // shared Organizations, Locations, Practitioners first; conditional references resolve to them
  const conditional = new Map<string, string>();
  const shared: R[] = [];
  for (const f of ['_shared/0-hospitalInformation1625911868739.json', '_shared/0-practitionerInformation1625911868739.json']) {
    for (const { resource } of read(f).entry) {
      shared.push(resource);
      for (const id of resource.identifier ?? []) conditional.set(`${resource.resourceType}?identifier=${id.system}|${id.value}`, `${resource.resourceType}/${resource.id}`);
    }
  }
  for (let i = 0; i < shared.length; i += 200) await write(shared.slice(i, i + 200));
  const base = read('e1dbcb04-9c64-e94c-2bd0-d7b199d369e5.json').entry;
  const patientOf = (k: number) => `c${k}-${base[0]!.resource.id}`;
  const clone = (k: number): R[] => {
    const ids = new Map(base.map((e) => [e.fullUrl, `${e.resource.resourceType}/c${k}-${e.resource.id}`]));
    const resolve = (ref: string) => ids.get(ref) ?? conditional.get(ref) ?? ref;
    return base.map((e) => ({ ...withReferences(e.resource, resolve), id: `c${k}-${e.resource.id}` }));
  };
  // the most frequent LOINC code and the median Observation date of the base patient
  const { code, since } = searchTargets(base.map((e) => e.resource as { resourceType: string }));

  const queries = {
    A: (pid: string) => ({ patient: [pid], code: [`http://loinc.org|${code}`] }),
    B: (pid: string) => ({ patient: [pid], date: [`ge${since}`], _sort: ['-date'] }),
  };
  const context = (): InteractionContext => ({
    baseUrl: config.baseUrl, principal: undefined, agent, repo: app.repo, validator: app.repo.validator,
    capabilities: { statement: { resourceType: 'CapabilityStatement' } as never }, work: new WorkUnit(app.ledger, locks, false),
    newWork: (deferred) => new WorkUnit(app.ledger, locks, deferred),
  });
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

  const results: Array<{ size: number; rows: Record<string, { p50: number; p95: number; count: number }> }> = [];
  let clones = 0;
  const started = Date.now();
  for (const size of SIZES) {
    while (written < size) {
      // two patients in flight: one's synced commit overlaps the next one's preparation
      await Promise.all([write(clone(clones++)), write(clone(clones++))]);
      if (clones % 20 === 0) process.stderr.write(`\rloaded ${written.toLocaleString('en-US')} resources (${Math.round(written / ((Date.now() - started) / 1000))}/s)   `);
    }
    process.stderr.write(`\rloaded ${written.toLocaleString('en-US')} resources (${Math.round(written / ((Date.now() - started) / 1000))}/s)\n`);
    const rows: Record<string, { p50: number; p95: number; count: number }> = {};
    for (const [name, build] of Object.entries(queries)) {
      for (const level of ['core', 'interaction'] as const) {
        const times: number[] = [];
        let count = -1;
        for (let i = 0; i < SAMPLES; i++) {
          const pid = patientOf(Math.floor(Math.random() * clones));
          const query = build(pid);
          const t0 = process.hrtime.bigint();
          if (level === 'core') {
            const parsed = app.repo.search.parse('Observation', query);
            const outcome = await runSearch(app.repo, app.repo.search, planOf(parsed, [{ type: 'Observation', filters: parsed.filters }]));
            count = outcome.total ?? -1;
          } else {
            const req = { method: 'GET', path: 'Observation', query, headers: {} };
            const res = await dispatch(req, route(req), context());
            count = (res.body as R).total;
          }
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        rows[`${name} ${level}`] = { p50: pct(times, 0.5), p95: pct(times, 0.95), count };
      }
    }
    results.push({ size: written, rows });
    console.log(`\n${written.toLocaleString('en-US')} resources (${clones} patients), ${SAMPLES} searches each:`);
    console.log('query                                                  level        p50 ms   p95 ms  results');
    for (const [key, r] of Object.entries(rows)) {
      const [name, level] = key.split(' ');
      const text = name === 'A' ? `Observation?patient=&code=loinc|${code}` : `Observation?patient=&date=ge${since}&_sort=-date`;
      console.log(`${text.padEnd(54)} ${level!.padEnd(11)} ${r.p50.toFixed(2).padStart(7)} ${r.p95.toFixed(2).padStart(8)} ${String(r.count).padStart(8)}`);
    }
  }
  if (results.length > 1) {
    const first = results[0]!;
    const last = results[results.length - 1]!;
    console.log(`\nratio p50 ${last.size.toLocaleString('en-US')} / ${first.size.toLocaleString('en-US')}:`);
    for (const key of Object.keys(first.rows)) console.log(`  ${key.padEnd(16)} ${(last.rows[key]!.p50 / first.rows[key]!.p50).toFixed(2)} (results ${first.rows[key]!.count} vs ${last.rows[key]!.count})`);
  }
  await app.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
