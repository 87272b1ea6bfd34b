/**
 * Pure arithmetic over measured results: latency percentiles, the checks (targets and ratios measured in the
 * same run) and the list of failures that make the run exit non-zero. No I/O, so it is tested with tables.
 */
import type { Check, CheckResult, InProcessResult, ScenarioResult } from './scenario.ts';

/**
 * Nearest-rank percentile (p in 0…100) of ascending-sorted samples; 0 for no samples. Nearest-rank never
 * invents a latency that was not observed, which matters at p99 of small runs.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  if (p <= 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Checks over HTTP scenarios and in-process measures (a rate there is its own unit per second). */
export function evaluateChecks(checks: readonly Check[], results: readonly ScenarioResult[], inProcess: readonly InProcessResult[] = []): CheckResult[] {
  const find = (name: string) => results.find((r) => r.name === name);
  const measured = (name: string) => inProcess.find((r) => r.name === name);
  return checks.map((check) => {
    const base = { label: check.label, kind: check.kind };
    switch (check.kind) {
      case 'rate':
      case 'resources': {
        const result = find(check.scenario);
        const value = result ? (check.kind === 'rate' ? result.requestsPerSecond : result.resourcesPerSecond) : measured(check.scenario)?.rate;
        return { ...base, value, pass: value === undefined ? false : value >= check.min };
      }
      case 'latency': {
        const value = find(check.scenario)?.p50Ms ?? measured(check.scenario)?.p50Ms;
        return { ...base, value, pass: value === undefined ? false : value <= check.maxP50Ms };
      }
      case 'ratio': {
        const numerator = find(check.numerator)?.requestsPerSecond;
        const denominator = find(check.denominator)?.requestsPerSecond;
        const value = numerator !== undefined && denominator !== undefined && denominator > 0 ? numerator / denominator : undefined;
        const pass = check.min === undefined ? undefined : value !== undefined && value >= check.min;
        return { ...base, value, pass };
      }
    }
  });
}

/** Why a measured scenario cannot be trusted: any failed request, or nothing succeeded at all. */
export function failuresOf(result: ScenarioResult): string[] {
  const failures: string[] = [];
  if (result.non2xx > 0) {
    const statuses = Object.entries(result.badStatuses).map(([status, count]) => `${status}×${count}`).join(', ');
    failures.push(`${result.name}: ${result.non2xx} non-2xx responses (${statuses})`);
  }
  if (result.errors > 0) failures.push(`${result.name}: ${result.errors} connection errors`);
  if (result.timeouts > 0) failures.push(`${result.name}: ${result.timeouts} timeouts`);
  if (result.ok === 0) failures.push(`${result.name}: no successful response`);
  return failures;
}
