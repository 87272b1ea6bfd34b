// SearchIndex.matchesExact answers "which candidates have one of these exact values" from the value → resource keys
// (a few values: point reads) or from the packed resource records (many values). Both ways must agree with the
// entries each resource was indexed with, on a real LevelDB.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { exact } from '../../src/fhir/search/conditions.ts';
import type { IndexEntry } from '../../src/fhir/search/extract.ts';
import { SearchIndex } from '../../src/fhir/search/index-store.ts';
import { openDatabase, writeBatch } from '../../src/storage/db.ts';

t.test('matchesExact: key lookups and packed records give the indexed answer', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'index-store-'));
  const db = await openDatabase(dir);
  t.teardown(async () => {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const index = new SearchIndex(db);
  // o<i> has code c<i % 12> and subject Patient/p<i % 5>; o7 is updated from c7 to c-new
  const entriesOf = (i: number): IndexEntry[] => [
    { code: 'code', value: `c${i % 12}` },
    { code: 'subject', value: `Patient/p${i % 5}` },
    { code: '_id', value: `o${i}` },
  ];
  for (let i = 0; i < 40; i++) await writeBatch(db, index.ops('Observation', `o${i}`, [], entriesOf(i)));
  const updated = [{ code: 'code', value: 'c-new' }, ...entriesOf(7).slice(1)];
  await writeBatch(db, index.ops('Observation', 'o7', entriesOf(7), updated));

  const ids = Array.from({ length: 40 }, (_, i) => `o${i}`).concat(['missing']);
  const expected = (values: string[]) =>
    ids.map((id) => {
      if (id === 'missing') return false;
      const i = Number(id.slice(1));
      const codes = i === 7 ? ['c-new'] : [`c${i % 12}`];
      return codes.some((c) => values.includes(c));
    });
  for (const values of [['c3'], ['c7'], ['c-new'], ['c3', 'c5', 'nothing'], Array.from({ length: 12 }, (_, k) => `c${k}`), ['c\x1fc3'], []]) {
    const got = await index.matchesExact('Observation', ids, values.map((v) => exact('code', v)));
    t.same(got, expected(values), `code in ${JSON.stringify(values)} (${values.length > 8 ? 'packed records' : 'key lookups'})`);
  }
  const subjects = await index.matchesExact('Observation', ids, [exact('subject', 'Patient/p2')]);
  t.same(subjects, ids.map((id) => id !== 'missing' && Number(id.slice(1)) % 5 === 2), 'another entry code');
  t.same(await index.matchesExact('Observation', [], [exact('code', 'c1')]), []);
  t.same(await index.matchesExact('Patient', ['o1'], [exact('code', 'c1')]), [false], 'another type');
});
