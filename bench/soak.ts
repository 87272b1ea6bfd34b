/**
 * `npm run soak [-- --minutes N]` (default 10): does the server hold its speed and its memory under a steady
 * mixed load? Starts sealed-fhir as a child process, measures its capacity for the mix (audited reads, creates,
 * searches by identifier, updates; autocannon, unlimited, 20 s), then drives it at 70% of that rate for N
 * minutes, sampling the server's RSS and the throughput every 10 s. Prints the samples, the RSS growth from the
 * first sample after the warm-up (the first minute, or a tenth of a shorter run) to the last and that of the
 * lowest sample of the first and the last minute, each checked "< 10%" as OK or BELOW. Exits non-zero only when
 * requests failed or the server died.
 *
 *   --minutes <n>      soak length (10)        --connections <n>   concurrent connections (32)
 *   --capacity-seconds <s>  capacity run (20)  --rate <0..1>       share of the capacity to drive (0.7)
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { loadDevIssuer } from '../src/consent/dev-issuer.ts';
import { createPatients, patientBodies } from './fhir-scenarios.ts';
import { measure } from './load.ts';
import { codeRevision, describeMachine, loadAverage } from './machine.ts';
import type { LoadRequest } from './scenario.ts';
import { freePort, PROJECT_ROOT, startChild, type ChildServer } from './servers.ts';
import { percentile } from './summary.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'capacity-seconds': { type: 'string', default: '20' },
    rate: { type: 'string', default: '0.7' },
    mix: { type: 'string', default: '500' },
  },
});

const SAMPLE_MS = 10_000;
const MB = 1024 * 1024;
const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

function number(name: string, raw: string, min: number, max = Infinity): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number in [${min}, ${max}], got ${raw}`);
  return value;
}

/** The mix, one of each per connection cycle: read, create, search by identifier, update. */
function mixedRequests(fhirPath: string, token: string, ids: string[], runId: string, nextBody: () => string): LoadRequest[] {
  const headers = { accept: 'application/fhir+json', authorization: `Bearer ${token}` };
  const withBody = { ...headers, 'content-type': 'application/fhir+json' };
  let read = 0;
  let searched = 0;
  let updated = 0;
  return [
    {
      method: 'GET', path: `${fhirPath}/Patient/${ids[0]}`, headers,
      setupRequest: (r) => ({ ...r, path: `${fhirPath}/Patient/${ids[read++ % ids.length]}` }),
    },
    { method: 'POST', path: `${fhirPath}/Patient`, headers: withBody, body: nextBody(), setupRequest: (r) => ({ ...r, body: nextBody() }) },
    {
      // Identifiers of the pre-created patients are `<runId>-1` … `<runId>-<mix>` (patientBodies).
      method: 'GET', path: `${fhirPath}/Patient?identifier=urn:sealed-fhir:bench|${runId}-1`, headers,
      setupRequest: (r) => ({ ...r, path: `${fhirPath}/Patient?identifier=urn:sealed-fhir:bench|${runId}-${1 + (searched++ % ids.length)}` }),
    },
    {
      method: 'PUT', path: `${fhirPath}/Patient/${ids[0]}`, headers: withBody, body: '{}',
      setupRequest: (r) => {
        const id = ids[updated++ % ids.length]!;
        return { ...r, path: `${fhirPath}/Patient/${id}`, body: `{"id":"${id}",${nextBody().slice(1)}` };
      },
    },
  ];
}

interface Sample {
  seconds: number;
  rssMb: number;
  /** RssAnon and RssFile: what the process allocated, and the file pages it has mapped (LevelDB's tables). */
  anonMb: number;
  fileMb: number;
  requestsPerSecond: number;
  p99Ms: number;
  failures: number;
}

