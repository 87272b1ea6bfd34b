// SearchIndex.matchesExact answers "which candidates have one of these exact values" from the value → resource keys
// (a few values: point reads) or from the packed resource records (many values). Both ways must agree with the
// entries each resource was indexed with, on a real LevelDB.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { dateCondition, exact } from '../../src/fhir/search/conditions.ts';
import type { IndexEntry } from '../../src/fhir/search/extract.ts';
import { isRangeCode, SearchIndex } from '../../src/fhir/search/index-store.ts';
import { openDatabase, writeBatch, type Database } from '../../src/storage/db.ts';

/** A search index on a fresh LevelDB, removed after the test. */
async function tempIndex(t: Test): Promise<{ db: Database; index: SearchIndex }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'index-store-'));
  const db = await openDatabase(dir);
  t.teardown(async () => {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { db, index: new SearchIndex(db) };
}

t.test('matchesExact: key lookups and packed records give the indexed answer', async (t) => {
  const { db, index } = await tempIndex(t);
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

// Range tests and sort keys read the small resource-ranges record (date, number and quantity entries only); a
// resource without one (none of those values, or a store written before it) is answered from its full record.
t.test('resource-ranges: written beside the full record, read for range codes, the full record when absent', async (t) => {
  const { db, index } = await tempIndex(t);
  const jan = dateCondition('date', 'date', '2024-01');
  const day = (d: string) => [{ code: 'date', value: `${d}~${d}` }, { code: 'date:hi', value: `${d}~${d}` }];
  // encoded dates: 15 digits of ms since year 1 (docs/storage.md); only their order matters here
  const inJan = String(Date.UTC(2024, 0, 15) + 62_167_219_200_000).padStart(15, '0');
  const inMar = String(Date.UTC(2024, 2, 15) + 62_167_219_200_000).padStart(15, '0');
  const obs = (d: string): IndexEntry[] => [{ code: 'code', value: 'c1' }, { code: 'subject', value: 'Patient/p1' }, ...day(d), { code: 'value-quantity', value: '#4000000000000000' }];
  await writeBatch(db, index.ops('Observation', 'o1', [], obs(inJan)));
  await writeBatch(db, index.ops('Observation', 'o2', [], [{ code: 'code', value: 'c1' }]));

  t.equal(await index.rangeIndex.get('Observation/o1'), `\x1edate\x1f${inJan}~${inJan}\x1edate:hi\x1f${inJan}~${inJan}\x1evalue-quantity\x1f#4000000000000000\x1e`, 'only the range entries');
  t.equal(await index.rangeIndex.get('Observation/o2'), undefined, 'no record without range entries');
  t.equal(await index.matches('Observation', 'o1', [jan]), true);
  t.same(await index.valuesOf('Observation', 'o1', 'date:hi'), [`${inJan}~${inJan}`]);
  t.same(await index.valuesOf('Observation', 'o2', 'date'), [], 'no record: the full record answers (no dates)');
  t.same(await index.valuesOf('Observation', 'o1', 'code'), ['c1'], 'other codes come from the full record');

  // prefetched in one getMany: the same answers from the cache, the full record where there is no range record
  const cache = new Map();
  await index.prefetchRanges('Observation', ['o1', 'o2', 'missing'], cache);
  t.same([...cache.keys()].sort(), ['~Observation/missing', '~Observation/o1', '~Observation/o2']);
  t.equal(await index.matches('Observation', 'o1', [jan], cache), true);
  t.same(await index.valuesOf('Observation', 'o2', 'date', cache), []);
  t.same(await index.valuesOf('Observation', 'o2', 'code', cache), ['c1']);
  t.equal(await index.matches('Observation', 'missing', [jan], cache), false);

  // the range record is the one read: a full record that disagreed would not change the answer
  await index.resourceIndex.put('Observation/o1', (await index.resourceIndex.get('Observation/o1'))!.replaceAll(inJan, inMar));
  t.equal(await index.matches('Observation', 'o1', [jan]), true, 'range test from resource-ranges');
  t.same(await index.valuesOf('Observation', 'o1', 'date'), [`${inJan}~${inJan}`], 'sort key from resource-ranges');
  // …and without it (a store written before resource-ranges), the full record is
  await index.rangeIndex.del('Observation/o1');
  t.equal(await index.matches('Observation', 'o1', [jan]), false, 'absent: the full record answers');
  t.same(await index.valuesOf('Observation', 'o1', 'date'), [`${inMar}~${inMar}`]);

  // an update writes it again; one that drops every range value removes it; a deletion removes both records
  await writeBatch(db, index.ops('Observation', 'o1', obs(inMar), obs(inJan)));
  t.match(await index.rangeIndex.get('Observation/o1'), inJan);
  await writeBatch(db, index.ops('Observation', 'o1', obs(inJan), [{ code: 'code', value: 'c2' }]));
  t.equal(await index.rangeIndex.get('Observation/o1'), undefined, 'no range values left');
  t.equal(await index.matches('Observation', 'o1', [jan]), false);
  await writeBatch(db, index.ops('Observation', 'o1', [{ code: 'code', value: 'c2' }], obs(inMar)));
  await writeBatch(db, index.ops('Observation', 'o1', obs(inMar), []));
  t.equal(await index.rangeIndex.get('Observation/o1'), undefined, 'deleted');
  t.equal(await index.resourceIndex.get('Observation/o1'), undefined, 'deleted');
});

t.test('isRangeCode: date, number and quantity parameters and their suffixed codes', async (t) => {
  t.ok(isRangeCode('Observation', 'date'));
  t.ok(isRangeCode('Observation', 'date:hi'));
  t.ok(isRangeCode('Observation', 'value-quantity'));
  t.ok(isRangeCode('RiskAssessment', 'probability'));
  t.notOk(isRangeCode('Observation', 'code'));
  t.notOk(isRangeCode('Observation', 'combo-code-value-quantity'), 'composites stay in the full record');
  t.notOk(isRangeCode('Observation', 'no-such-code'));
});

t.test('idsFrom: id order either way, from a bound inclusive or not; countIds', async (t) => {
  const { db, index } = await tempIndex(t);
  // ids that are prefixes of one another and hold the characters that sort lowest in an id (`-`, `.`)
  const ids = ['a', 'a-1', 'a.b', 'ab', 'b', 'b0', 'Z', '9'];
  for (const id of ids) await writeBatch(db, index.ops('Patient', id, [], [{ code: '_id', value: id }, { code: 'name', value: `n-${id}` }]));
  await writeBatch(db, index.ops('Patients', 'x', [], [{ code: '_id', value: 'x' }]));
  const sorted = [...ids].sort();
  const all = async (options: Parameters<typeof index.idsFrom>[1], source = { type: 'Patient' }) => {
    const out: string[] = [];
    for await (const id of index.idsFrom(source, options)) out.push(id);
    return out;
  };
  t.same(await all({}), sorted, 'all, ascending, nothing of another type');
  t.same(await all({ descending: true }), [...sorted].reverse());
  for (const from of ['a', 'a-1', 'ab', 'b0', 'aa']) {
    t.same(await all({ from }), sorted.filter((id) => id > from), `after ${from}`);
    t.same(await all({ from, inclusive: true }), sorted.filter((id) => id >= from), `from ${from}`);
    t.same(await all({ from, descending: true }), sorted.filter((id) => id < from).reverse(), `before ${from}`);
    t.same(await all({ from, inclusive: true, descending: true }), sorted.filter((id) => id <= from).reverse(), `down from ${from}`);
  }
  t.equal(await index.countIds({ type: 'Patient' }), ids.length);
  const snapshot = db.snapshot();
  await writeBatch(db, index.ops('Patient', 'late', [], [{ code: '_id', value: 'late' }]));
  t.equal(await index.countIds({ type: 'Patient' }, snapshot), ids.length, 'as of the snapshot');
  await snapshot.close();
  t.equal(await index.countIds({ type: 'Patient' }), ids.length + 1);

  // one exact value of one parameter: its keys are `<value>\x00<id>`, in id order too
  const shared = ids.filter((_, i) => i % 2 === 0);
  for (const id of shared) await writeBatch(db, index.ops('Patient', id, [{ code: '_id', value: id }], [{ code: '_id', value: id }, { code: 'gender', value: 'g' }]));
  await writeBatch(db, index.ops('Patient', 'other', [], [{ code: '_id', value: 'other' }, { code: 'gender', value: 'g2' }]));
  const g = { type: 'Patient', code: 'gender', value: 'g' };
  const wanted = [...shared].sort();
  t.same(await all({}, g), wanted);
  for (const from of ['a', 'a.b', 'aa', 'b']) {
    t.same(await all({ from }, g), wanted.filter((id) => id > from), `g after ${from}`);
    t.same(await all({ from, inclusive: true, descending: true }, g), wanted.filter((id) => id <= from).reverse(), `g down from ${from}`);
  }
  t.equal(await index.countIds(g), shared.length);
  t.same(await index.holdsIds(g, ['a', 'a-1', 'other', 'nope']), ['a', 'a-1', 'other', 'nope'].map((id) => shared.includes(id)));
  t.same(await index.holdsIds({ type: 'Patient' }, ['a', 'late', 'nope']), [true, true, false]);
});
