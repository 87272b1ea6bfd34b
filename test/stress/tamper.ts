/**
 * `npm run test:tamper [-- --trials N --seed N]`: tamper detection. A store is filled with a realistic workload
 * (official R4 examples, a Synthea transaction Bundle, updates, reads and searches) and stopped; then for each
 * trial a fresh copy gets ONE random byte changed in one target, and the trial is judged:
 *   detected   the server refuses to start (full verification at start), a read or search answers 5xx, the
 *              search index check (`npm run reindex -- --check`) or `npm run verify -- --data-dir` fails;
 *   undetected a live key or value changed (or vanished) and every check passed — listed with what changed,
 *              and whether a read or search then answered differently from the untouched store ("silently
 *              wrong") or not at all affected what clients see;
 *   dead       no live key or value differs (all of them re-read before and after): the byte was in a region
 *              LevelDB no longer reads (an overwritten record, a deleted block's slack), not counted as either.
 * Targets, in turn: raw bytes of LevelDB table files (.ldb) aimed at data blocks holding index records, ledger
 * records or IPFS blocks, anywhere in a table file, and in the write-ahead log (.log); and, through LevelDB
 * itself (an attacker who rewrites records with valid checksums), one byte of a resource's IPFS block, of a
 * checkpoint's block, of an index record or of a ledger record.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { Level } from 'level';
import { CID } from 'multiformats/cid';
import { base32 } from 'multiformats/bases/base32';
import { buildApp, type App } from '../../src/app.ts';
import { main as verifyCli } from '../../src/cli/verify.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDevIssuer } from '../../src/consent/dev-issuer.ts';
import { checkSearchIndex } from '../../src/fhir/search/index-check.ts';
import { REJECTED_EXAMPLES } from '../fixtures/fhir-r4-examples/rejected.ts';
import { dataBlocks, sublevelOf } from './sstable.ts';

const EXAMPLES = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');
const SYNTHEA_DIR = path.resolve(import.meta.dirname, '../fixtures/synthea');
const SYNTHEA = path.join(SYNTHEA_DIR, '8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json');
const SYNTHEA_SHARED = ['0-hospitalInformation1625911868739.json', '0-practitionerInformation1625911868739.json'].map((f) => path.join(SYNTHEA_DIR, '_shared', f));
const BASE_URL = 'http://127.0.0.1:8080/fhir';
const CHILD_TIMEOUT_MS = 300_000;

export const TARGETS = ['ldb:index', 'ldb:ledger', 'ldb:blocks', 'ldb:any', 'log', 'block:resource', 'block:checkpoint', 'record:index', 'record:ledger'] as const;
export type Target = (typeof TARGETS)[number];

const GROUPS: Record<string, 'index' | 'ledger' | 'blocks' | 'helia'> = {
  head: 'index', version: 'index', 'type-history': 'index', 'system-history': 'index', kek: 'index',
  'search-value': 'index', 'resource-entries': 'index', 'resource-value': 'index', 'import-progress': 'index', 'search-meta': 'index',
  'ledger-entry': 'ledger', 'ledger-hash': 'ledger', 'ledger-meta': 'ledger', 'ledger-checkpoint': 'ledger',
  'audit-patient': 'ledger', 'audit-agent': 'ledger', 'audit-entity': 'ledger', 'audit-subtype': 'ledger', 'audit-time': 'ledger', 'audit-meta': 'ledger',
  blocks: 'blocks', 'ipfs-datastore': 'helia',
};

export interface Trial {
  target: Target;
  where: string;
  /** Live keys whose value changed, that vanished or appeared (printable), or the error reading them. */
  affected: string[];
  verdict: 'detected' | 'undetected' | 'dead';
  by?: string;
  detail?: string;
  /** Reads or searches that answered 2xx/4xx differently from the untouched store. */
  wrong: string[];
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** A small deterministic PRNG (mulberry32), so that a reported trial can be replayed with --seed. */
export function seeded(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const envOf = (dir: string) => ({ DATA_DIR: dir, PORT: '8080', BASE_URL, MASTER_KEY_PASSPHRASE: 'tamper test', LOG_LEVEL: 'silent' });
const printable = (key: Buffer) => key.toString('latin1').replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

async function inject(app: App, token: string, method: string, url: string, body?: unknown) {
  const res = await app.http.inject({
    method: method as 'GET',
    url: `/fhir${url ? `/${url}` : ''}`,
    headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json', ...(body ? { 'content-type': 'application/fhir+json' } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });
  let parsed: Record<string, any> | undefined;
  try {
    parsed = res.body ? (JSON.parse(res.body) as Record<string, any>) : undefined;
  } catch {
    parsed = { unparsable: res.body.slice(0, 200) };
  }
  return { status: res.statusCode, body: parsed };
}

export interface Workload {
  dir: string;
  token: string;
  /** Read paths (every version and every head) and search queries, with the untouched store's answers. */
  answers: Map<string, unknown>;
  /** Base32 multihash keys (as in the `blocks` sublevel) of the checkpoint blocks. */
  checkpointBlocks: Set<string>;
  resources: number;
  versions: number;
}

/** What a client sees for one path: a read's status and body, a search's status and sorted result ids. */
async function answer(app: App, token: string, url: string): Promise<unknown> {
  const res = await inject(app, token, 'GET', url);
  if (res.body?.resourceType === 'Bundle' && url.includes('?')) {
    return [res.status, res.body.total, (res.body.entry ?? []).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort()];
  }
  return [res.status, res.body];
}

async function answerAll(app: App, token: string, urls: string[]): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  const queue = [...urls];
  // Concurrent, so that the read entries share group commits.
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let url = queue.shift(); url !== undefined; url = queue.shift()) out.set(url, await answer(app, token, url));
  }));
  return out;
}

