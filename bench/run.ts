/**
 * `npm run bench`: starts sealed-fhir and the bare baseline as child processes with a temporary data dir,
 * prepares data over HTTP, then drives each scenario with autocannon from this process and prints one table
 * with the checks measured in the same run. Exits non-zero only when the run itself failed (a server would
 * not start, a request failed, the baseline served other bytes), never because a target was missed.
 *
 *   --quick            3 s per scenario (1 s warm-up) instead of 10 s (3 s warm-up)
 *   --markdown         print the summary as markdown (for docs/benchmarks.md)
 *   --duration <s>     measured seconds per scenario      --warmup <s>     warm-up seconds per scenario
 *   --connections <n>  concurrent connections (32)        --mix <n>        patients read by read-mix (1000)
 *   --only <a,b>       run only these scenarios          --data-parent <dir>  where the temporary data dir goes
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { loadDevIssuer } from '../src/consent/dev-issuer.ts';
import { captureRead, createPatient, createPatients, fhirChecks, fhirScenarios, patientBodies, type FhirContext } from './fhir-scenarios.ts';
import { measure, type LoadOptions } from './load.ts';
import { codeRevision, describeMachine, loadAverage, syncLatency } from './machine.ts';
import { formatMarkdown, formatText } from './report.ts';
import type { Scenario, ScenarioResult, ServerRole } from './scenario.ts';
import { freePort, PROJECT_ROOT, startChild, watchUsage, type ChildServer } from './servers.ts';
import { evaluateChecks, failuresOf } from './summary.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '32' },
    mix: { type: 'string', default: '1000' },
    only: { type: 'string' },
    'data-parent': { type: 'string', default: os.tmpdir() },
  },
});

function positiveInt(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got ${raw}`);
  return value;
}

type Shape = Pick<LoadOptions, 'connections' | 'durationSeconds' | 'warmupSeconds'>;

/** One scenario: warm-up and measurement, with the server's memory and CPU and the bench's own CPU watched. */
async function runScenario(scenario: Scenario<FhirContext>, context: FhirContext, server: ChildServer, shape: Shape): Promise<ScenarioResult> {
  const usage = watchUsage(server);
  const benchCpuStart = process.cpuUsage();
  const wallStart = performance.now();
  const m = await measure({ ...shape, origin: context.urls[scenario.server], request: scenario.request(context) });
  const serverUsage = usage.stop();
  const benchCpu = process.cpuUsage(benchCpuStart);
  const wallMs = performance.now() - wallStart;
  const served = m.ok + m.warmupOk;
  return {
    name: scenario.name,
    description: scenario.description,
    server: scenario.server,
    connections: shape.connections,
    durationSeconds: m.durationSeconds,
    ok: m.ok,
    requestsPerSecond: m.durationSeconds > 0 ? m.ok / m.durationSeconds : 0,
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    non2xx: m.non2xx,
    errors: m.errors,
    timeouts: m.timeouts,
    badStatuses: m.badStatuses,
    peakRssBytes: serverUsage.peakRssBytes,
    serverCpuPercent: serverUsage.cpuPercent,
    benchCpuPercent: wallMs > 0 ? (benchCpu.user + benchCpu.system) / 10 / wallMs : 0,
    serverCpuMsPerRequest: served > 0 ? (serverUsage.cpuSeconds * 1000) / served : 0,
  };
}

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function main(): Promise<number> {
  const durationSeconds = positiveInt('duration', args.duration, args.quick ? 3 : 10);
  const warmupSeconds = positiveInt('warmup', args.warmup, args.quick ? 1 : 3, 0);
  const connections = positiveInt('connections', args.connections, 32);
  const mixSize = positiveInt('mix', args.mix, 1000);
  const only = args.only?.split(',').map((name) => name.trim());
  const unknown = only?.filter((name) => !fhirScenarios.some((s) => s.name === name)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${fhirScenarios.map((s) => s.name).join(', ')}`);
  const scenarios = fhirScenarios.filter((s) => !only || only.includes(s.name));

  const started = new Date().toISOString();
  const root = await fs.mkdtemp(path.join(args['data-parent'], 'sealed-fhir-bench-'));
  const children: ChildServer[] = [];
  const cleanup = async () => {
    for (const child of children.splice(0)) await child.stop();
    await fs.rm(root, { recursive: true, force: true });
  };
  const interrupted = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const machine = describeMachine(root);
    const sync = await syncLatency(root);
    const loadBefore = loadAverage();
    const env = { PORT: String(await freePort()), DATA_DIR: path.join(root, 'data'), MASTER_KEY_PASSPHRASE: 'sealed-fhir bench', LOG_LEVEL: 'warn' };
    const config = loadConfig({ ...process.env, ...env });
    log(`starting sealed-fhir at ${config.baseUrl} (data in ${env.DATA_DIR})`);
    const sealed = await startChild('sealed-fhir', 'src/main.ts', env, config.origin);
    children.push(sealed);

    const issuer = await loadDevIssuer(config);
    const token = await issuer.sign({ sub: 'bench', scope: 'system/*.cruds', clientId: 'sealed-fhir-bench', ttlSeconds: 6 * 3600 });
    const fhirPath = new URL(config.baseUrl).pathname;
    const nextPatientBody = patientBodies(randomBytes(4).toString('hex'));
    const readId = await createPatient(config.origin, fhirPath, token, nextPatientBody());
    const needMix = scenarios.some((s) => s.name === 'read-mix');
    log(needMix ? `creating ${mixSize} patients for read-mix` : 'preparing');
    const mixIds = needMix ? await createPatients(config.origin, fhirPath, token, nextPatientBody, mixSize) : [readId];

    const captured = await captureRead(config.origin, fhirPath, token, readId);
    const bodyFile = path.join(root, 'read-body.json');
    await fs.writeFile(bodyFile, captured.body);
    const barePort = await freePort();
    const bareOrigin = `http://127.0.0.1:${barePort}`;
    const bare = await startChild('bare', 'bench/bare-server.ts', { PORT: String(barePort), BODY_FILE: bodyFile, HEADERS_JSON: JSON.stringify(captured.headers) }, bareOrigin);
    children.push(bare);
    const bareBody = Buffer.from(await (await fetch(`${bareOrigin}${fhirPath}/Patient/${readId}`)).arrayBuffer());
    if (!bareBody.equals(captured.body)) throw new Error('the bare route does not serve the same bytes as the read');

    const servers: Record<ServerRole, ChildServer> = { sealed, bare };
    const context: FhirContext = { urls: { sealed: config.origin, bare: bareOrigin }, token, fhirPath, readId, mixIds, nextPatientBody };
    const results: ScenarioResult[] = [];
    for (const scenario of scenarios) {
      log(`${scenario.name}: ${warmupSeconds} s warm-up + ${durationSeconds} s at ${connections} connections`);
      const result = await runScenario(scenario, context, servers[scenario.server], { connections, durationSeconds, warmupSeconds });
      results.push(result);
      log(`${scenario.name}: ${result.requestsPerSecond.toFixed(0)} requests/s, p99 ${result.p99Ms.toFixed(2)} ms, ${result.non2xx + result.errors} errors`);
    }
    const died = children.map((child) => child.exitReport()).filter((report) => report !== undefined);

    const report = {
      date: started,
      code: codeRevision(PROJECT_ROOT),
      machine,
      loadBefore,
      loadAfter: loadAverage(),
      connections,
      durationSeconds,
      warmupSeconds,
      mixSize: mixIds.length,
      sync,
      lifetimePeakRss: { 'sealed-fhir': sealed.peakRssBytes(), bare: bare.peakRssBytes() },
      results,
      checks: evaluateChecks(fhirChecks, results),
      failures: [...results.flatMap(failuresOf), ...died],
    };
    process.stdout.write(args.markdown ? formatMarkdown(report) : formatText(report));
    return report.failures.length > 0 ? 1 : 0;
  } catch (err) {
    // A request that failed because a server died is explained by the server's own last words.
    const exits = children.map((child) => child.exitReport()).filter((report) => report !== undefined);
    if (exits.length > 0) throw new Error(`${messageOf(err)}\n${exits.join('\n')}`);
    throw err;
  } finally {
    await cleanup();
  }
}

/** The message with its causes (fetch hides the real reason, e.g. ECONNRESET, in `cause`). */
function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause === undefined ? err.message : `${err.message}: ${messageOf(err.cause)}`;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: failed: ${messageOf(err)}\n`);
    process.exit(1);
  },
);
