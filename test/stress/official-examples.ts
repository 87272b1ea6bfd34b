/**
 * `npm run test:examples [-- --dir <package dir>]`: every example of the official package `hl7.fhir.r4.examples`
 * 4.0.1 (about 5,300 resources; test/fixtures holds a selection of 423 that the normal suite runs) written to a
 * real server process (src/main.ts, a temporary data dir) as an EHR would: PUT with the example's id, POST without
 * one. Each must be stored and read back identical apart from the server's meta, unless it is listed in
 * test/fixtures/fhir-r4-examples/rejected-package.ts with the reason it breaks R4's own rules (then a 422, or the
 * 400 listed), is an AuditEvent (the ledger's read-only view: 405) or is larger than the server's body limit (413).
 * Anything else is a failure, and so is a listed example that is accepted. Exits 1 on any failure.
 *
 * The package is fetched once from the npm registry with `npm pack` into .cache/ (git-ignored), or read from
 * --dir (the `package/` folder of its tarball).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, parseArgs, promisify } from 'node:util';
import { freePort, PROJECT_ROOT, startChild } from '../../bench/servers.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDevIssuer } from '../../src/consent/dev-issuer.ts';
import { REJECTED_PACKAGE_EXAMPLES } from '../fixtures/fhir-r4-examples/rejected-package.ts';
import { withoutServerMeta } from '../helpers/resources.ts';

const PACKAGE = 'hl7.fhir.r4.examples@4.0.1';
const CACHE = path.join(PROJECT_ROOT, '.cache', 'hl7.fhir.r4.examples-4.0.1');
const BODY_LIMIT = 16 * 1024 * 1024;
const run = promisify(execFile);

async function packageDir(given: string | undefined): Promise<string> {
  if (given) return given;
  const dir = path.join(CACHE, 'package');
  if (await fs.stat(path.join(dir, 'package.json')).then(() => true, () => false)) return dir;
  await fs.mkdir(CACHE, { recursive: true });
  process.stderr.write(`fetching ${PACKAGE} from the npm registry into ${path.relative(PROJECT_ROOT, CACHE)}/ …\n`);
  const { stdout } = await run('npm', ['pack', PACKAGE, '--pack-destination', CACHE, '--silent'], { cwd: CACHE });
  await run('tar', ['-xzf', path.join(CACHE, stdout.trim().split('\n').at(-1)!), '-C', CACHE]);
  return dir;
}

const { values } = parseArgs({ options: { dir: { type: 'string' }, concurrency: { type: 'string', default: '8' } } });
let dir: string;
try {
  dir = await packageDir(values.dir);
} catch (err) {
  process.stderr.write(`cannot get ${PACKAGE} (${(err as Error).message.split('\n')[0]}): give its package/ folder with --dir\n`);
  process.exit(2);
}
const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json') && f !== 'package.json' && !f.startsWith('.')).sort();

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-fhir-examples-'));
const port = await freePort();
const env = { PORT: String(port), DATA_DIR: dataDir, MASTER_KEY_PASSPHRASE: 'examples', LOG_LEVEL: 'warn', BODY_LIMIT: String(BODY_LIMIT) };
const server = await startChild('sealed-fhir', 'src/main.ts', env, `http://127.0.0.1:${port}`);
const failures: string[] = [];
const counts = { accepted: 0, rejected: 0, readOnly: 0, tooLarge: 0, notResources: 0 };
try {
  const config = loadConfig(env);
  const token = await (await loadDevIssuer(config)).sign({ sub: 'official-examples', scope: 'system/*.cruds' });
  const fhir = async (target: string, init: { method?: string; body?: string } = {}) => {
    const res = await fetch(`${config.baseUrl}/${target}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json', 'content-type': 'application/fhir+json' },
      body: init.body,
    });
    const text = await res.text();
    return { status: res.status, text };
  };
  const queue = [...files];
  let done = 0;
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      const text = await fs.readFile(path.join(dir, file), 'utf8');
      const example = JSON.parse(text) as Record<string, any>;
      if (typeof example.resourceType !== 'string') {
        counts.notResources++;
        continue;
      }
      const target = example.id ? `${example.resourceType}/${example.id}` : example.resourceType;
      const res = await fhir(target, { method: example.id ? 'PUT' : 'POST', body: text });
      const listed = REJECTED_PACKAGE_EXAMPLES[file];
      const [reason, status] = typeof listed === 'string' ? [listed, 422] : (listed ?? [undefined, undefined]);
      if (Buffer.byteLength(text) > BODY_LIMIT) {
        if (res.status === 413) counts.tooLarge++;
        else failures.push(`${file}: ${Buffer.byteLength(text)} bytes, over the body limit, answered ${res.status}`);
      } else if (example.resourceType === 'AuditEvent') {
        if (res.status === 405) counts.readOnly++;
        else failures.push(`${file}: AuditEvent is read-only, answered ${res.status}`);
      } else if (reason !== undefined) {
        if (res.status === status) counts.rejected++;
        else failures.push(`${file}: listed as rejected (${reason}) but answered ${res.status}`);
      } else if (res.status !== 201 && res.status !== 200) {
        failures.push(`${file}: ${res.status} ${res.text.slice(0, 400)}`);
      } else {
        const id = (JSON.parse(res.text) as { id: string }).id;
        const read = await fhir(`${example.resourceType}/${id}`);
        if (read.status !== 200 || !isDeepStrictEqual(withoutServerMeta(JSON.parse(read.text)), withoutServerMeta({ ...example, id }))) {
          failures.push(`${file}: read back ${read.status}, not identical apart from meta`);
        } else counts.accepted++;
      }
      if (++done % 500 === 0) process.stderr.write(`${done}/${files.length}\n`);
    }
  };
  await Promise.all(Array.from({ length: Number(values.concurrency) }, worker));
  const unused = Object.keys(REJECTED_PACKAGE_EXAMPLES).filter((f) => !files.includes(f));
  for (const f of unused) failures.push(`${f}: listed as rejected but not in the package`);
} finally {
  const crashed = server.exitReport();
  if (crashed) failures.push(`the server died: ${crashed}`);
  await server.stop();
  await fs.rm(dataDir, { recursive: true, force: true });
}
console.log(`${files.length} files of ${PACKAGE}: ${counts.accepted} stored and read back identical, ${counts.rejected} rejected as listed, ` +
  `${counts.readOnly} AuditEvents refused (read-only), ${counts.tooLarge} over the ${BODY_LIMIT / 1024 / 1024} MiB body limit, ${counts.notResources} not resources`);
for (const f of failures) console.log(`FAIL ${f}`);
process.exitCode = failures.length ? 1 : 0;
