/**
 * autocannon, driven from the bench process (neither server): a warm-up run that is discarded (but whose
 * failures still count), then the measured run. Latencies are taken from autocannon's per-response event in
 * float milliseconds, because its own histogram rounds to whole milliseconds, too coarse for a bare route.
 */
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { LoadRequest } from './scenario.ts';
import { percentile } from './summary.ts';

/** The part of autocannon's programmatic API used here (it ships no type declarations). */
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type AutocannonRun = EventEmitter & PromiseLike<AutocannonResult>;
type Autocannon = (options: Record<string, unknown>) => AutocannonRun;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadOptions {
  /** Origin of the server, e.g. `http://127.0.0.1:41234`. */
  origin: string;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  request: LoadRequest;
  /** A mixed load: each connection cycles through these in turn (then `request` is not used). */
  requests?: LoadRequest[];
  /** Requests per second over all connections (autocannon's overallRate); unlimited when absent. */
  overallRate?: number;
  /** Sees every response as it arrives (the soak samples throughput and latency over time from it). */
  onResponse?: (statusCode: number, responseTimeMs: number) => void;
}

export interface Measurement {
  durationSeconds: number;
  /** Successful (2xx) responses. */
  ok: number;
  /** Successes of the warm-up run (not in `ok`), to relate CPU sampled over both runs to requests served. */
  warmupOk: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx responses, connection errors, timeouts: each one makes the run a failure. */
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Status codes seen other than 2xx, with counts (for the failure report). */
  badStatuses: Record<string, number>;
}

async function runOnce(options: LoadOptions, seconds: number): Promise<Measurement> {
  const { request } = options;
  const latencies: number[] = [];
  let ok = 0;
  const run = autocannon({
    url: options.origin,
    connections: options.connections,
    duration: seconds,
    timeout: 10,
    ...(options.overallRate !== undefined ? { overallRate: options.overallRate } : {}),
    requests: (options.requests ?? [request]).map((r) => ({
      method: r.method,
      path: r.path,
      headers: r.headers ?? {},
      ...(r.body !== undefined ? { body: r.body } : {}),
      ...(r.setupRequest ? { setupRequest: r.setupRequest } : {}),
    })),
  });
  run.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    options.onResponse?.(statusCode, responseTime);
    if (statusCode >= 200 && statusCode < 300) {
      ok += 1;
      latencies.push(responseTime);
    }
  });
  const result = await run;
  const sorted = Float64Array.from(latencies).sort();
  const badStatuses: Record<string, number> = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats)) {
    if (!/^2\d\d$/.test(status)) badStatuses[status] = count;
  }
  return {
    durationSeconds: result.duration,
    ok,
    warmupOk: 0,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    badStatuses,
  };
}

/**
 * Warm-up, then measurement. Failures of the warm-up are added to the measurement's: an error is an error
 * whenever it happens.
 */
export async function measure(options: LoadOptions): Promise<Measurement> {
  const warm = options.warmupSeconds > 0 ? await runOnce(options, options.warmupSeconds) : undefined;
  const measured = await runOnce(options, options.durationSeconds);
  if (!warm) return measured;
  const badStatuses = { ...measured.badStatuses };
  for (const [status, count] of Object.entries(warm.badStatuses)) badStatuses[status] = (badStatuses[status] ?? 0) + count;
  return {
    ...measured,
    warmupOk: warm.ok,
    non2xx: measured.non2xx + warm.non2xx,
    errors: measured.errors + warm.errors,
    timeouts: measured.timeouts + warm.timeouts,
    badStatuses,
  };
}