/** Fills a store in two sessions (so the tables hold the first and the write-ahead log the second) and stops it. */
export async function writeWorkload(dir: string, exampleStride = 10): Promise<Workload> {
  const config = loadConfig(envOf(dir));
  const token = await (await loadDevIssuer(config)).sign({ sub: 'tamper', scope: 'system/*.cruds', fhirUser: 'Practitioner/tamper' });
  let app = await buildApp(config, { logger: false });
  const files = (await fs.readdir(EXAMPLES)).filter((f) => f.endsWith('.json') && !REJECTED_EXAMPLES[f] && !f.startsWith('AuditEvent-')).sort();
  for (const file of files.filter((_, i) => i % exampleStride === 0)) {
    const example = JSON.parse(await fs.readFile(path.join(EXAMPLES, file), 'utf8'));
    const res = await inject(app, token, example.id ? 'PUT' : 'POST', example.id ? `${example.resourceType}/${example.id}` : example.resourceType, example);
    if (res.status >= 300) throw new Error(`${file}: ${res.status}`);
  }
  // Synthea's organizations, locations and practitioners first (only those the patient bundle references,
  // conditionally, and what they reference in turn), then the patient's transaction Bundle as it is.
  const patientBundle = JSON.parse(await fs.readFile(SYNTHEA, 'utf8'));
  const shared = (await Promise.all(SYNTHEA_SHARED.map(async (f) => JSON.parse(await fs.readFile(f, 'utf8')).entry as Array<{ resource: any }>))).flat();
  const conditional = (value: unknown) => [...JSON.stringify(value).matchAll(/"reference":"([A-Za-z]+\?identifier=[^"]+)"/g)].map((m) => m[1]!);
  const wanted = new Set(conditional(patientBundle));
  const kept = new Set<(typeof shared)[number]>();
  for (let grown = true; grown; ) {
    grown = false;
    for (const entry of shared) {
      const r = entry.resource;
      if (kept.has(entry) || !(r.identifier ?? []).some((i: any) => wanted.has(`${r.resourceType}?identifier=${i.system}|${i.value}`))) continue;
      kept.add(entry);
      grown = true;
      for (const ref of conditional(r)) wanted.add(ref);
    }
  }
  for (const bundle of [{ resourceType: 'Bundle', type: 'transaction', entry: [...kept] }, patientBundle]) {
    const imported = await inject(app, token, 'POST', '', bundle);
    if (imported.status !== 200) throw new Error(`Synthea: ${imported.status} ${JSON.stringify(imported.body).slice(0, 300)}`);
  }
  await app.close();

  // Second session: its writes stay in the write-ahead log, as the last minutes before a stop would.
  app = await buildApp(config, { logger: false });
  const patients = (await inject(app, token, 'GET', 'Patient?_count=1000')).body!.entry.map((e: any) => e.resource);
  for (const p of patients.slice(0, 5)) {
    const res = await inject(app, token, 'PUT', `Patient/${p.id}`, { ...p, meta: undefined, active: !p.active });
    if (res.status !== 200) throw new Error(`update Patient/${p.id}: ${res.status}`);
  }
  const created = await inject(app, token, 'POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Tamper', given: ['Late'] }], birthDate: '1999-09-09' });
  if (created.status !== 201) throw new Error(`create: ${created.status}`);

  const urls: string[] = [];
  const types = new Set<string>();
  let versions = 0;
  for await (const head of app.repo.allHeads()) {
    types.add(head.resourceType);
    if (!head.deleted) urls.push(`${head.resourceType}/${head.id}`);
    for (let v = 1; v <= head.versionId; v++, versions++) urls.push(`${head.resourceType}/${head.id}/_history/${v}`);
  }
  const resources = urls.filter((u) => !u.includes('/_history/')).length;
  for (const type of types) urls.push(`${type}?_count=1000`);
  for (const p of (await inject(app, token, 'GET', 'Patient?_count=1000')).body!.entry.map((e: any) => e.resource)) {
    urls.push(`Observation?subject=Patient/${p.id}&_count=1000`, `Condition?patient=${p.id}&_count=1000`, `Encounter?patient=${p.id}&date=ge2000&_count=1000`);
    if (p.birthDate) urls.push(`Patient?birthdate=${p.birthDate}`);
    const family = p.name?.[0]?.family;
    if (family) urls.push(`Patient?family=${encodeURIComponent(family)}`);
    const identifier = p.identifier?.find((i: any) => i.system && i.value);
    if (identifier) urls.push(`Patient?identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`);
  }
  urls.push('Observation?code=http://loinc.org|8302-2&_count=1000', 'Observation?value-quantity=gt100&_count=1000', 'Practitioner?_count=1000', 'Organization?name=hospital');
  const checkpointBlocks = new Set<string>();
  await app.close();
  // Answers come from a copy: reading appends ledger entries, and the workload must stay as it was stopped.
  const copy = `${dir}-answers`;
  await fs.cp(dir, copy, { recursive: true });
  try {
    const answering = await buildApp(loadConfig(envOf(copy)), { logger: false });
    for await (const record of answering.db.sublevel<string, { cid: string }>('ledger-checkpoint', { valueEncoding: 'json' }).values()) {
      checkpointBlocks.add(base32.encode(CID.parse(record.cid).multihash.bytes));
    }
    const answers = await answerAll(answering, token, urls);
    await answering.close();
    const failed = [...answers].filter(([, a]) => (a as [number])[0] >= 500);
    if (failed.length) throw new Error(`the untouched store answers 5xx: ${failed.slice(0, 3).map(([u]) => u).join(', ')}`);
    return { dir, token, answers, checkpointBlocks, resources, versions };
  } finally {
    await fs.rm(copy, { recursive: true, force: true });
  }
}

