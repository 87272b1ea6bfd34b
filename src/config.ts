/**
 * The node's configuration: one typed object from environment variables, validated at start and printed
 * without secrets. Every option is documented in README.md (Configuration).
 */
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MAX_OPEN_FILES, DEFAULT_WRITE_BUFFER_MIB } from './storage/db.ts';

export interface TrustedIssuer {
  issuer: string;
  /** `https://…` (fetched and cached by jose) or `file:///…` (a JWKS file on disk). */
  jwksUri: string;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** FHIR base URL as clients see it; also the required `aud` of access tokens. No trailing slash. */
  baseUrl: string;
  /** Origin of the server (scheme://host:port), derived from baseUrl. */
  origin: string;
  trustedIssuers: TrustedIssuer[];
  /** When set, blocks go to this Kubo RPC API instead of the embedded Helia node. */
  ipfsApiUrl: string | undefined;
  /** Passphrase of the master key file; undefined in development (then generated and stored in the data dir). */
  masterKeyPassphrase: string | undefined;
  /**
   * Browser origins allowed to call the API (CORS): `*` for any, a list of exact origins, or false (no CORS
   * headers, preflights 404). Tokens travel only in the Authorization header, never in cookies, so an allowed
   * origin gains nothing a page without a token could use.
   */
  corsOrigins: '*' | string[] | false;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
  /** Deepest JSON nesting accepted in a request body. */
  maxJsonDepth: number;
  /**
   * Worker threads that validate and index resources being written (0: on the main thread). The default, one
   * fewer than the cores, leaves the main thread for HTTP, encryption and commits.
   */
  analysisWorkers: number;
  /** Whether the node's own development token issuer is trusted (default on). */
  devIssuer: boolean;
  logLevel: string;
  /**
   * LevelDB max_open_files of the node's database. LevelDB mmaps every open table, so this bounds the file pages
   * a large store keeps in the RSS (docs/benchmarks-ledger.md: +826 MiB after 10k proofs at 10M entries with
   * 1000, +40 MiB with 64) at the cost of reopening tables on a miss.
   */
  levelMaxOpenFiles: number;
  /** LevelDB write buffer (memtable) of the node's database, MiB: larger means less compaction per write, more RSS. */
  levelWriteBufferMiB: number;
  ledger: LedgerConfig;
}

export interface LedgerConfig {
  /** C2SP checkpoint origin line, also the name of the checkpoint signing key. */
  origin: string;
  /** Sign a checkpoint once this many entries are unsigned ... */
  checkpointEntries: number;
  /** ... or this many ms after the first unsigned entry, whichever comes first. */
  checkpointIntervalMs: number;
  /** What the server verifies at start before serving: `full` (ledger, checkpoints, every IPFS block), `ledger` (no resource blocks), `tail` (entries after the last checkpoint). */
  verifyOnStart: 'full' | 'ledger' | 'tail';
  /** Serve even if start-up verification finds tampering (loud warning, and a `tamper-override` ledger entry). */
  allowTampered: boolean;
}

