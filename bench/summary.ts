/**
 * Pure arithmetic over measured results: latency percentiles, the checks (targets and ratios measured in the
 * same run) and the list of failures that make the run exit non-zero. No I/O, so it is tested with tables.
 */
import type { Check, CheckResult, ScenarioResult } from './scenario.ts';

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

export function evaluateChecks(checks: readonly Check[], results: readonly ScenarioResult[]): CheckResult[] {
  const rate = (name: string) => results.find((r) => r.name === name)?.requestsPerSecond;
  return checks.map((check) => {
    let value: number | undefined;
    if (check.kind === 'rate') {
      value = rate(check.scenario);
    } else {
      const numerator = rate(check.numerator);
      const denominator = rate(check.denominator);
      value = numerator !== undefined && denominator !== undefined && denominator > 0 ? numerator / denominator : undefined;
    }
    return { label: check.label, kind: check.kind, value, min: check.min, pass: value !== undefined && value >= check.min };
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
