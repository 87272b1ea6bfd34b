/**
 * `npm run test:crash [-- --rounds N --workers N --seed N]`: crash safety of the atomic commit. A real server
 * process (src/main.ts, Helia + LevelDB in a temporary data dir) under a write-heavy load (crash-load.ts) is
 * SIGKILLed at a random moment, N rounds. After each kill the store is opened again exactly as the server opens
 * it (LevelDB recovery, full verification at start) and checked:
 *   - every acknowledged write is readable at its acknowledged version with the content sent (meta apart), and
 *     its ledger entry is there;
 *   - nothing is half-visible: a transaction's resources are all stored or none, a refused write left nothing,
 *     no write landed twice; heads, versions, blocks, history and ledger agree (the start-up verification:
 *     src/ledger/fsck.ts, src/fhir/store-check.ts);
 *   - the search index is the one the stored versions give (src/fhir/search/index-check.ts), and a search by
 *     each acknowledged current identifier finds exactly its resource;
 *   - the ledger verifies.
 * Prints a line per round and a summary; exits 1 on any violation. test/fhir/crash.test.ts runs three rounds of
 * the same in the normal suite.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { freePort, startChild, type ChildServer } from '../../bench/servers.ts';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDevIssuer } from '../../src/consent/dev-issuer.ts';
import { checkSearchIndex } from '../../src/fhir/search/index-check.ts';
import type { VersionRecord } from '../../src/fhir/repository.ts';
import { parseEntry } from '../../src/ledger/entry.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { jsonSublevel, SUBLEVELS } from '../../src/storage/db.ts';
import { runLoad, TAG_SYSTEM, type LoadState } from './crash-load.ts';

export interface CrashOptions {
  rounds: number;
  workers?: number;
  /** The kill lands uniformly between these many ms after the round's first acknowledged write. */
  killAfterMs?: [number, number];
  log?: (line: string) => void;
}

export interface RoundSummary {
  round: number;
  killAfterMs: number;
  attempts: number;
  acked: number;
  /** Writes whose response never came: they may or may not have landed, but never in part. */
  inFlight: number;
  refused: number;
  versions: number;
  ledgerSize: number;
  violations: string[];
}

export interface CrashResult {
  rounds: RoundSummary[];
  violations: string[];
}

const PASSPHRASE = 'crash test';

/** Opens the stopped store as the server does and checks it against everything the load was told. */
export async function checkStore(app: App, state: LoadState, sampleSearches = 200): Promise<{ violations: string[]; versions: number }> {
  const violations: string[] = [];
  const decoder = new TextDecoder();
  const contents = new Map<string, unknown>();
  const byTag = new Map<string, string[]>();
  let versions = 0;
  for await (const record of jsonSublevel<VersionRecord>(app.db, SUBLEVELS.version).values()) {
    versions++;
    if (record.deleted) continue;
    const key = `${record.resourceType}/${record.id}/${record.versionId}`;
    let resource: Record<string, unknown>;
    try {
      resource = JSON.parse(decoder.decode(await app.repo.open(record)));
    } catch (err) {
      violations.push(`stored version ${key} cannot be opened: ${(err as Error).message}`);
      continue;
    }
    delete resource.meta;
    contents.set(key, resource);
    for (const identifier of (resource.identifier as Array<{ system?: string; value?: string }> | undefined) ?? []) {
      if (identifier.system === TAG_SYSTEM && identifier.value) byTag.set(identifier.value, [...(byTag.get(identifier.value) ?? []), key]);
    }
  }
  const recorded = new Set<string>();
  for (let start = 0; start < app.ledger.size(); start += 1000) {
    for (const { bytes, seq } of await app.ledger.getEntries(start, Math.min(app.ledger.size(), start + 1000))) {
      for (const e of parseEntry(bytes, seq).entity ?? []) if (e.version) recorded.add(`${e.reference}/${e.version}`);
    }
  }
  for (const [tag, keys] of byTag) if (keys.length > 1) violations.push(`write ${tag} landed ${keys.length} times: ${keys.join(', ')}`);

  const searchable: Array<{ type: string; id: string; tag: string }> = [];
  for (const attempt of state.attempts) {
    if (attempt.serverError) violations.push(`${attempt.kind} ${attempt.tags[0]} was answered ${attempt.serverError}`);
    const present = attempt.tags.filter((tag) => byTag.has(tag));
    if (attempt.kind === 'transaction' && present.length !== 0 && present.length !== attempt.tags.length) {
      violations.push(`transaction ${attempt.tags[0]} is half-visible: ${present.length} of ${attempt.tags.length} resources stored`);
    }
    if (attempt.refused && present.length > 0) violations.push(`${attempt.kind} ${attempt.tags[0]} was refused (${attempt.refused}) but is stored`);
    for (const [i, acked] of (attempt.acked ?? []).entries()) {
      const key = `${acked.type}/${acked.id}/${acked.version}`;
      const stored = contents.get(key);
      if (stored === undefined) violations.push(`acknowledged ${key} is not readable`);
      else if (!isDeepStrictEqual(stored, acked.content)) violations.push(`acknowledged ${key} differs from what was sent`);
      if (!recorded.has(key)) violations.push(`acknowledged ${key} has no ledger entry`);
      const head = await app.repo.head(acked.type, acked.id);
      if (!head || head.versionId < acked.version) violations.push(`acknowledged ${key} is newer than the head (${head?.versionId})`);
      else if (head.versionId === acked.version) searchable.push({ type: acked.type, id: acked.id, tag: attempt.tags[i]! });
    }
  }
  const index = await checkSearchIndex(app.repo);
  for (const p of index.problems.slice(0, 20)) violations.push(`search index: ${p.code} ${p.at}: ${p.message}`);
  // Search results for written identifiers, through the same engine the REST search uses.
  for (const { type, id, tag } of searchable.sort(() => Math.random() - 0.5).slice(0, sampleSearches)) {
    const found = await app.repo.findIds(type, { identifier: [`${TAG_SYSTEM}|${tag}`] });
    if (!isDeepStrictEqual(found, [id])) violations.push(`${type}?identifier=${tag} finds [${found.join(', ')}], not ${id}`);
  }
  const ledger = await verifyLedger(app.db);
  if (!ledger.ok) violations.push(`ledger: ${ledger.code} at ${ledger.index}: ${ledger.message}`);
  return { violations, versions };
}