function ledgerConfig(env: Env, base: URL): LedgerConfig {
  // A schema-less URL naming this log, as C2SP recommends: host, port and the server's path prefix + /ledger.
  const origin = env.LEDGER_ORIGIN || `${base.host}${base.pathname.replace(/\/fhir$/, '')}/ledger`;
  if (/[\s+]/u.test(origin)) throw new ConfigError('LEDGER_ORIGIN must not contain whitespace or "+"');
  const verifyOnStart = env.LEDGER_VERIFY_ON_START || 'full';
  if (verifyOnStart !== 'full' && verifyOnStart !== 'ledger' && verifyOnStart !== 'tail') {
    throw new ConfigError('LEDGER_VERIFY_ON_START must be one of full, ledger, tail');
  }
  const allow = env.LEDGER_ALLOW_TAMPERED ?? '';
  if (!['', '0', '1'].includes(allow)) throw new ConfigError('LEDGER_ALLOW_TAMPERED must be 0 or 1');
  return {
    origin,
    checkpointEntries: intOption(env, 'LEDGER_CHECKPOINT_ENTRIES', 1000, 1, 1_000_000_000),
    checkpointIntervalMs: intOption(env, 'LEDGER_CHECKPOINT_INTERVAL_MS', 1000, 10, 86_400_000),
    verifyOnStart,
    allowTampered: allow === '1',
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/**
 * `on` (or unset) / `off`, nothing else: a value meant to turn the development issuer off (`false`, `0`, `OFF`)
 * that left it on would keep accepting tokens anyone with the data dir can mint.
 */
function devIssuerOption(raw: string | undefined): boolean {
  if (raw === undefined || raw === '' || raw === 'on') return true;
  if (raw === 'off') return false;
  throw new ConfigError(`DEV_ISSUER must be on or off, got ${JSON.stringify(raw.slice(0, 40))}`);
}

function intOption(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function urlOption(name: string, raw: string, protocols: string[]): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${url.protocol}`);
  }
  return url;
}

function trustedIssuers(raw: string | undefined): TrustedIssuer[] {
  if (raw === undefined || raw.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('TRUSTED_ISSUERS must be a JSON array of {"issuer": "...", "jwksUri": "..."}');
  }
  if (!Array.isArray(parsed)) throw new ConfigError('TRUSTED_ISSUERS must be a JSON array');
  return parsed.map((item: unknown, i: number) => {
    const entry = item as Partial<TrustedIssuer> | null;
    if (typeof entry?.issuer !== 'string' || typeof entry.jwksUri !== 'string') {
      throw new ConfigError(`TRUSTED_ISSUERS[${i}] needs string "issuer" and "jwksUri"`);
    }
    urlOption(`TRUSTED_ISSUERS[${i}].issuer`, entry.issuer, ['https:', 'http:']);
    urlOption(`TRUSTED_ISSUERS[${i}].jwksUri`, entry.jwksUri, ['https:', 'file:']);
    return { issuer: entry.issuer, jwksUri: entry.jwksUri };
  });
}

function corsOrigins(raw: string | undefined): Config['corsOrigins'] {
  const value = raw?.trim() ?? '';
  if (value === '' || value === '*') return '*';
  if (value === 'off') return false;
  return value.split(',').map((item, i) => {
    const url = urlOption(`CORS_ORIGINS[${i}]`, item.trim(), ['https:', 'http:']);
    // An origin is scheme://host[:port] and nothing else; the browser sends it in exactly that form.
    if (url.origin !== item.trim()) throw new ConfigError(`CORS_ORIGINS entries must be origins like https://app.example.org, got ${JSON.stringify(item.trim())}`);
    return url.origin;
  });
}

export function loadConfig(env: Env = process.env): Config {
  const port = intOption(env, 'PORT', 8080, 0, 65535);
  // 0 lets the OS pick a port only once the server listens, so the default BASE_URL, and with it the `aud` every
  // token must carry, would name port 0, which nothing can reach. A BASE_URL given outright does not depend on it.
  if (port === 0 && !env.BASE_URL) {
    throw new ConfigError('PORT=0 (any free port) needs BASE_URL: without it the FHIR base URL and the audience of every token would say port 0');
  }
  const host = env.HOST || '127.0.0.1';
  const dataDir = path.resolve(env.DATA_DIR || './data');
  const hostForUrl = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const baseUrlRaw = (env.BASE_URL || `http://${hostForUrl}:${port}/fhir`).replace(/\/+$/, '');
  const base = urlOption('BASE_URL', baseUrlRaw, ['http:', 'https:']);
  if (!base.pathname.endsWith('/fhir')) throw new ConfigError(`BASE_URL must end with /fhir, got ${baseUrlRaw}`);
  const ipfsApiUrl = env.IPFS_API_URL ? urlOption('IPFS_API_URL', env.IPFS_API_URL, ['http:', 'https:']).toString() : undefined;
  const logLevel = env.LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  return {
    port,
    host,
    dataDir,
    baseUrl: baseUrlRaw,
    origin: base.origin,
    trustedIssuers: trustedIssuers(env.TRUSTED_ISSUERS),
    ipfsApiUrl,
    masterKeyPassphrase: env.MASTER_KEY_PASSPHRASE || undefined,
    corsOrigins: corsOrigins(env.CORS_ORIGINS),
    bodyLimit: intOption(env, 'BODY_LIMIT', 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxJsonDepth: intOption(env, 'MAX_JSON_DEPTH', 64, 8, 1024),
    analysisWorkers: intOption(env, 'ANALYSIS_WORKERS', Math.min(4, Math.max(0, os.availableParallelism() - 1)), 0, 64),
    devIssuer: devIssuerOption(env.DEV_ISSUER),
    levelMaxOpenFiles: intOption(env, 'LEVELDB_MAX_OPEN_FILES', DEFAULT_MAX_OPEN_FILES, 16, 100_000),
    levelWriteBufferMiB: intOption(env, 'LEVELDB_WRITE_BUFFER_MIB', DEFAULT_WRITE_BUFFER_MIB, 1, 1024),
    logLevel,
    ledger: ledgerConfig(env, base),
  };
}

/** The configuration as it may be printed or logged: secrets replaced by whether they are set. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    masterKeyPassphrase: config.masterKeyPassphrase ? '(set)' : '(not set: development key file)',
  };
}
