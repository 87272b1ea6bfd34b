/**
 * `npm run bench`: one suite. Starts sealed-fhir, the same build with reads unaudited, and the bare baseline as
 * child processes with temporary data dirs, prepares data over HTTP (patients, the Synthea records), drives each
 * scenario with autocannon from this process, then — servers stopped — measures the ledger in-process, and prints
 * one summary with the checks measured in the same run. Exits non-zero only when the run itself failed (a server
 * would not start, a request failed, the baseline served other bytes), never because a target was missed.
 *
 *   --quick            about a minute: 3 s per scenario (1 s warm-up) instead of 10 s (3 s warm-up), fewer
 *                      read-mix patients and smaller ledger runs
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
import { captureGet, createPatient, createPatients, fhirChecks, fhirScenarios, patientBodies } from './fhir-scenarios.ts';
import { measure, type LoadOptions } from './load.ts';
import { codeRevision, describeMachine, loadAverage, syncLatency } from './machine.ts';
import { formatMarkdown, formatText } from './report.ts';
import type { InProcessResult, Scenario, ScenarioResult, ServerRole } from './scenario.ts';
import { freePort, PROJECT_ROOT, startChild, watchUsage, type ChildServer } from './servers.ts';
import { evaluateChecks, failuresOf } from './summary.ts';
import { ledgerBenches, ledgerBenchNames, ledgerChecks } from './ledger-suite.ts';
import { loadSynthea, searchUrls, syntheaChecks, syntheaScenarios, type SuiteContext } from './synthea-scenarios.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '32' },
    mix: { type: 'string' },
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

const scenarios: Scenario<SuiteContext>[] = [...fhirScenarios, ...syntheaScenarios];
const checks = [...fhirChecks, ...syntheaChecks, ...ledgerChecks];

/** One scenario: warm-up and measurement, with the server's memory and CPU and the bench's own CPU watched. */
async function runScenario(scenario: Scenario<SuiteContext>, context: SuiteContext, server: ChildServer, shape: Shape): Promise<ScenarioResult> {
  const usage = watchUsage(server);
  const benchCpuStart = process.cpuUsage();
  const wallStart = performance.now();
  const connections = scenario.connections ?? shape.connections;
  const m = await measure({ ...shape, connections, origin: context.urls[scenario.server], request: scenario.request(context) });
  const serverUsage = usage.stop();
  const benchCpu = process.cpuUsage(benchCpuStart);
  const wallMs = performance.now() - wallStart;
  const served = m.ok + m.warmupOk;
  const requestsPerSecond = m.durationSeconds > 0 ? m.ok / m.durationSeconds : 0;
  return {
    name: scenario.name,
    description: scenario.description,
    server: scenario.server,
    connections,
    durationSeconds: m.durationSeconds,
    ok: m.ok,
    requestsPerSecond,
    resourcesPerSecond: requestsPerSecond * (scenario.resourcesPerRequest?.(context) ?? 1),
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
  const mixSize = positiveInt('mix', args.mix, args.quick ? 200 : 1000);
  const only = args.only?.split(',').map((name) => name.trim());
  const known = [...scenarios.map((s) => s.name), ...ledgerBenchNames];
  const unknown = only?.filter((name) => !known.includes(name)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const chosen = scenarios.filter((s) => !only || only.includes(s.name));
  const needs = (role: ServerRole) => chosen.some((s) => s.server === role);

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
    const results: ScenarioResult[] = [];
    const lifetimePeakRss: Record<string, number | undefined> = {};
    let mixCount = 0;
    if (chosen.length > 0) {
      // Both sealed servers as `npm start` runs them, each with its own data dir and development issuer.
      const start = async (name: string, script: string, dir: string) => {
        const env = { PORT: String(await freePort()), DATA_DIR: path.join(root, dir), MASTER_KEY_PASSPHRASE: 'sealed-fhir bench', LOG_LEVEL: 'warn' };
        const config = loadConfig({ ...process.env, ...env });
        log(`starting ${name} at ${config.baseUrl} (data in ${env.DATA_DIR})`);
        const child = await startChild(name, script, env, config.origin);
        children.push(child);
        const issuer = await loadDevIssuer(config);
        const token = await issuer.sign({ sub: 'bench', scope: 'system/*.cruds', clientId: 'sealed-fhir-bench', ttlSeconds: 6 * 3600 });
        return { child, config, token };
      };
      // Started together: each spends its first seconds loading definitions, on its own core.
      const [sealed, unaudited] = await Promise.all([
        start('sealed-fhir', 'src/main.ts', 'data'),
        needs('unaudited') ? start('sealed-fhir-unaudited', 'bench/unaudited-server.ts', 'data-unaudited') : undefined,
      ]);
      const { origin } = sealed.config;
      const fhirPath = new URL(sealed.config.baseUrl).pathname;
      const token = sealed.token;

      const nextPatientBody = patientBodies(randomBytes(4).toString('hex'));
      const readBody = nextPatientBody();
      const readId = await createPatient(origin, fhirPath, token, readBody);
      const unauditedReadId = unaudited ? await createPatient(unaudited.config.origin, fhirPath, unaudited.token, readBody) : readId;
      const needMix = chosen.some((s) => s.name === 'read-mix');
      log(needMix ? `creating ${mixSize} patients for read-mix` : 'preparing');
      const mixIds = needMix ? await createPatients(origin, fhirPath, token, nextPatientBody, mixSize) : [readId];
      // The same history on the unaudited server, so that read and read-unaudited compare equal stores.
      if (needMix && unaudited) await createPatients(unaudited.config.origin, fhirPath, unaudited.token, nextPatientBody, mixSize);
      mixCount = mixIds.length;
      log('loading the Synthea records over HTTP (shared organizations and practitioners, then one patient)');
      const synthea = await loadSynthea(origin, fhirPath, token);

      // The baseline serves, byte for byte, what sealed-fhir answered to each URL it is compared on.
      const urls = [`${fhirPath}/Patient/${readId}`, ...Object.values(searchUrls(fhirPath, synthea))];
      const routes = [];
      for (const [i, url] of urls.entries()) {
        const captured = await captureGet(origin, url, token);
        const bodyFile = path.join(root, `captured-${i}.json`);
        await fs.writeFile(bodyFile, captured.body);
        routes.push({ url, bodyFile, headers: captured.headers, body: captured.body });
      }
      const routesFile = path.join(root, 'routes.json');
      await fs.writeFile(routesFile, JSON.stringify(routes.map(({ body: _body, ...route }) => route)));
      const barePort = await freePort();
      const bareOrigin = `http://127.0.0.1:${barePort}`;
      const bare = await startChild('bare', 'bench/bare-server.ts', { PORT: String(barePort), ROUTES_FILE: routesFile }, bareOrigin);
      children.push(bare);
      for (const route of routes) {
        const served = Buffer.from(await (await fetch(`${bareOrigin}${route.url}`)).arrayBuffer());
        if (!served.equals(route.body)) throw new Error(`the bare route does not serve the same bytes as sealed-fhir for ${route.url}`);
      }

      const servers: Record<ServerRole, ChildServer> = { sealed: sealed.child, unaudited: unaudited?.child ?? sealed.child, bare };
      const context: SuiteContext = {
        urls: { sealed: origin, unaudited: unaudited?.config.origin ?? origin, bare: bareOrigin },
        token,
        fhirPath,
        readId,
        unauditedReadId,
        mixIds,
        nextPatientBody,
        ...synthea,
      };
      // The unaudited server has its own issuer: its scenario carries its own token.
      const contextFor = (scenario: Scenario<SuiteContext>): SuiteContext => (scenario.server === 'unaudited' && unaudited ? { ...context, token: unaudited.token } : context);
      for (const scenario of chosen) {
        log(`${scenario.name}: ${warmupSeconds} s warm-up + ${durationSeconds} s at ${scenario.connections ?? connections} connections`);
        const result = await runScenario(scenario, contextFor(scenario), servers[scenario.server], { connections, durationSeconds, warmupSeconds });
        results.push(result);
        log(`${scenario.name}: ${result.requestsPerSecond.toFixed(0)} requests/s, p99 ${result.p99Ms.toFixed(2)} ms, ${result.non2xx + result.errors} errors`);
      }
      for (const child of children) lifetimePeakRss[child.name] = child.peakRssBytes();
      const died = children.map((child) => child.exitReport()).filter((report) => report !== undefined);
      if (died.length > 0) throw new Error(died.join('\n'));
      // The ledger is measured alone: the servers must not share the two cores with it.
      for (const child of children.splice(0)) await child.stop();
    }

    const inProcess: InProcessResult[] = [];
    for (const bench of ledgerBenches) {
      if (only && !only.includes(bench.name)) continue;
      log(`${bench.name}: ${bench.describe(args.quick)}`);
      const result = await bench.run({ quick: args.quick, dataParent: root });
      inProcess.push(...result);
      for (const r of result) log(`${r.name}: ${r.rate.toFixed(0)} ${r.unit}`);
    }

    const report = {
      date: started,
      code: codeRevision(PROJECT_ROOT),
      machine,
      loadBefore,
      loadAfter: loadAverage(),
      connections,
      durationSeconds,
      warmupSeconds,
      mixSize: mixCount,
      sync,
      lifetimePeakRss,
      results,
      inProcess,
      checks: evaluateChecks(checks, results, inProcess),
      failures: results.flatMap(failuresOf),
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
