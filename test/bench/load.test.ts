/**
 * The load path end to end against the real bare server in a child process: successes are counted with their
 * latencies, failures are counted as failures (never as throughput), and the child is sampled and stopped.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { measure } from '../../bench/load.ts';
import { freePort, startChild, watchUsage } from '../../bench/servers.ts';

t.test('measure against the bare server', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-bench-test-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const bodyFile = path.join(dir, 'body.json');
  const body = '{"resourceType":"Patient","id":"p1"}';
  await fs.writeFile(bodyFile, body);
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const headers = { 'content-type': 'application/fhir+json; charset=utf-8', etag: 'W/"1"' };
  const searchFile = path.join(dir, 'search.json');
  await fs.writeFile(searchFile, '{"resourceType":"Bundle","type":"searchset"}');
  const routesFile = path.join(dir, 'routes.json');
  await fs.writeFile(routesFile, JSON.stringify([
    { url: '/fhir/Patient/p1', bodyFile, headers },
    { url: '/fhir/Observation?patient=p1&code=x', bodyFile: searchFile, headers: {} },
  ]));
  const bare = await startChild('bare', 'bench/bare-server.ts', { PORT: String(port), ROUTES_FILE: routesFile }, origin);
  t.teardown(() => bare.stop());

  const response = await fetch(`${origin}/fhir/Patient/p1`);
  t.equal(await response.text(), body, 'serves the bytes it was given');
  t.equal(response.headers.get('content-type'), headers['content-type']);
  t.equal(response.headers.get('etag'), headers.etag);
  t.equal(await (await fetch(`${origin}/fhir/Observation?patient=p1&code=x`)).text(), '{"resourceType":"Bundle","type":"searchset"}', 'each URL, query included, has its own bytes');
  t.equal((await fetch(`${origin}/fhir/Observation?patient=p1&code=y`)).status, 404, 'an URL not captured is not served');

  const usage = watchUsage(bare, 20);
  const ok = await measure({ origin, connections: 4, durationSeconds: 1, warmupSeconds: 0, request: { method: 'GET', path: '/fhir/Patient/p1' } });
  const { peakRssBytes, cpuPercent, cpuSeconds } = usage.stop();
  t.ok(ok.ok > 50, `successes counted (${ok.ok})`);
  t.match(ok, { non2xx: 0, errors: 0, timeouts: 0, badStatuses: {} });
  t.ok(ok.p50Ms > 0 && ok.p99Ms >= ok.p50Ms, 'latency percentiles in float ms');
  t.ok(peakRssBytes > 10 * 2 ** 20, 'the child was sampled');
  t.ok(cpuPercent > 0 && cpuSeconds > 0, 'the child used CPU');

  const missing = await measure({ origin, connections: 2, durationSeconds: 1, warmupSeconds: 1, request: { method: 'GET', path: '/nowhere' } });
  t.equal(missing.ok, 0, '404s are not successes');
  t.ok(missing.non2xx > 0 && missing.badStatuses['404'] === missing.non2xx, 'warm-up and measured 404s are all reported');

  // The soak's shape: several requests in turn on each connection, a rate cap, every response seen.
  const seen: Record<number, number> = {};
  const mixed = await measure({
    origin, connections: 2, durationSeconds: 2, warmupSeconds: 0, overallRate: 20,
    request: { method: 'GET', path: '/unused' },
    requests: [{ method: 'GET', path: '/fhir/Patient/p1' }, { method: 'GET', path: '/nowhere' }],
    onResponse: (status) => (seen[status] = (seen[status] ?? 0) + 1),
  });
  t.ok(seen[200]! > 0 && seen[404]! > 0, `both requests of the mix were sent (${JSON.stringify(seen)})`);
  t.ok(Math.abs(seen[200]! - seen[404]!) <= 2, 'in turn');
  t.equal(mixed.ok, seen[200], 'onResponse saw every success');
  t.ok(seen[200]! + seen[404]! <= 20 * 3, 'the rate cap holds (20/s for 2 s)');

  await bare.stop();
  t.equal(bare.rssBytes(), undefined, 'stopped');
});

t.test('kill() ends a child with SIGKILL', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-bench-test-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, 'routes.json'), '[]');
  const port = await freePort();
  const bare = await startChild('bare', 'bench/bare-server.ts', { PORT: String(port), ROUTES_FILE: path.join(dir, 'routes.json') }, `http://127.0.0.1:${port}`);
  await bare.kill();
  t.match(bare.exitReport(), /exited \(SIGKILL\)/);
  await bare.kill(); // a second kill of a dead process is a no-op
});

t.test('a server that cannot start is an error naming it', async (t) => {
  const port = await freePort();
  await t.rejects(startChild('bare', 'bench/bare-server.ts', { PORT: String(port) }, `http://127.0.0.1:${port}`), /bare server .* exited \(2\).*ROUTES_FILE are required/s);
});
