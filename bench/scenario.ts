/**
 * The shapes every benchmark module shares. A scenario is data: which server it loads and how to build its
 * requests; the runner owns warm-up, timing, error accounting and RSS sampling, so a new scenario (search,
 * transaction import, ledger proofs…) is one small object added to a module's list, plus the checks that
 * compare it with its baseline measured in the same run.
 */
import type { Measurement } from './load.ts';

/** Which child process a scenario drives. */
export type ServerRole = 'sealed' | 'bare';

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
}

/** The outcome of one measured scenario. */
export interface ScenarioResult extends Omit<Measurement, 'warmupOk'> {
  name: string;
  description: string;
  server: ServerRole;
  connections: number;
  requestsPerSecond: number;
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

/** A comparison printed with PASS/BELOW; a miss is reported, never a failure of the run. */
export type Check =
  | { kind: 'rate'; label: string; scenario: string; min: number }
  | { kind: 'ratio'; label: string; numerator: string; denominator: string; min: number };

export interface CheckResult {
  label: string;
  /** requests/s for a rate, a fraction for a ratio; undefined when a scenario did not run. */
  value: number | undefined;
  min: number;
  kind: Check['kind'];
  pass: boolean;
}
