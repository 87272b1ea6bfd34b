/**
 * The shapes every benchmark module shares. A scenario is data: which server it loads and how to build its
 * requests; the runner owns warm-up, timing, error accounting and RSS sampling, so a new scenario (search,
 * transaction import, ledger proofs…) is one small object added to a module's list, plus the checks that
 * compare it with its baseline measured in the same run.
 */
import type { Measurement } from './load.ts';

/**
 * Which child process a scenario drives: sealed-fhir as `npm start` runs it, the same build with reads not
 * audited (bench/unaudited-server.ts), or the bare fastify route serving captured bytes (bench/bare-server.ts).
 */
export type ServerRole = 'sealed' | 'unaudited' | 'bare';

/** One request template as autocannon takes it (`setupRequest` may rewrite path and body per request). */
export interface LoadRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: { path: string; body?: string | Buffer }) => { path: string; body?: string | Buffer };
}

/** What a scenario may use: base URLs, a bearer token, and whatever its module prepared. */
export interface BenchContext {
  urls: Record<ServerRole, string>;
  token: string;
}

export interface Scenario<C extends BenchContext = BenchContext> {
  /** Short, stable name used in tables and checks (e.g. `create`, `read`, `bare`). */
  name: string;
  /** One line saying what is measured. */
  description: string;
  server: ServerRole;
  request(context: C): LoadRequest;
  /** Concurrent connections when not the run's default (large transaction Bundles use fewer). */
  connections?: number;
  /** FHIR resources each request carries (a transaction Bundle's entries); 1 when not said. */
  resourcesPerRequest?(context: C): number;
}

/** The outcome of one measured scenario. */
export interface ScenarioResult extends Omit<Measurement, 'warmupOk'> {
  name: string;
  description: string;
  server: ServerRole;
  connections: number;
  requestsPerSecond: number;
  /** requestsPerSecond × the resources each request carries. */
  resourcesPerSecond: number;
  /** Highest VmRSS of the server process sampled during warm-up and measurement, in bytes. */
  peakRssBytes: number;
  /** CPU used by the server process and by the bench process (the load generator), in percent of one core. */
  serverCpuPercent: number;
  benchCpuPercent: number;
  /**
   * Server CPU milliseconds per successful request (warm-up and measurement together): the cost of a request,
   * which other work on a shared machine disturbs far less than requests/s.
   */
  serverCpuMsPerRequest: number;
}

/**
 * A comparison printed with PASS/BELOW; a miss is reported, never a failure of the run. A check without a
 * bound is printed for information (a ratio the issues set no target for).
 */
export type Check =
  | { kind: 'rate'; label: string; scenario: string; min: number }
  | { kind: 'resources'; label: string; scenario: string; min: number }
  | { kind: 'ratio'; label: string; numerator: string; denominator: string; min?: number }
  | { kind: 'latency'; label: string; scenario: string; maxP50Ms: number };

export interface CheckResult {
  label: string;
  /** requests/s for a rate, resources/s, a fraction for a ratio, ms for a latency; undefined when not run. */
  value: number | undefined;
  kind: Check['kind'];
  /** undefined for a check printed for information only. */
  pass: boolean | undefined;
}

/**
 * A figure measured inside the bench process, after the HTTP servers have stopped (the ledger's append, full
 * verification and proof benchmarks), with the baseline it is compared with in the same run.
 */
export interface InProcessResult {
  name: string;
  description: string;
  /** Throughput in `unit` (e.g. entries/s, proofs/s). */
  rate: number;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
  peakRssBytes?: number;
  /** What the rate is compared with, measured in the same run (e.g. raw SHA-256 over the same bytes). */
  baseline?: { name: string; rate: number };
}