export async function runCrashRounds(options: CrashOptions): Promise<CrashResult> {
  const log = options.log ?? (() => undefined);
  const [minKill, maxKill] = options.killAfterMs ?? [300, 2500];
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-crash-'));
  const port = await freePort();
  const env = {
    PORT: String(port),
    DATA_DIR: dataDir,
    MASTER_KEY_PASSPHRASE: PASSPHRASE,
    LOG_LEVEL: 'silent',
    // Checkpoints every few writes, so that kills land in checkpoint batches too.
    LEDGER_CHECKPOINT_INTERVAL_MS: '50',
  };
  const config = loadConfig(env);
  const state: LoadState = { attempts: [], known: new Map() };
  const rounds: RoundSummary[] = [];
  try {
    const token = await (await loadDevIssuer(config)).sign({ sub: 'crash', scope: 'system/*.cruds' });
    for (let round = 1; round <= options.rounds; round++) {
      const violations: string[] = [];
      const before = state.attempts.length;
      const killAfterMs = Math.round(minKill + Math.random() * (maxKill - minKill));
      let server: ChildServer | undefined;
      try {
        server = await startChild('crash', 'src/main.ts', env, `http://127.0.0.1:${port}`);
      } catch (err) {
        violations.push(`the server did not start after the previous kill: ${(err as Error).message}`);
      }
      if (server) {
        let stopped = false;
        // The kill is timed from the first acknowledged write, so that on a slow machine a round still kills a
        // server that is committing, not one still warming up.
        let firstAck!: () => void;
        const acknowledged = new Promise<void>((resolve) => (firstAck = resolve));
        const load = runLoad({ baseUrl: config.baseUrl, token, workers: options.workers ?? 8, prefix: `r${round}`, state, stopped: () => stopped, onAcknowledged: () => firstAck() });
        await Promise.race([acknowledged, load]);
        await new Promise((resolve) => setTimeout(resolve, killAfterMs));
        await server.kill();
        stopped = true;
        await load;
      }
      const attempts = state.attempts.slice(before);
      let app: App | undefined;
      let versions = 0;
      let ledgerSize = 0;
      try {
        app = await buildApp(config, { logger: false });
        const checked = await checkStore(app, state);
        violations.push(...checked.violations);
        versions = checked.versions;
        ledgerSize = app.ledger.size();
      } catch (err) {
        violations.push(`the store does not open after the kill: ${(err as Error).message}`);
      } finally {
        await app?.close();
      }
      const summary: RoundSummary = {
        round,
        killAfterMs,
        attempts: attempts.length,
        acked: attempts.filter((a) => a.acked).length,
        inFlight: attempts.filter((a) => !a.acked && !a.refused && !a.serverError).length,
        refused: attempts.filter((a) => a.refused).length,
        versions,
        ledgerSize,
        violations,
      };
      rounds.push(summary);
      log(
        `round ${String(round).padStart(2)}: killed ${String(killAfterMs).padStart(4)} ms after the first ack; ${String(summary.attempts).padStart(4)} writes, ` +
          `${String(summary.acked).padStart(4)} acknowledged, ${summary.inFlight} in flight, ${summary.refused} refused; store: ${versions} versions, ` +
          `${ledgerSize} ledger entries; ${violations.length === 0 ? 'OK' : `${violations.length} VIOLATION(S)`}`,
      );
      for (const v of violations.slice(0, 20)) log(`  ${v}`);
    }
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  return { rounds, violations: rounds.flatMap((r) => r.violations.map((v) => `round ${r.round}: ${v}`)) };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' }, workers: { type: 'string', default: '8' } } });
  const rounds = Number(values.rounds);
  const workers = Number(values.workers);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(workers) || workers < 1) {
    process.stderr.write('usage: npm run test:crash [-- --rounds N (default 20) --workers N (default 8)]\n');
    process.exit(2);
  }
  const started = Date.now();
  const result = await runCrashRounds({ rounds, workers, log: (line) => process.stdout.write(`${line}\n`) });
  const sum = (f: (r: RoundSummary) => number) => result.rounds.reduce((a, r) => a + f(r), 0);
  const last = result.rounds.at(-1);
  process.stdout.write(
    `\n${rounds} SIGKILL rounds in ${((Date.now() - started) / 1000).toFixed(0)} s: ${sum((r) => r.attempts)} writes, ${sum((r) => r.acked)} acknowledged, ` +
      `${sum((r) => r.inFlight)} in flight at a kill, ${sum((r) => r.refused)} refused; final store ${last?.versions} versions, ${last?.ledgerSize} ledger entries\n` +
      `${result.violations.length === 0 ? 'OK: no acknowledged write lost, nothing half-visible, index and ledger consistent after every kill' : `FAIL: ${result.violations.length} violation(s)`}\n`,
  );
  process.exitCode = result.violations.length === 0 ? 0 : 1;
}
