/**
 * Starts a node: configuration → app → listen, and a clean shutdown on SIGTERM/SIGINT (in-flight requests
 * finish, the ledger drains its queue, the database closes). `npm start` runs it through src/main.ts; the
 * benchmark's comparison server runs it with its own build options.
 */
import { buildApp, type BuildOptions } from './app.ts';
import { ConfigError, describeConfig, loadConfig } from './config.ts';
import { isLockedError } from './storage/db.ts';

export async function serve(options: BuildOptions = {}): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sealed-fhir: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const app = await buildApp(config, options);
  app.http.log.info({ config: describeConfig(config) }, 'configuration');
  const address = await app.http.listen({ port: config.port, host: config.host });

  const tokenHint = config.devIssuer
    ? `Get a development token:  npm run -s token -- --scope "system/*.cruds"\n` +
      `Then:  curl -H "Authorization: Bearer $TOKEN" ${config.baseUrl}/metadata`
    : 'The development issuer is off (DEV_ISSUER=off): use a token from a TRUSTED_ISSUERS authorization server.';
  // With PORT=0 the port is known only now, and BASE_URL (required then) need not name it.
  const listening = config.port === 0 ? ` (listening on ${address})` : '';
  process.stdout.write(`\nsealed-fhir is serving FHIR R4 at ${config.baseUrl}${listening}\n${tokenHint}\n\n`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.http.log.info({ signal }, 'shutting down');
    try {
      await app.close();
      process.exit(0);
    } catch (err) {
      app.http.log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** For entry points: a start that fails prints one line and exits non-zero. */
export function serveOrExit(options: BuildOptions = {}): void {
  serve(options).catch((err: unknown) => {
    const message = isLockedError(err)
      ? `the data dir is in use by another process (a running server, an import or a reindex): LevelDB allows one at a time (${err instanceof Error ? err.message : String(err)})`
      : err instanceof Error ? err.message : String(err);
    process.stderr.write(`sealed-fhir: failed to start: ${message}\n`);
    process.exit(1);
  });
}
