/**
 * The bench's pure arithmetic: percentiles, the same-run checks, and which results make a run fail.
 */
import t from 'tap';
import type { Check, ScenarioResult } from '../../bench/scenario.ts';
import { evaluateChecks, failuresOf, percentile } from '../../bench/summary.ts';

function result(name: string, requestsPerSecond: number, extra: Partial<ScenarioResult> = {}): ScenarioResult {
  return {
    name,
    description: name,
    server: 'sealed',
    connections: 32,
    durationSeconds: 10,
    ok: Math.round(requestsPerSecond * 10),
    requestsPerSecond,
    resourcesPerSecond: requestsPerSecond,
    p50Ms: 1,
    p99Ms: 2,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    badStatuses: {},
    peakRssBytes: 0,
    serverCpuPercent: 0,
    benchCpuPercent: 0,
    serverCpuMsPerRequest: 0,
    ...extra,
  };
}

t.test('percentile is nearest-rank over sorted samples', async (t) => {
  const hundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  const cases: Array<[ArrayLike<number>, number, number]> = [
    [[], 50, 0],
    [[7], 50, 7],
    [[7], 99, 7],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 51, 3],
    [[1, 2, 3, 4], 100, 4],
    [[1, 2, 3, 4], 0, 1],
    [hundred, 50, 50],
    [hundred, 99, 99],
    [hundred, 99.5, 100],
  ];
  for (const [samples, p, expected] of cases) t.equal(percentile(samples, p), expected, `p${p} of ${samples.length} samples`);
});

t.test('checks compare rates and same-run ratios with their minimum', async (t) => {
  const checks: Check[] = [
    { kind: 'rate', label: 'creates', scenario: 'create', min: 1500 },
    { kind: 'ratio', label: 'read/bare', numerator: 'read', denominator: 'bare', min: 0.6 },
    { kind: 'ratio', label: 'mix/bare', numerator: 'read-mix', denominator: 'bare', min: 0.6 },
    { kind: 'rate', label: 'not run', scenario: 'search', min: 1 },
  ];
  const [creates, readRatio, mixRatio, missing] = evaluateChecks(checks, [
    result('create', 1500),
    result('read', 590),
    result('read-mix', 600),
    result('bare', 1000),
  ]);
  t.match(creates, { value: 1500, pass: true, kind: 'rate' }, 'exactly the minimum passes');
  t.match(readRatio, { value: 0.59, pass: false, kind: 'ratio' });
  t.match(mixRatio, { value: 0.6, pass: true });
  t.match(missing, { value: undefined, pass: false }, 'a scenario that did not run never passes');
  t.match(evaluateChecks(checks.slice(1, 2), [result('read', 10), result('bare', 0)])[0], { value: undefined, pass: false }, 'no ratio over zero');
});

t.test('resources per second, p50 latency, and ratios printed without a target', async (t) => {
  const checks: Check[] = [
    { kind: 'resources', label: 'import', scenario: 'transaction', min: 2500 },
    { kind: 'latency', label: 'search p50', scenario: 'search', maxP50Ms: 5 },
    { kind: 'ratio', label: 'search/bare', numerator: 'search', denominator: 'bare' },
    { kind: 'latency', label: 'not run', scenario: 'nothing', maxP50Ms: 5 },
  ];
  const [resources, latency, info, missing] = evaluateChecks(checks, [
    result('transaction', 40, { resourcesPerSecond: 2640 }),
    result('search', 500, { p50Ms: 5.01 }),
    result('bare', 2000),
  ]);
  t.match(resources, { value: 2640, pass: true }, 'resources/s, not requests/s');
  t.match(latency, { value: 5.01, pass: false }, 'a p50 above the bound is below target');
  t.match(info, { value: 0.25, pass: undefined }, 'no bound: printed for information');
  t.match(missing, { value: undefined, pass: false });
});

t.test('any failed request or an empty run is a failure', async (t) => {
  t.same(failuresOf(result('read', 100)), []);
  const failures = failuresOf(result('create', 100, { non2xx: 3, badStatuses: { '400': 2, '503': 1 }, errors: 1, timeouts: 1 }));
  t.equal(failures.length, 3);
  t.match(failures[0], /create: 3 non-2xx responses \(400×2, 503×1\)/);
  t.match(failuresOf(result('bare', 0)), [/no successful response/]);
});
