/**
 * Integration: `npm run import` of the Synthea fixtures (test/fixtures/synthea: `_shared/` batch Bundles with
 * ifNoneExist, patient transaction Bundles with conditional references) as they are, checked against counts
 * computed from the files; a rerun imports nothing twice.
 */
import path from 'node:path';
import t from 'tap';
import { expectedCounts, PATIENT_FILES, readJson, runImport, SHARED, storedCounts, SYNTHEA, tempDir } from './fixtures/helpers.ts';

// Several importer and server processes start in turn (a few seconds each): more than tap's default on a busy machine.
t.setTimeout(300_000);

t.test('the Synthea fixtures load as they are; a rerun imports nothing twice', async (t) => {
  const dataDir = await tempDir(t, 'sealed-fhir-import-');
  const expected = await expectedCounts(SHARED, PATIENT_FILES);
  const first = await runImport(dataDir, [SYNTHEA]);
  t.equal(first.code, 0, first.stdout + first.stderr.slice(-2000));
  t.match(first.stdout, /Files: 4 found, 4 imported, 0 already done, 0 failed; 1 other files ignored/, 'SOURCE.md is not data');
  const entries = async (files: string[]) => (await Promise.all(files.map(readJson))).reduce((n, b) => n + b.entry.length, 0);
  const all = (await entries(SHARED)) + (await entries(PATIENT_FILES));
  t.match(first.stdout, new RegExp(`Imported ${all.toLocaleString('en-US')} resources`), 'every entry accounted for');
  t.ok(first.stderr.indexOf(`imported ${SHARED[1]}`) < first.stderr.indexOf(`imported ${path.join(SYNTHEA, '8a4c')}`), '_shared first');

  const stored = await storedCounts(t, dataDir, expected.keys(), async (fhir) => {
    // the patient bundles' conditional references were resolved to the shared resources
    const encounters = await fhir('Encounter?_count=5');
    t.equal(encounters.body.entry.length, 5);
    for (const e of encounters.body.entry) {
      const ref = e.resource.participant?.[0]?.individual?.reference as string;
      t.match(ref, /^Practitioner\/[A-Za-z0-9\-.]+$/, 'a conditional reference became a plain one');
      t.equal((await fhir(ref)).status, 200, `${ref} exists`);
    }
  });
  t.same(Object.fromEntries(stored), Object.fromEntries(expected), 'stored counts per type match the files');

  const second = await runImport(dataDir, [SYNTHEA]);
  t.equal(second.code, 0);
  t.match(second.stdout, /Imported 0 resources/);
  t.match(second.stdout, /4 already done/, 'nothing is loaded twice');
});
