/**
 * Integration: an import killed (SIGKILL) mid-run resumes. Each file is one transaction whose progress record is
 * committed in the same batch, so the rerun skips exactly the files stored before the kill and nothing is stored
 * twice. And a data dir held by a running server is refused.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { IMPORT_PROGRESS_SUBLEVEL, type FileProgress } from '../../src/import/progress.ts';
import { jsonSublevel, openDatabase } from '../../src/storage/db.ts';
import { startServer } from '../helpers/server.ts';
import { ENV, runImport, storedCounts, tempDir } from './fixtures/helpers.ts';

const FILES = 8;
const OBSERVATIONS = 40;

/** A patient transaction Bundle in Synthea's shape: POST entries with urn:uuid fullUrls referring to each other. */
function patientBundle(n: number) {
  const patientUrl = `urn:uuid:${String(n).padStart(8, '0')}-0000-4000-8000-000000000000`;
  const observations = Array.from({ length: OBSERVATIONS }, (_, i) => ({
    fullUrl: `urn:uuid:${String(n).padStart(8, '0')}-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
    resource: {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      subject: { reference: patientUrl },
      valueQuantity: { value: 60 + i, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    },
    request: { method: 'POST', url: 'Observation' },
  }));
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ fullUrl: patientUrl, resource: { resourceType: 'Patient', name: [{ family: `Resume${n}` }] }, request: { method: 'POST', url: 'Patient' } }, ...observations],
  };
}

// Several importer and server processes start in turn (a few seconds each): more than tap's default on a busy machine.
t.setTimeout(300_000);

t.test('an import killed mid-run resumes: the rerun completes and nothing is duplicated', async (t) => {
  const source = await tempDir(t, 'sealed-fhir-import-src-');
  const dataDir = await tempDir(t, 'sealed-fhir-import-');
  for (let n = 0; n < FILES; n++) await fs.writeFile(path.join(source, `patient-${String(n).padStart(2, '0')}.json`), JSON.stringify(patientBundle(n)));

  const killed = await runImport(dataDir, [source], 3);
  t.equal(killed.signal, 'SIGKILL', 'the first run was killed before it finished');
  const resumed = await runImport(dataDir, [source]);
  t.equal(resumed.code, 0, resumed.stdout);
  const done = Number(/(\d+) already done/.exec(resumed.stdout)?.[1]);
  t.ok(done >= 3 && done < FILES, `the rerun skipped the ${done} files stored before the kill`);
  t.match(resumed.stdout, new RegExp(`Imported ${((FILES - done) * (OBSERVATIONS + 1)).toLocaleString('en-US')} resources`));
  const stored = await storedCounts(t, dataDir, ['Patient', 'Observation']);
  t.same(Object.fromEntries(stored), { Patient: FILES, Observation: FILES * OBSERVATIONS }, 'every resource exactly once');

  // The progress record names files by keyed hash only: file names can carry patient names (Synthea's do).
  const db = await openDatabase(path.join(dataDir, 'db'));
  try {
    const records = await jsonSublevel<FileProgress>(db, IMPORT_PROGRESS_SUBLEVEL).iterator().all();
    t.equal(records.length, FILES, 'one record per file');
    t.ok(records.every(([key, value]) => !key.includes('patient-') && !key.includes(source) && value.done === true), 'all done, no path in the keys');
  } finally {
    await db.close();
  }
});

t.test('the importer refuses a data dir that a running server holds', async (t) => {
  const dataDir = await tempDir(t, 'sealed-fhir-import-');
  const server = await startServer(t, { DATA_DIR: dataDir, ...ENV });
  const run = await runImport(dataDir, [dataDir]);
  await server.stop();
  t.equal(run.code, 2);
  t.match(run.stderr, /data dir is in use by another process/);
});
