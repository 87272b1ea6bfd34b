/**
 * Starts a real sealed-fhir node for integration tests: real LevelDB and Helia in a temporary data dir, a real
 * HTTP listener on a free loopback port, real signed tokens from the node's development issuer.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { freePort } from '../../bench/servers.ts';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDevIssuer, type DevTokenRequest } from '../../src/consent/dev-issuer.ts';

export interface TestServer {
  app: App;
  baseUrl: string;
  dataDir: string;
  token(request?: Partial<DevTokenRequest>): Promise<string>;
  /** fetch against the FHIR base with a default token; `path` is relative to the base (e.g. `Patient/1`). */
  fhir(pathAndQuery: string, init?: FhirInit): Promise<FhirResult>;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface FhirInit {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** `false` sends no Authorization header. */
  token?: string | false;
}

export interface FhirResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

// One way to find a free loopback port, shared with the benchmark harness that starts servers too.
export { freePort };

export async function startServer(t: Test, env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = env.DATA_DIR ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-test-')));
  const port = await freePort();
  const config = loadConfig({ PORT: String(port), DATA_DIR: dataDir, MASTER_KEY_PASSPHRASE: 'test passphrase', LOG_LEVEL: 'silent', ...env });
  let app = await buildApp(config, { logger: false });
  await app.http.listen({ port: config.port, host: config.host });
  const issuer = await loadDevIssuer(config);
  const defaultToken = await issuer.sign({ sub: 'test-user', scope: 'system/*.cruds', fhirUser: 'Practitioner/test' });
  let stopped = false;

  const server: TestServer = {
    get app() {
      return app;
    },
    baseUrl: config.baseUrl,
    dataDir,
    token: (request = {}) => issuer.sign({ sub: 'test-user', scope: 'system/*.cruds', ...request }),
    async fhir(pathAndQuery, init = {}) {
      const headers: Record<string, string> = { accept: 'application/fhir+json', ...init.headers };
      const token = init.token === undefined ? defaultToken : init.token;
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (init.body !== undefined) {
        body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
        headers['content-type'] ??= 'application/fhir+json';
      }
      const response = await fetch(`${config.baseUrl}${pathAndQuery ? `/${pathAndQuery}` : ''}`, { method: init.method ?? 'GET', headers, body });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.close();
    },
    async restart() {
      await app.close();
      app = await buildApp(config, { logger: false });
      await app.http.listen({ port: config.port, host: config.host });
    },
  };
  t.teardown(async () => {
    await server.stop();
    if (!env.DATA_DIR) await fs.rm(dataDir, { recursive: true, force: true });
  });
  return server;
}
