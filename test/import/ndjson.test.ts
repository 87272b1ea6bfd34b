/**
 * Integration: `npm run import` of NDJSON (one resource per line, in transactions of --chunk lines) and of a
 * collection Bundle; lines that are not JSON or whose resource is rejected are reported by line and counted, the
 * rest of their chunk is stored, and the exit status says something failed. Both files start with a byte order
 * mark, as Windows tools write them (RFC 8259 lets a parser ignore it).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { runImport, storedCounts, tempDir, type Json } from './fixtures/helpers.ts';

// Several importer and server processes start in turn (a few seconds each): more than tap's default on a busy machine.
t.setTimeout(300_000);

t.test('NDJSON and collection Bundles; bad lines are reported and counted', async (t) => {
  const source = await tempDir(t, 'sealed-fhir-import-src-');
  const dataDir = await tempDir(t, 'sealed-fhir-import-');
  const patient = (id: string, extra: Json = {}) => JSON.stringify({ resourceType: 'Patient', id, name: [{ family: `N${id}` }], ...extra });
  const lines = [
    patient('nd-1'),
    patient('nd-2'),
    '{"resourceType": "Patient", "id": "nd-broken"', // line 3: not JSON
    '',
    patient('nd-3', { birthDate: '2001-13-01', meta: { profile: ['http://example.org/fhir/StructureDefinition/unknown'] } }), // line 5: rejected by validation (and an unknown profile: a warning)
    patient('nd-4'),
    '["not", "a", "resource"]', // line 7
    JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/nd-1' } }),
    patient('nd-5'),
  ];
  // line 10: Latin-1, not UTF-8: refused rather than stored as M\uFFFDller
  const latin1 = Buffer.from(`${patient('nd-latin', { name: [{ family: 'M\u00fcller' }] })}\n`, 'latin1');
  await fs.writeFile(path.join(source, 'a.ndjson'), Buffer.concat([Buffer.from(`\uFEFF${lines.join('\r\n')}\r\n`), latin1]));
  const latin1Bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: JSON.parse(patient('lat-1', { name: [{ family: 'M\u00fcller' }] })) }] };
  await fs.writeFile(path.join(source, 'd-latin1.json'), Buffer.from(JSON.stringify(latin1Bundle), 'latin1'));
  await fs.writeFile(
    path.join(source, 'b-collection.json'),
    `\uFEFF${JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: JSON.parse(patient('col-1')) }, { resource: JSON.parse(patient('col-2')) }] })}`,
  );
  await fs.writeFile(path.join(source, 'c-document.json'), JSON.stringify({ resourceType: 'Bundle', type: 'document', entry: [] }));
  await fs.writeFile(path.join(source, 'notes.txt'), 'ignored');
  // A member given twice: JSON.parse would keep the second family silently; refused as the REST API refuses it.
  await fs.writeFile(path.join(source, 'f-dup-bundle.json'), '{"resourceType":"Bundle","type":"collection","type":"transaction","entry":[]}');
  await fs.writeFile(path.join(source, 'e-dup.ndjson'), `{"resourceType":"Patient","id":"dup-1","name":[{"family":"A","family":"B"}]}\n${patient('dup-2')}\n`);

  const run = await runImport(dataDir, [source, '--chunk', '2']);
  t.equal(run.code, 1, 'failures make the exit status non-zero');
  t.match(run.stdout, /Imported 8 resources/);
  t.match(run.stdout, /Files: 6 found, 3 imported, 0 already done, 3 failed; 1 other files ignored/);
  t.match(run.stdout, /Failures \(8\)/);
  t.match(run.stdout, /f-dup-bundle\.json: ERR_JSON_DUPLICATE_MEMBER: .*'type' twice/);
  t.match(run.stdout, /e-dup\.ndjson line 1: ERR_JSON_DUPLICATE_MEMBER: .*'family' twice.*Patient\.name\[0\]/);
  t.match(run.stdout, /a\.ndjson line 10: ERR_ENCODING/);
  t.match(run.stdout, /d-latin1\.json: ERR_JSON_SYNTAX: .*utf-8/i);
  t.match(run.stdout, /a\.ndjson line 3: ERR_JSON_SYNTAX/);
  t.match(run.stdout, /a\.ndjson line 5: ERR_VALIDATION: [^;\n]*birthDate[^;\n]*; \(warning\) [^\n]*Profile/, 'the error first, the profile warning marked as one');
  t.match(run.stdout, /a\.ndjson line 7: ERR_JSON_SYNTAX/);
  t.match(run.stdout, /c-document\.json: ERR_BUNDLE_TYPE/);

  await storedCounts(t, dataDir, [], async (fhir) => {
    t.equal((await fhir('Patient?_summary=count')).body.total, 7, '4 good NDJSON lines, 2 from the collection, 1 beside the duplicate');
    t.equal((await fhir('Patient/dup-1')).status, 404, 'the line with a repeated member stored nothing');
    t.equal((await fhir('Observation?_summary=count')).body.total, 1);
    t.equal((await fhir('Patient/nd-4')).status, 200, 'ids kept');
    t.equal((await fhir('Patient/col-2')).status, 200);
    t.equal((await fhir('Patient/nd-3')).status, 404, 'the rejected line stored nothing');
    t.equal((await fhir('Patient/nd-latin')).status, 404, 'nor the Latin-1 line');
  });
  const again = await runImport(dataDir, [source]);
  t.match(again.stdout, /Imported 0 resources/, 'a rerun does not load the done files again');
  t.match(again.stdout, /3 already done/);
});
