/**
 * The composition root: builds the stores, the ledger, the repository and the routes from one Config, and
 * knows how to close them in order. Nothing else in the server creates a store or reads configuration.
 */
import fs from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.ts';
import { errors } from './errors.ts';
import type { Principal } from './consent/principal.ts';
import type { Agent, LedgerWriter } from './ledger/types.ts';
import { loadDevIssuer } from './consent/dev-issuer.ts';
import { DEV_ISSUER_JWKS_PATH } from './consent/dev-issuer.ts';
import { createTokenVerifier } from './consent/token.ts';
import { buildCapabilities } from './fhir/capability.ts';
import { ExportJobs } from './fhir/export-jobs.ts';
import { PatientCompartment } from './fhir/compartment.ts';
import { fhirRoutes } from './fhir/http/routes.ts';
import { outcomeOf } from './fhir/outcome.ts';
import { KeyedLocks } from './fhir/locks.ts';
import { Repository } from './fhir/repository.ts';
import { checkKeys } from './fhir/key-check.ts';
import { checkRecords } from './fhir/store-check.ts';
import type { InteractionContext } from './fhir/request.ts';
import { createValidator } from './fhir/validate.ts';
import { indexFormatOp, indexFormatState, staleIndexMessage } from './fhir/search/index-format.ts';
import { indexHasher, inlineAnalyzer, type Analyzer } from './fhir/analysis/analyze.ts';
import { createAnalysisPool } from './fhir/analysis/pool.ts';
import { secretKey } from './storage/envelope.ts';
import { WorkUnit } from './fhir/work.ts';
import { AuditIndex } from './ledger/audit-index.ts';
import { Checkpointer } from './ledger/checkpoint.ts';
import { ledgerRoutes } from './ledger/http/routes.ts';
import { Ledger } from './ledger/log.ts';
import { parseVerifierKey, signerFromSeed, verifierKeyString } from './ledger/note.ts';
import { verifyOnStart } from './ledger/startup.ts';
import { storedVerifiers } from './ledger/fsck.ts';
import { openDatabase, writeBatch, type Database } from './storage/db.ts';
import { checkLevelDbFiles } from './storage/leveldb-files.ts';
import { createHeliaBlockStore } from './storage/helia-blocks.ts';
import { openKeyFile, openKeyring } from './storage/keyring.ts';
import { makeDirectory } from './storage/make-dir.ts';
import { createKuboBlockStore } from './storage/kubo-blocks.ts';
import { createSealedStore } from './storage/sealed-store.ts';
import type { BlockStore } from './storage/types.ts';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');

export interface App {
  config: Config;
  http: FastifyInstance;
  db: Database;
  ledger: Ledger;
  checkpointer: Checkpointer;
  blocks: BlockStore;
  repo: Repository;
  /** The FHIR core's context for one request by `principal` (the bulk importer dispatches through it in-process). */
  context(principal: Principal | undefined, agent: Agent): InteractionContext;
  close(): Promise<void>;
}

export interface BuildOptions {
  logger?: FastifyServerOptions['logger'];
  /**
   * Wraps the ledger writer that FHIR requests commit through. Only the benchmark's unaudited comparison server
   * (bench/unaudited-server.ts) passes it, to measure what auditing a read costs; `npm start` never does, and no
   * configuration or environment variable can.
   */
  workLedger?: (ledger: LedgerWriter) => LedgerWriter;
  /**
   * Opens a store whose search index was built under other rules (index-format.ts) instead of refusing it. Only
   * `npm run reindex` passes it, to rebuild that index.
   */
  allowOtherIndexFormat?: boolean;
}

/** Request headers FHIR clients send beyond the CORS-safelisted ones. */
const CORS_REQUEST_HEADERS = ['Authorization', 'Content-Type', 'Accept', 'Prefer', 'If-Match', 'If-None-Match', 'If-None-Exist', 'If-Modified-Since'];
/** Response headers a FHIR client reads: where a created resource is, its version, why a token was refused. */
const CORS_RESPONSE_HEADERS = ['Location', 'Content-Location', 'ETag', 'Last-Modified', 'WWW-Authenticate', 'Retry-After'];

