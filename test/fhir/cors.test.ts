/**
 * CORS for browser SMART apps: preflights answered without a token, the headers on every response (401s and
 * OperationOutcomes too, so the app can read why), only the configured origins, and none of it when switched off.
 */
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { startServer } from '../helpers/server.ts';

const APP = 'https://app.example.org';

function preflight(url: string, origin: string, method = 'PUT', headers = 'authorization, content-type, if-match, prefer') {
  return fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });
}

t.test('CORS_ORIGINS: any origin by default, a list of origins, off; anything else stops the server', async (t) => {
  t.equal(loadConfig({}).corsOrigins, '*');
  t.equal(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins, '*');
  t.equal(loadConfig({ CORS_ORIGINS: 'off' }).corsOrigins, false);
  t.same(loadConfig({ CORS_ORIGINS: `${APP}, http://localhost:3000` }).corsOrigins, [APP, 'http://localhost:3000']);
  for (const bad of [`${APP}/`, `${APP}/launch`, 'app.example.org', 'ftp://x.org', `${APP},`, '**']) {
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), ConfigError, bad);
  }
});

t.test('with the default, any origin may call the API; the headers ride on errors too', async (t) => {
  const server = await startServer(t);
  const pre = await preflight(`${server.baseUrl}/Patient/abc`, APP);
  t.equal(pre.status, 204, 'preflight answered without a token');
  t.equal(pre.headers.get('access-control-allow-origin'), '*');
  t.match(pre.headers.get('access-control-allow-methods'), /PUT/);
  t.match(pre.headers.get('access-control-allow-methods'), /PATCH/);
  for (const header of ['authorization', 'content-type', 'if-match', 'prefer', 'if-none-exist']) {
    t.match(pre.headers.get('access-control-allow-headers')?.toLowerCase(), header, `allows ${header}`);
  }
  t.equal(pre.headers.get('access-control-allow-credentials'), null, 'never credentials: tokens are bearer headers');

  const created = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', gender: 'other' }, headers: { origin: APP } });
  t.equal(created.status, 201);
  t.equal(created.headers.get('access-control-allow-origin'), '*');
  const exposed = created.headers.get('access-control-expose-headers')?.toLowerCase() ?? '';
  for (const header of ['location', 'etag', 'last-modified', 'www-authenticate']) t.match(exposed, header, `exposes ${header}`);

  const refused = await server.fhir('Patient', { token: false, headers: { origin: APP } });
  t.equal(refused.status, 401);
  t.equal(refused.headers.get('access-control-allow-origin'), '*', 'a 401 is readable by the app');
  t.equal(refused.body?.resourceType, 'OperationOutcome');

  const metadata = await server.fhir('metadata', { token: false, headers: { origin: APP } });
  t.equal(metadata.body.rest[0].security.cors, true, 'the CapabilityStatement says so');
});

t.test('a list of origins: only those get the headers', async (t) => {
  const server = await startServer(t, { CORS_ORIGINS: `${APP},http://localhost:3000` });
  const allowed = await preflight(`${server.baseUrl}/Observation`, 'http://localhost:3000', 'GET', 'authorization');
  t.equal(allowed.status, 204);
  t.equal(allowed.headers.get('access-control-allow-origin'), 'http://localhost:3000');
  t.match(allowed.headers.get('vary') ?? '', /origin/i, 'caches keep answers per origin apart');
  const other = await preflight(`${server.baseUrl}/Observation`, 'https://evil.example.com', 'GET', 'authorization');
  t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin gets no allowance');
  const read = await server.fhir('metadata', { headers: { origin: 'https://evil.example.com' } });
  t.equal(read.status, 200);
  t.equal(read.headers.get('access-control-allow-origin'), null);
});

t.test('off: no CORS headers, no preflight route, and the CapabilityStatement says cors false', async (t) => {
  const server = await startServer(t, { CORS_ORIGINS: 'off' });
  const pre = await preflight(`${server.baseUrl}/Patient/abc`, APP);
  t.equal(pre.status, 404);
  t.equal(pre.headers.get('access-control-allow-origin'), null);
  const metadata = await server.fhir('metadata', { headers: { origin: APP } });
  t.equal(metadata.headers.get('access-control-allow-origin'), null);
  t.equal(metadata.body.rest[0].security.cors, false);
});
