/**
 * Integration: every official HL7 R4 example (test/fixtures/fhir-r4-examples) stored through the real server and
 * read back identical apart from the server-owned meta.versionId and meta.lastUpdated; the ones that break R4's
 * own rules are rejected with a 422 naming why. Afterwards no plaintext of the examples is anywhere in the store.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { REJECTED_EXAMPLES } from '../fixtures/fhir-r4-examples/rejected.ts';
import { startServer } from '../helpers/server.ts';
import { withoutServerMeta } from '../helpers/resources.ts';

const DIR = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');

t.test('official R4 examples round-trip through sealed storage', async (t) => {
  const server = await startServer(t);
  const files = (await fs.readdir(DIR)).filter((f) => f.endsWith('.json')).sort();
  let accepted = 0;
  let readOnly = 0;
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      const example = JSON.parse(await fs.readFile(path.join(DIR, file), 'utf8'));
      const target = example.id ? `${example.resourceType}/${example.id}` : example.resourceType;
      const res = await server.fhir(target, { method: example.id ? 'PUT' : 'POST', body: example });
      if (example.resourceType === 'AuditEvent') {
        // AuditEvent is the ledger's read-only view (docs/ledger.md §10): clients cannot write audit events.
        t.equal(res.status, 405, `${file}: AuditEvent is read-only`);
        readOnly++;
        continue;
      }
      if (REJECTED_EXAMPLES[file]) {
        t.equal(res.status, 422, `${file} is rejected: ${REJECTED_EXAMPLES[file]!.reason}`);
        t.equal(res.body?.resourceType, 'OperationOutcome');
        continue;
      }
      if (res.status !== 201) {
        t.fail(`${file} was not accepted: ${res.status} ${res.text.slice(0, 300)}`);
        continue;
      }
      const read = await server.fhir(`${example.resourceType}/${res.body.id}`);
      const expected = withoutServerMeta({ ...example, id: res.body.id });
      t.same(withoutServerMeta(read.body), expected, `${file} reads back identical apart from meta`);
      accepted++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const rejected = Object.keys(REJECTED_EXAMPLES).filter((f) => !f.startsWith('AuditEvent-')).length;
  t.equal(accepted, files.length - rejected - readOnly, `${accepted} examples accepted`);

  // No plaintext PHI anywhere: neither in the files of the data dir nor in any (decompressed) LevelDB value.
  const markers = ['Chalmers', 'Windsor', 'Donald Duck'];
  await server.stop();
  const leaks: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else {
        const bytes = await fs.readFile(full);
        for (const marker of markers) if (bytes.includes(marker)) leaks.push(`${marker} in ${path.relative(server.dataDir, full)}`);
      }
    }
  };
  await walk(server.dataDir);
  t.same(leaks, [], 'no example family name appears in any file of the data dir');

  const { openDatabase } = await import('../../src/storage/db.ts');
  const db = await openDatabase(path.join(server.dataDir, 'db'));
  let values = 0;
  for await (const [key, value] of db.iterator()) {
    values++;
    const text = Buffer.from(value).toString('latin1') + key;
    for (const marker of markers) if (text.includes(marker)) leaks.push(`${marker} under ${key.slice(0, 60)}`);
  }
  await db.close();
  t.ok(values > files.length, `${values} LevelDB records scanned`);
  t.same(leaks, [], 'no example family name appears in any LevelDB key or value');
});