async function main(): Promise<number> {
  const minutes = number('minutes', args.minutes!, 0.5);
  const connections = number('connections', args.connections!, 1);
  const capacitySeconds = number('capacity-seconds', args['capacity-seconds']!, 5);
  const share = number('rate', args.rate!, 0.05, 1);
  const mix = number('mix', args.mix!, 1);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-soak-'));
  let server: ChildServer | undefined;
  try {
    const env = { PORT: String(await freePort()), DATA_DIR: path.join(root, 'data'), MASTER_KEY_PASSPHRASE: 'sealed-fhir soak', LOG_LEVEL: 'warn' };
    const config = loadConfig({ ...process.env, ...env });
    const machine = describeMachine(root);
    log(`${machine.cpu} × ${machine.cores}, ${machine.memoryGiB} GiB, ${machine.node}, data on ${machine.dataDisk}; load average ${loadAverage()}; revision ${codeRevision(PROJECT_ROOT)}`);
    server = await startChild('sealed-fhir', 'src/main.ts', env, config.origin);
    const token = await (await loadDevIssuer(config)).sign({ sub: 'soak', scope: 'system/*.cruds', clientId: 'sealed-fhir-soak', ttlSeconds: 24 * 3600 });
    const fhirPath = new URL(config.baseUrl).pathname;
    const runId = randomBytes(4).toString('hex');
    const nextBody = patientBodies(runId);
    log(`creating ${mix} patients`);
    const ids = await createPatients(config.origin, fhirPath, token, nextBody, mix);
    const requests = mixedRequests(fhirPath, token, ids, runId, nextBody);

    log(`capacity: ${capacitySeconds} s of the mix at ${connections} connections, unlimited`);
    const capacity = await measure({ origin: config.origin, connections, durationSeconds: capacitySeconds, warmupSeconds: 0, request: requests[0]!, requests });
    const capacityRate = capacity.ok / capacity.durationSeconds;
    const rate = Math.max(1, Math.round(capacityRate * share));
    log(`capacity ${capacityRate.toFixed(0)} requests/s (p99 ${capacity.p99Ms.toFixed(1)} ms); soaking at ${rate}/s for ${minutes} min`);

    const samples: Sample[] = [];
    let ok = 0;
    let failures = 0;
    let latencies: number[] = [];
    const started = performance.now();
    const timer = setInterval(() => {
      const sorted = Float64Array.from(latencies).sort();
      const parts = server!.rssPartsBytes();
      samples.push({
        seconds: Math.round((performance.now() - started) / 1000),
        rssMb: (server!.rssBytes() ?? 0) / MB,
        anonMb: (parts?.anon ?? 0) / MB,
        fileMb: (parts?.file ?? 0) / MB,
        requestsPerSecond: ok / (SAMPLE_MS / 1000),
        p99Ms: percentile(sorted, 99),
        failures,
      });
      const s = samples.at(-1)!;
      log(`${String(s.seconds).padStart(5)} s  ${s.requestsPerSecond.toFixed(0).padStart(5)} req/s  p99 ${s.p99Ms.toFixed(1).padStart(7)} ms  RSS ${s.rssMb.toFixed(1)} MB (anon ${s.anonMb.toFixed(1)}, file ${s.fileMb.toFixed(1)})${s.failures ? `  ${s.failures} FAILED` : ''}`);
      ok = 0;
      failures = 0;
      latencies = [];
    }, SAMPLE_MS);
    const soak = await measure({
      origin: config.origin, connections, durationSeconds: Math.round(minutes * 60), warmupSeconds: 0, request: requests[0]!, requests, overallRate: rate,
      onResponse: (status, ms) => {
        if (status >= 200 && status < 300) {
          ok++;
          latencies.push(ms);
        } else failures++;
      },
    }).finally(() => clearInterval(timer));
    const died = server.exitReport();

    const warmupSeconds = Math.min(60, (minutes * 60) / 10);
    const first = samples.find((s) => s.seconds >= warmupSeconds) ?? samples[0];
    const last = samples.at(-1);
    const growth = first && last ? (last.rssMb - first.rssMb) / first.rssMb : NaN;
    // RSS saws up and down with each major GC, so two single samples can differ by a third either way; the
    // lowest sample of the first minute after warm-up against that of the last minute shows what is retained.
    const window = Math.max(1, Math.round(60_000 / SAMPLE_MS));
    const afterWarmup = samples.filter((s) => s.seconds >= warmupSeconds);
    const floorOf = (xs: Sample[]) => Math.min(...xs.map((s) => s.rssMb));
    const firstFloor = floorOf(afterWarmup.slice(0, window));
    const lastFloor = floorOf(afterWarmup.slice(-window));
    const floorGrowth = (lastFloor - firstFloor) / firstFloor;
    const failed = capacity.non2xx + capacity.errors + capacity.timeouts + soak.non2xx + soak.errors + soak.timeouts;
    const lines = [
      '',
      `| time (s) | requests/s | p99 (ms) | server RSS (MB) | anon (MB) | file (MB) |`,
      `|---:|---:|---:|---:|---:|---:|`,
      ...samples.map((s) => `| ${s.seconds} | ${s.requestsPerSecond.toFixed(0)} | ${s.p99Ms.toFixed(1)} | ${s.rssMb.toFixed(1)} | ${s.anonMb.toFixed(1)} | ${s.fileMb.toFixed(1)} |`),
      '',
      `capacity of the mix: ${capacityRate.toFixed(0)} requests/s; soak target ${rate}/s (${(share * 100).toFixed(0)}%), achieved ${(soak.ok / soak.durationSeconds).toFixed(0)}/s over ${soak.durationSeconds} s, p50 ${soak.p50Ms.toFixed(1)} ms, p99 ${soak.p99Ms.toFixed(1)} ms`,
      `RSS ${first?.rssMb.toFixed(1)} MB at ${first?.seconds} s (first sample after warm-up) → ${last?.rssMb.toFixed(1)} MB at ${last?.seconds} s: ${(growth * 100).toFixed(1)}%`,
      `RSS floor (lowest sample) of the first minute after warm-up ${firstFloor.toFixed(1)} MB → of the last minute ${lastFloor.toFixed(1)} MB: ${(floorGrowth * 100).toFixed(1)}%`,
      `${growth < 0.1 ? 'OK   ' : 'BELOW'} RSS growth < 10% over the run (first sample after warm-up → last)`,
      `${floorGrowth < 0.1 ? 'OK   ' : 'BELOW'} RSS floor growth < 10% over the run (first minute → last minute)`,
      `failed requests: ${failed}${Object.keys(soak.badStatuses).length ? ` (${JSON.stringify(soak.badStatuses)})` : ''}; load average at the end ${loadAverage()}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (died) {
      log(died);
      return 1;
    }
    return failed === 0 ? 0 : 1;
  } finally {
    await server?.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
}

process.exitCode = await main().catch((err: unknown) => {
  log((err as Error).message);
  return 1;
});
