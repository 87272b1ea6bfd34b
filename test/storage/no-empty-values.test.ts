/**
 * classic-level 3.0.0 leaks every zero-length key or value it is given to write (binding.cc copies each into
 * `new char[n]`, DisposeSliceBuffer frees only non-empty ones): ~32 bytes of native heap per op, which made the
 * soak test's RSS climb by ~0.6 MB/s. Presence-only index keys therefore carry a one-byte value (db.ts
 * PRESENT_*). This drives every kind of write through a real node and checks that nothing it stored is empty.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { startServer } from '../helpers/server.ts';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');
const example = async (name: string) => JSON.parse(await fs.readFile(path.join(fixtures, name), 'utf8'));

t.test('no key or value the server writes is zero-length', async (t) => {
  const server = await startServer(t);
  const patient = await example('Patient-f001.json');
  delete patient.id;
  const created = await server.fhir('Patient', { method: 'POST', body: patient });
  t.equal(created.status, 201);
  const id = created.body.id as string;
  const observation = await example('Observation-f001.json');
  delete observation.id;
  observation.subject = { reference: `Patient/${id}` };
  t.equal((await server.fhir('Observation', { method: 'POST', body: observation })).status, 201);
  t.equal((await server.fhir(`Patient/${id}`)).status, 200);
  t.equal((await server.fhir(`Observation?patient=${id}&code=http://loinc.org|15074-8`)).status, 200);
  t.equal((await server.fhir(`Patient/${id}`, { method: 'PUT', body: { ...patient, id, active: false } })).status, 200);
  t.equal((await server.fhir('AuditEvent?entity=Patient/' + id)).status, 200);
  const deleted = await server.fhir(`Patient/${id}`, { method: 'DELETE' });
  t.ok(deleted.status === 200 || deleted.status === 204, `delete answered ${deleted.status}`);

  const empty: string[] = [];
  let count = 0;
  for await (const [rawKey, value] of server.app.db.iterator({ keyEncoding: 'view', valueEncoding: 'view' })) {
    // keyEncoding 'view' yields bytes; the database's declared key type is string.
    const key = rawKey as unknown as Uint8Array;
    count++;
    if (key.byteLength === 0 || value.byteLength === 0) empty.push(Buffer.from(key).toString('utf8'));
  }
  t.ok(count > 100, `the node wrote ${count} records`);
  t.same(empty, [], 'records with a zero-length key or value');
});