/** One log line per request, with the path but never the query string: queries can carry PHI. */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    const line = { method: request.method, path: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (error) request.log.error({ ...line, err: error }, 'request failed');
    else request.log.info(line, 'request');
  }
}

/**
 * Requests Node's HTTP parser refuses before any route sees them: most often a search URL longer than the 16 KiB
 * of request line and headers Node accepts (431). Answered as an OperationOutcome on a closing connection, like
 * every other 4xx, rather than fastify's own JSON.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const diagnostics =
    status === 431
      ? 'The request line and headers exceed 16 KiB: send a long search as POST [type]/_search with a form body'
      : status === 408
        ? 'The request took too long to arrive'
        : 'The request is not valid HTTP';
  const body = JSON.stringify(outcomeOf([{ severity: 'error', code: status === 431 ? 'too-long' : 'invalid', diagnostics }]));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  await makeDirectory(config.dataDir, 0o700).catch((err: Error) => {
    throw new Error(`DATA_DIR ${config.dataDir} cannot be used: ${err.message}`, { cause: err });
  });
  const http = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    bodyLimit: config.bodyLimit,
    logController: new OneLinePerRequest(),
    return503OnClosing: true,
    // Malformed percent-encoding is rejected by the router before any handler: still an OperationOutcome.
    frameworkErrors: (_error, _req, reply: FastifyReply) => {
      const outcome = outcomeOf([{ severity: 'error', code: 'invalid', diagnostics: 'The request URL is malformed (bad percent-encoding)' }]);
      void reply.code(400).type('application/fhir+json; charset=utf-8').send(JSON.stringify(outcome));
    },
    clientErrorHandler: answerClientError,
  });
  const warn = (message: string) => http.log.warn(message);

  const dbDir = path.join(config.dataDir, 'db');
  // LevelDB's own checksums, before LevelDB can silently drop a bad log record on open (src/storage/leveldb-files.ts).
  const fileProblems = config.ledger.verifyOnStart === 'tail' ? [] : await checkLevelDbFiles(dbDir, { tables: config.ledger.verifyOnStart === 'full' });
  // Not even opened: LevelDB's recovery would rewrite the log into a table without the bad records, and the next
  // start would find nothing wrong with the smaller store.
  if (fileProblems.length > 0 && !config.ledger.allowTampered) {
    const summary = fileProblems.slice(0, 5).map((p) => `${p.code}: ${p.message}`).join('; ');
    throw errors.internal(`The database files fail their checksums; refusing to open them (LEDGER_ALLOW_TAMPERED=1 overrides): ${summary}`, 'ERR_LEDGER_TAMPERED');
  }
  // Shared with worker threads: the start-up verification of a large ledger checks chunks of it in parallel.
  const db = await openDatabase(dbDir, { multithreading: true, maxOpenFiles: config.levelMaxOpenFiles, writeBufferMiB: config.levelWriteBufferMiB });
  const opened: Array<() => Promise<void>> = [() => db.close()];
  const closeAll = async () => {
    for (const close of opened.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    // One read, before the minutes a full verification of a large store can take: a store whose search index was
    // built under other rules is refused at once, with the instruction (index-format.ts).
    const indexFormat = await indexFormatState(db);
    if (indexFormat.state === 'empty') await writeBatch(db, [indexFormatOp(db)], { sync: true });
    if (indexFormat.state === 'other' && !options.allowOtherIndexFormat) {
      throw errors.unavailable(staleIndexMessage(indexFormat.found), 'ERR_SEARCH_INDEX_FORMAT');
    }
    const keyStore = await openKeyFile({ dataDir: config.dataDir, passphrase: config.masterKeyPassphrase, warn });
    const keyring = await openKeyring({ db, keyStore });
    const blocks: BlockStore = config.ipfsApiUrl ? await createKuboBlockStore({ url: config.ipfsApiUrl }) : await createHeliaBlockStore({ db });
    opened.push(() => blocks.close());
    const auditIndex = new AuditIndex(db);
    const ledger = await Ledger.open(db, { entryOps: auditIndex.ops });
    opened.push(() => ledger.close());
    // The checkpoint key is derived from the master key (HKDF, purpose 'checkpoint-signing'): it is protected exactly
    // as the master key is and needs no file of its own; docs/ledger.md §5 says what rotating the master key means.
    const signer = signerFromSeed(config.ledger.origin, await keyStore.deriveKey('checkpoint-signing'));
    const ownVerifier = parseVerifierKey(verifierKeyString(signer.name, signer.publicKey));
    // The AuditEvent index of a store older than it (or built under an older format) is rebuilt from the entries
    // first, so that searches answer by today's rules and verification can hold it to the entries. An entry too
    // broken to index is the verification's finding; a rebuild that fails is retried at the next start.
    const rebuilt = await auditIndex.upgrade({ log: (message) => http.log.info(message) }).catch((err: unknown) => {
      http.log.error({ err }, 'AuditEvent index: the rebuild failed; searches may miss events until a start completes it');
      return 0;
    });
    if (rebuilt > 0) http.log.info(`AuditEvent index: rebuilt from ${rebuilt} entries`);
    const problems = await verifyOnStart(db, ledger, {
      mode: config.ledger.verifyOnStart,
      localBlocks: blocks.kind === 'helia',
      verifiers: [ownVerifier, ...(await storedVerifiers(db)).filter((v) => v.name !== ownVerifier.name || !Buffer.from(v.publicKey).equals(ownVerifier.publicKey))],
    });
    // The records reads go through (heads, versions, history) are held to the entries that recorded them, and
    // to the node's keys: every KEK and every version's data key must still unwrap (through the data key's label,
    // with the record's lastUpdated and method). ~25 µs per version, a fraction of the records check (docs/ledger.md §11).
    if (config.ledger.verifyOnStart !== 'tail') {
      problems.unshift(...fileProblems, ...(await checkRecords(db)).problems, ...(await checkKeys(db, keyStore)).problems);
    }
    if (problems.length > 0) {
      const summary = problems.slice(0, 5).map((p) => `${p.code}${p.index !== undefined ? ` at entry ${p.index}` : ''}: ${p.message}`).join('; ');
      if (!config.ledger.allowTampered) {
        throw errors.internal(`The ledger failed verification at start; refusing to serve (LEDGER_ALLOW_TAMPERED=1 overrides): ${summary}`, 'ERR_LEDGER_TAMPERED');
      }
      http.log.fatal({ problems: problems.slice(0, 20) }, `!!! LEDGER TAMPERING DETECTED — SERVING ANYWAY BECAUSE LEDGER_ALLOW_TAMPERED=1 !!! ${summary}`);
      await ledger.commit({ entries: [{ interaction: 'tamper-override', status: 500, agent: {}, error: problems[0]!.code, purpose: 'LEDGER_ALLOW_TAMPERED' }] });
    }
    const checkpointer = await Checkpointer.open({
      db,
      ledger,
      blocks,
      signer,
      origin: config.ledger.origin,
      everyEntries: config.ledger.checkpointEntries,
      everyMs: config.ledger.checkpointIntervalMs,
      onError: (err) => http.log.error({ err }, 'checkpoint signing failed'),
    });
    opened.push(() => checkpointer.close());
    const profilesDir = path.join(PROJECT_ROOT, 'profiles');
    // The keyring's content-hash key (same HKDF purpose): index values are its HMACs on every thread.
    const hashKeyBytes = await keyStore.deriveKey('content-hash');
    const hashKey = secretKey(hashKeyBytes);
    hashKeyBytes.fill(0);
    // The workers start (and build their validators) on other cores while this thread builds its own, which also
    // answers while a worker that died is being replaced.
    let inline: Analyzer | undefined;
    const pool = config.analysisWorkers > 0
      ? createAnalysisPool({
          size: config.analysisWorkers,
          settings: { profilesDir, maxDepth: config.maxJsonDepth, baseUrl: config.baseUrl },
          hashKey: () => new Uint8Array(hashKey.export()),
          onWorkerError: (err) => http.log.error({ err }, 'an analysis worker died; it is being replaced'),
          fallback: { analyze: (resource, options) => inline!.analyze(resource, options), close: async () => undefined },
        })
      : undefined;
    // Closed with the rest even if start-up fails before the pool is awaited (its threads would keep the process
    // alive); this handler also keeps a failed start from surfacing as an unhandled rejection meanwhile.
    if (pool) opened.push(() => pool.then((started) => started.close(), () => undefined));
    const validator = createValidator({ profilesDir, maxDepth: config.maxJsonDepth });
    const compartment = new PatientCompartment();
    const indexHash = indexHasher(hashKey);
    inline = inlineAnalyzer({ validator, compartment, baseUrl: config.baseUrl, indexHash });
    const analyzer = pool ? await pool : inline;
    const repo = new Repository(db, {
      sealed: createSealedStore({ blocks, keyring }),
      validator,
      baseUrl: config.baseUrl,
      contentHash: (bytes) => keyring.contentHash(bytes),
      indexHash,
      analyzer,
    });
    const locks = new KeyedLocks();
    const workLedger = options.workLedger ? options.workLedger(ledger) : ledger;
    const devIssuer = config.devIssuer ? await loadDevIssuer(config) : undefined;
    const verifier = await createTokenVerifier(devIssuer ? { config, devIssuer } : { config });
    const capabilities = buildCapabilities(config.baseUrl, new Date().toISOString(), { cors: config.corsOrigins !== false });
    const exportJobs = new ExportJobs(db);

    const context = (principal: Principal | undefined, agent: Agent): InteractionContext => ({
      baseUrl: config.baseUrl,
      principal,
      agent,
      repo,
      validator,
      capabilities,
      work: new WorkUnit(workLedger, locks, false),
      newWork: (deferred) => new WorkUnit(workLedger, locks, deferred),
      auditLog: { ledger, index: auditIndex },
      exportJobs,
    });

    if (config.corsOrigins !== false) {
      // Browser SMART apps: every response (errors and 401s included) carries the CORS headers, so the app can
      // read the OperationOutcome and WWW-Authenticate; preflights are answered before authentication.
      await http.register(cors, {
        origin: config.corsOrigins,
        methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
        allowedHeaders: CORS_REQUEST_HEADERS,
        exposedHeaders: CORS_RESPONSE_HEADERS,
        credentials: false,
        maxAge: 600,
        strictPreflight: false,
      });
    }
    http.get('/healthz', async () => ({ status: 'ok' }));
    http.get('/readyz', async (_req, reply) => {
      // Every write and read needs the block store: a remote IPFS node that is down makes this node unready.
      const ipfs = db.status === 'open' ? await blocks.reachable() : false;
      const ready = db.status === 'open' && ipfs;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', ledgerSize: ledger.size(), ipfs: ipfs ? 'reachable' : 'unreachable' });
    });
    http.get('/openapi.yaml', async (_req, reply) => reply.type('application/yaml').send(await fs.readFile(path.join(PROJECT_ROOT, 'openapi.yaml'))));
    if (devIssuer) http.get(DEV_ISSUER_JWKS_PATH, async () => devIssuer.jwks);

    await http.register(ledgerRoutes, { ledger, checkpointer, authenticate: (authorization) => verifier.verify(authorization) });
    await http.register(fhirRoutes, {
      baseUrl: config.baseUrl,
      maxJsonDepth: config.maxJsonDepth,
      authenticate: (authorization) => verifier.verify(authorization),
      context,
    });
    await http.ready();
    return {
      config,
      http,
      db,
      ledger,
      checkpointer,
      blocks,
      repo,
      context,
      async close() {
        await http.close();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
