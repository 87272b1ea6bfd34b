// Reindex rebuilds exactly the index that the writes built: same entries, same search results (library and CLI).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { SEARCH_INDEX_FORMAT } from '../../src/fhir/search/index-format.ts';
import { reindex } from '../../src/fhir/search/reindex.ts';
import { jsonSublevel, openDatabase, SUBLEVELS } from '../../src/storage/db.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { ids, loadDataset, RESOURCES } from './fixtures/dataset.ts';

const QUERIES = [
  'Patient?name=smith', 'Patient?identifier=http://hospital.example/mrn|', 'Observation?date=ge2024-01-02', 'Observation?code=8480-6',
  'Observation?value-quantity=gt100||mm[Hg]', 'RiskAssessment?probability=gt0.5', 'Observation?subject:Patient.name=smith',
  'Patient?_has:Observation:patient:code=8462-4', 'ValueSet?url:below=http://example.org', 'Observation?_sort=-date',
  'Patient/p1/Observation', 'Observation?component-code-value-quantity=8480-6$118', 'Patient?birthdate:missing=true',
];

async function dump(server: TestServer): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of server.app.repo.index.valueIndex.keys()) keys.push(`v ${k}`);
  for await (const [k, v] of server.app.repo.index.resourceIndex.iterator()) keys.push(`r ${k} ${v}`);
  for await (const [k, v] of server.app.repo.index.rangeIndex.iterator()) keys.push(`d ${k} ${v}`);
  return keys;
}

async function answers(server: TestServer): Promise<string[][]> {
  return Promise.all(QUERIES.map((q) => ids(server, q, true)));
}

t.test('reindex gives the same index and the same answers', async (t) => {
  const server = await startServer(t);
  await loadDataset(server);
  // history that must not leave traces: an update and a deletion
  await server.fhir('Patient/p3', { method: 'PUT', body: { resourceType: 'Patient', id: 'p3', active: false, name: [{ family: 'Smithson', given: ['Jo'] }], gender: 'other' } });
  await server.fhir('Organization/org2', { method: 'DELETE' });
  const before = await answers(server);
  const entries = await dump(server);
  t.ok(entries.length > 300, `${entries.length} index keys`);
  t.ok(before.some((a) => a.length > 0));

  await server.app.repo.index.valueIndex.clear();
  await server.app.repo.index.resourceIndex.clear();
  await server.app.repo.index.rangeIndex.clear();
  t.same(await ids(server, 'Patient?name=smith'), [], 'an empty index finds nothing');

  const progress: number[] = [];
  const result = await reindex(server.app.db, server.app.repo, server.app.ledger, ({ done }) => progress.push(done));
  t.equal(result.resources, RESOURCES.length - 1, 'every resource but the deleted one');
  t.ok(progress.length >= 1 && progress.at(-1) === RESOURCES.length, 'progress reaches every head (deletions included)');
  t.same(await dump(server), entries, 'identical index keys');
  t.same(await answers(server), before, 'identical answers');

  // the CLI, from another process, refuses a node that is running, plainly
  const busy = await promisify(execFile)(path.join(process.cwd(), 'node_modules/.bin/node'), ['src/cli/reindex.ts'], {
    env: { ...process.env, DATA_DIR: server.dataDir, MASTER_KEY_PASSPHRASE: 'test passphrase', BASE_URL: server.baseUrl, LOG_LEVEL: 'silent' },
  }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => err,
  );
  t.equal(busy.code, 2, 'the data dir is in use');
  t.match(busy.stderr, /in use by another process .* Stop the server first/);

  // the CLI, on the stopped node
  await server.app.close();
  const run = await promisify(execFile)(path.join(process.cwd(), 'node_modules/.bin/node'), ['src/cli/reindex.ts'], {
    env: { ...process.env, DATA_DIR: server.dataDir, MASTER_KEY_PASSPHRASE: 'test passphrase', BASE_URL: server.baseUrl, LOG_LEVEL: 'silent' },
  });
  t.match(run.stderr, new RegExp(`reindex \\[#+\\] 100% ${RESOURCES.length}/${RESOURCES.length}`));
  t.match(run.stderr, new RegExp(`reindexed ${RESOURCES.length - 1} resources`));
  await server.restart();
  t.same(await dump(server), entries, 'identical index keys after the CLI');
  t.same(await answers(server), before, 'identical answers after the CLI');

  // A store whose index was built under other rules is refused until the CLI rebuilds it (index-format.ts).
  await server.app.close();
  const setFormat = async (format: number | undefined, recorded = SEARCH_INDEX_FORMAT) => {
    const db = await openDatabase(path.join(server.dataDir, 'db'));
    const meta = jsonSublevel<number>(db, SUBLEVELS.searchMeta);
    t.equal(await meta.get('format'), recorded, `the store records format ${recorded}`);
    await (format === undefined ? meta.del('format') : meta.put('format', format));
    await db.close();
  };
  const config = loadConfig({ PORT: '0', DATA_DIR: server.dataDir, MASTER_KEY_PASSPHRASE: 'test passphrase', BASE_URL: server.baseUrl, LOG_LEVEL: 'silent' });
  await setFormat(undefined);
  await t.rejects(buildApp(config, { logger: false }), { code: 'ERR_SEARCH_INDEX_FORMAT', message: /built by an older server \(index format 1, this server writes \d+\).*npm run reindex/ });
  const rebuilt = await promisify(execFile)(path.join(process.cwd(), 'node_modules/.bin/node'), ['src/cli/reindex.ts'], {
    env: { ...process.env, DATA_DIR: server.dataDir, MASTER_KEY_PASSPHRASE: 'test passphrase', BASE_URL: server.baseUrl, LOG_LEVEL: 'silent' },
  });
  t.match(rebuilt.stderr, new RegExp(`reindexed ${RESOURCES.length - 1} resources`));
  await setFormat(SEARCH_INDEX_FORMAT + 1);
  await t.rejects(buildApp(config, { logger: false }), { code: 'ERR_SEARCH_INDEX_FORMAT', message: /built by a newer server/ });
  await setFormat(SEARCH_INDEX_FORMAT, SEARCH_INDEX_FORMAT + 1);
  await server.restart();
  t.same(await answers(server), before, 'identical answers once rebuilt');
});

t.test('a new store records the current index format', async (t) => {
  const server = await startServer(t);
  await server.stop();
  const db = await openDatabase(path.join(server.dataDir, 'db'));
  t.equal(await jsonSublevel<number>(db, SUBLEVELS.searchMeta).get('format'), SEARCH_INDEX_FORMAT);
  await db.close();
});