/** Every live key with a digest of its value, as LevelDB gives them back (opening it replays the log). */
async function dump(dir: string): Promise<Map<string, string>> {
  const db = new Level<Buffer, Buffer>(path.join(dir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  try {
    await db.open();
    const out = new Map<string, string>();
    for await (const [k, v] of db.iterator()) out.set(k.toString('hex'), createHash('sha256').update(v).digest('base64'));
    return out;
  } finally {
    await db.close().catch(() => undefined);
  }
}

function diff(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [k, v] of before) {
    const now = after.get(k);
    if (now === undefined) changed.push(`vanished ${printable(Buffer.from(k, 'hex'))}`);
    else if (now !== v) changed.push(`changed ${printable(Buffer.from(k, 'hex'))}`);
  }
  for (const k of after.keys()) if (!before.has(k)) changed.push(`appeared ${printable(Buffer.from(k, 'hex'))}`);
  return changed;
}

interface ChildResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Anything that opens a tampered store runs in a child process: LevelDB's own assertions abort the process on
 * some corrupt tables (a key out of order in a compaction), which must end a trial, not the test.
 */
function inChild(args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
    // A store that makes the server hang is not a served store either; the limit only ends the trial.
    const limit = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(limit);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const died = (r: ChildResult) => {
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  const why = lines.find((l) => /Error|Assertion|Corruption/.test(l)) ?? lines.at(-1) ?? '';
  return `process ${r.signal ? `killed by ${r.signal}` : `exited ${r.code}`}: ${why.slice(0, 200)}`;
};

/** The live keys of a store read in a child; an Error when LevelDB cannot give them back. */
async function dumpInChild(dir: string, out: string): Promise<Map<string, string> | Error> {
  const r = await inChild(['--dump', dir, '--out', out]);
  if (r.code !== 0) return new Error(died(r));
  return readKeys(out);
}

async function flipFileByte(file: string, offset: number, random: Random): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = byte[0]! ^ (1 + Math.floor(random() * 255));
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

/** Applies one byte change of the given kind to the store in `dir`; says where. */
async function tamper(dir: string, target: Target, workload: Workload, random: Random): Promise<string> {
  const dbDir = path.join(dir, 'db');
  const names = await fs.readdir(dbDir);
  if (target.startsWith('ldb:') || target === 'log') {
    const ext = target === 'log' ? '.log' : '.ldb';
    const files: Array<{ name: string; size: number }> = [];
    for (const name of names.filter((n) => n.endsWith(ext))) {
      const { size } = await fs.stat(path.join(dbDir, name));
      if (size > 0) files.push({ name, size });
    }
    if (files.length === 0) throw new Error(`no non-empty ${ext} file`);
    if (target === 'log' || target === 'ldb:any') {
      // Uniform over all bytes of all such files.
      let at = Math.floor(random() * files.reduce((a, f) => a + f.size, 0));
      const file = files.find((f) => (at -= f.size) < 0)!;
      const offset = at + file.size;
      await flipFileByte(path.join(dbDir, file.name), offset, random);
      return `${file.name} @${offset}`;
    }
    const group = target.slice(4);
    const candidates: Array<{ name: string; offset: number; size: number; keys: string[] }> = [];
    for (const { name } of files) {
      for (const block of dataBlocks(await fs.readFile(path.join(dbDir, name)))) {
        const counts = new Map<string, number>();
        for (const k of block.keys) counts.set(GROUPS[sublevelOf(k)] ?? '?', (counts.get(GROUPS[sublevelOf(k)] ?? '?') ?? 0) + 1);
        const majority = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
        if (majority === group) candidates.push({ name, ...block });
      }
    }
    if (candidates.length === 0) throw new Error(`no data block holds ${group} records`);
    const block = pick(random, candidates);
    const offset = block.offset + Math.floor(random() * block.size);
    await flipFileByte(path.join(dbDir, block.name), offset, random);
    return `${block.name} @${offset} (data block of ${block.keys.length} keys from ${printable(Buffer.from(block.keys[0]!, 'latin1'))})`;
  }
  const db = new Level<Buffer, Buffer>(dbDir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  try {
    const keys: Buffer[] = [];
    for await (const key of db.keys()) {
      const text = key.toString('utf8');
      const group = GROUPS[sublevelOf(text)];
      const isCheckpoint = sublevelOf(text) === 'blocks' && workload.checkpointBlocks.has(text.slice('!blocks!'.length));
      if (
        (target === 'block:resource' && group === 'blocks' && !isCheckpoint) ||
        (target === 'block:checkpoint' && isCheckpoint) ||
        (target === 'record:index' && group === 'index') ||
        (target === 'record:ledger' && group === 'ledger')
      ) keys.push(key);
    }
    const key = pick(random, keys);
    const value = (await db.get(key))!;
    if (value.length > 0) {
      const at = Math.floor(random() * value.length);
      const changed = Buffer.from(value);
      changed[at] = changed[at]! ^ (1 + Math.floor(random() * 255));
      await db.put(key, changed);
      return `value of ${printable(key)} byte ${at}`;
    }
    // Index keys carry everything in the key: change a byte after the sublevel prefix.
    const prefix = key.indexOf('!', 1) + 1;
    const at = prefix + Math.floor(random() * (key.length - prefix));
    const changed = Buffer.from(key);
    changed[at] = changed[at]! ^ (1 + Math.floor(random() * 255));
    await db.batch([{ type: 'del', key }, { type: 'put', key: changed, value }]);
    return `key ${printable(key)} byte ${at}`;
  } finally {
    await db.close();
  }
}

/** Start, reads and searches, the index check, the verifier: the first that fails detects the change. */
async function judge(dir: string, workload: Pick<Workload, 'answers' | 'token'>): Promise<{ by?: string; detail?: string; wrong: string[] }> {
  let app: App;
  try {
    app = await buildApp(loadConfig(envOf(dir)), { logger: false });
  } catch (err) {
    return { by: 'start', detail: (err as Error).message.slice(0, 300), wrong: [] };
  }
  const wrong: string[] = [];
  try {
    const answers = await answerAll(app, workload.token, [...workload.answers.keys()]);
    for (const [url, got] of answers) {
      const status = (got as [number])[0];
      if (status >= 500) return { by: url.includes('?') ? 'search' : 'read', detail: `${url} → ${status}`, wrong };
      if (!isDeepStrictEqual(got, workload.answers.get(url))) wrong.push(`${url} → ${status}`);
    }
    const index = await checkSearchIndex(app.repo);
    if (index.problems.length > 0) return { by: 'reindex --check', detail: `${index.problems[0]!.code} ${index.problems[0]!.at}`, wrong };
  } finally {
    await app.close();
  }
  const lines: string[] = [];
  if ((await verifyCli(['--data-dir', dir], (l) => lines.push(l))) !== 0) return { by: 'verify', detail: lines.find((l) => /ERR_|FAIL/.test(l)), wrong };
  return { wrong };
}

type Judged = { by?: string; detail?: string; wrong: string[] };

async function readKeys(file: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const line of (await fs.readFile(file, 'utf8')).split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) map.set(line.slice(0, space), line.slice(space + 1));
  }
  return map;
}

/** Dump and judgement in one child; if it dies before its dump is written, the judgement gets a child of its own. */
async function trialInChild(dir: string, keysFile: string, answersFile: string): Promise<{ after: Map<string, string> | Error; judged: Judged }> {
  await fs.rm(keysFile, { force: true });
  const r = await inChild(['--trial', dir, '--out', keysFile, '--answers', answersFile]);
  if (r.code === 0) return { after: await readKeys(keysFile), judged: JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Judged };
  const dumped = await fs.stat(keysFile).then(() => true, () => false);
  if (dumped) return { after: await readKeys(keysFile), judged: { by: 'process died', detail: died(r), wrong: [] } };
  return { after: new Error(died(r)), judged: await judgeInChild(dir, answersFile) };
}

async function judgeInChild(dir: string, answersFile: string): Promise<Judged> {
  const r = await inChild(['--judge', dir, '--answers', answersFile]);
  if (r.code === 0) return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Judged;
  // The server process itself died while opening or reading the store: it did not serve the changed data.
  return { by: 'process died', detail: died(r), wrong: [] };
}

export async function runTrials(options: { trials: number; seed: number; exampleStride?: number; log?: (line: string) => void }): Promise<{ trials: Trial[]; workload: Omit<Workload, 'answers' | 'token'> & { queries: number } }> {
  const log = options.log ?? (() => undefined);
  const random = seeded(options.seed);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-tamper-'));
  try {
    const workload = await writeWorkload(path.join(root, 'pristine'), options.exampleStride);
    // The untouched store's live data, read as LevelDB gives it back (from a copy: opening replays the log).
    await fs.cp(workload.dir, path.join(root, 'reference'), { recursive: true });
    const before = await dumpInChild(path.join(root, 'reference'), path.join(root, 'reference.keys'));
    if (before instanceof Error) throw before;
    const answersFile = path.join(root, 'answers.json');
    await fs.writeFile(answersFile, JSON.stringify({ token: workload.token, answers: [...workload.answers] }));
    log(`workload: ${workload.resources} resources, ${workload.versions} versions, ${before.size} LevelDB keys, ${workload.answers.size} reads and searches`);
    const trials: Trial[] = [];
    for (let i = 0; i < options.trials; i++) {
      const target = TARGETS[i % TARGETS.length]!;
      const dir = path.join(root, `trial-${i}`);
      await fs.cp(workload.dir, dir, { recursive: true });
      try {
        const where = await tamper(dir, target, workload, random);
        // The live keys are read from a copy, as LevelDB gives them back; the judge gets the store as it was left.
        await fs.cp(dir, `${dir}-dump`, { recursive: true });
        const { after, judged } = await trialInChild(dir, path.join(root, 'trial.keys'), answersFile);
        const affected = after instanceof Error ? [`unreadable: ${after.message}`] : diff(before, after);
        const verdict = judged.by ? 'detected' : affected.length === 0 ? 'dead' : 'undetected';
        const trial: Trial = { target, where, affected, verdict, wrong: judged.wrong, ...(judged.by ? { by: judged.by } : {}), ...(judged.detail ? { detail: judged.detail } : {}) };
        trials.push(trial);
        log(`${String(i + 1).padStart(4)} ${target.padEnd(16)} ${verdict.padEnd(10)} ${(judged.by ?? '').padEnd(15)} ${where}${affected.length ? `; live: ${affected.slice(0, 2).join(', ')}${affected.length > 2 ? ` …(${affected.length})` : ''}` : ''}${judged.wrong.length ? `; ANSWERED DIFFERENTLY: ${judged.wrong.slice(0, 2).join(', ')}` : ''}`);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
        await fs.rm(`${dir}-dump`, { recursive: true, force: true });
      }
    }
    return { trials, workload: { dir: workload.dir, checkpointBlocks: workload.checkpointBlocks, resources: workload.resources, versions: workload.versions, queries: workload.answers.size } };
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

export function summarize(trials: Trial[]): string[] {
  const lines = ['| target | trials | detected | undetected (live data changed) | dead region | detected / live | by |', '|---|---:|---:|---:|---:|---:|---|'];
  const row = (name: string, ts: Trial[]) => {
    const detected = ts.filter((t) => t.verdict === 'detected').length;
    const undetected = ts.filter((t) => t.verdict === 'undetected').length;
    const dead = ts.filter((t) => t.verdict === 'dead').length;
    const by = new Map<string, number>();
    for (const t of ts) if (t.by) by.set(t.by, (by.get(t.by) ?? 0) + 1);
    lines.push(`| ${name} | ${ts.length} | ${detected} | ${undetected} | ${dead} | ${detected}/${detected + undetected} | ${[...by].map(([k, v]) => `${k} ${v}`).join(', ')} |`);
  };
  for (const target of TARGETS) {
    const ts = trials.filter((t) => t.target === target);
    if (ts.length) row(target, ts);
  }
  row('**all**', trials);
  return lines;
}

const { values } = import.meta.main
  ? parseArgs({ options: { trials: { type: 'string', default: '200' }, seed: { type: 'string' }, dump: { type: 'string' }, out: { type: 'string' }, judge: { type: 'string' }, trial: { type: 'string' }, answers: { type: 'string' } } })
  : { values: {} as Record<string, string | undefined> };
if (values.dump && values.out) {
  const map = await dump(values.dump);
  await fs.writeFile(values.out, [...map].map(([k, v]) => `${k} ${v}`).join('\n'));
} else if (values.trial && values.out && values.answers) {
  // One process per trial: the live keys first (for the parent to compare), then the judgement.
  // From a copy: opening replays the log into a table, and the judge must see the store as it was left.
  const map = await dump(`${values.trial}-dump`);
  await fs.writeFile(values.out, [...map].map(([k, v]) => `${k} ${v}`).join('\n'));
  const { token, answers } = JSON.parse(await fs.readFile(values.answers, 'utf8')) as { token: string; answers: Array<[string, unknown]> };
  process.stdout.write(`${JSON.stringify(await judge(values.trial, { token, answers: new Map(answers) }))}\n`);
} else if (values.judge && values.answers) {
  const { token, answers } = JSON.parse(await fs.readFile(values.answers, 'utf8')) as { token: string; answers: Array<[string, unknown]> };
  process.stdout.write(`${JSON.stringify(await judge(values.judge, { token, answers: new Map(answers) }))}\n`);
} else if (import.meta.main) {
  const trials = Number(values.trials);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(trials) || trials < 1 || !Number.isInteger(seed)) {
    process.stderr.write('usage: npm run test:tamper [-- --trials N (default 200) --seed N]\n');
    process.exit(2);
  }
  const started = Date.now();
  process.stdout.write(`tamper test: ${trials} trials, seed ${seed}\n`);
  const result = await runTrials({ trials, seed, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${summarize(result.trials).join('\n')}\n`);
  const undetected = result.trials.filter((t) => t.verdict === 'undetected');
  if (undetected.length) {
    process.stdout.write(`\nUndetected changes of live data:\n`);
    for (const t of undetected) process.stdout.write(`- ${t.target} ${t.where}: ${t.affected.slice(0, 3).join(', ')}${t.wrong.length ? `; clients saw: ${t.wrong.slice(0, 3).join(', ')}` : '; no read or search answered differently'}\n`);
  }
  process.stdout.write(`\n${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  process.exitCode = undetected.length === 0 ? 0 : 1;
}
