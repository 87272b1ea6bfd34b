// The pure paging core: row order (missing keys last either way), cursors, and pages cut after/before a row
// that may itself be gone.
import t from 'tap';
import { compareRows, decodeCursor, encodeCursor, slicePage, sortKeyOf, type Row } from '../../src/fhir/search/paging.ts';
import type { SortKey } from '../../src/fhir/search/params.ts';

const asc: SortKey[] = [{ code: 'date', type: 'date', descending: false }];
const desc: SortKey[] = [{ code: 'date', type: 'date', descending: true }];
const row = (id: string, key: string | null, type = 'Observation'): Row => ({ id, type, keys: [key] });

t.test('compareRows: keys, then type, then id; missing values last in both directions', async (t) => {
  const rows = [row('d', null), row('b', '2'), row('a', '1'), row('c', '2'), row('e', '1', 'Condition')];
  t.same([...rows].sort((x, y) => compareRows(asc, x, y)).map((r) => r.id), ['e', 'a', 'b', 'c', 'd']);
  t.same([...rows].sort((x, y) => compareRows(desc, x, y)).map((r) => r.id), ['b', 'c', 'e', 'a', 'd']);
  t.same([row('b', null), row('a', null)].sort((x, y) => compareRows([], x, y)).map((r) => r.id), ['a', 'b']);
});

t.test('a type rank orders types among equal keys, and cursors cut pages in that order', async (t) => {
  const patientFirst = (type: string) => (type === 'Patient' ? 0 : 1);
  const rows = [row('o1', null), row('p1', null, 'Patient'), row('c1', null, 'Condition'), row('z1', null, 'RiskAssessment')];
  const sorted = [...rows].sort((x, y) => compareRows([], x, y, patientFirst));
  t.same(sorted.map((r) => r.id), ['p1', 'c1', 'o1', 'z1']);
  t.same([...rows].sort((x, y) => compareRows([], x, y)).map((r) => r.id), ['c1', 'o1', 'p1', 'z1'], 'no rank: by type name');
  const after = slicePage(sorted, [], 2, { s: 1, d: 'a', k: [], t: 'Patient', id: 'p1' }, patientFirst);
  t.same(after.rows.map((r) => r.id), ['c1', 'o1']);
  const before = slicePage(sorted, [], 2, { s: 1, d: 'b', k: [], t: 'Condition', id: 'c1' }, patientFirst);
  t.same([before.rows.map((r) => r.id), before.hasPrevious], [['p1'], false]);
});

t.test('sortKeyOf picks the lowest ascending and the highest descending', async (t) => {
  t.equal(sortKeyOf(asc[0]!, ['2~9', '1~3']), '1');
  t.equal(sortKeyOf(desc[0]!, ['9~2', '3~1']), '9');
  t.equal(sortKeyOf({ code: 'code', type: 'token', descending: false }, ['b', 's|b', 'a', '|a']), 'a');
  t.equal(sortKeyOf({ code: 'value-quantity', type: 'quantity', descending: false }, ['#2', 'u|mg#1', '#1']), '1');
  t.equal(sortKeyOf(asc[0]!, []), null);
});

t.test('slicePage: first page, after a cursor, before a cursor, after a vanished row', async (t) => {
  const sorted = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id, i) => row(id, String(i)));
  const ids = (p: { rows: Row[] }) => p.rows.map((r) => r.id);
  const first = slicePage(sorted, asc, 3, undefined);
  t.same([ids(first), first.hasPrevious, first.hasNext], [['a', 'b', 'c'], false, true]);
  const cursor = (d: 'a' | 'b', r: Row) => ({ s: 5, d, k: r.keys, t: r.type, id: r.id });
  const second = slicePage(sorted, asc, 3, cursor('a', sorted[2]!));
  t.same([ids(second), second.hasPrevious, second.hasNext], [['d', 'e', 'f'], true, true]);
  const last = slicePage(sorted, asc, 3, cursor('a', sorted[5]!));
  t.same([ids(last), last.hasNext], [['g'], false]);
  const back = slicePage(sorted, asc, 3, cursor('b', sorted[3]!));
  t.same([ids(back), back.hasPrevious], [['a', 'b', 'c'], false]);
  const partial = slicePage(sorted, asc, 3, cursor('b', sorted[2]!));
  t.same(ids(partial), ['a', 'b'], 'a previous page near the start is short, never overlapping');
  const gone = slicePage(sorted.filter((r) => r.id !== 'c'), asc, 2, cursor('a', row('c', '2')));
  t.same(ids(gone), ['d', 'e'], 'the cursor row was deleted: the page still starts right after its position');
  t.same(ids(slicePage(sorted, asc, 0, undefined)), [], '_count=0');
});

t.test('cursors round-trip; anything else is a 400', async (t) => {
  const c = { s: 42, d: 'a' as const, k: ['x', null], t: 'Patient', id: 'p1' };
  t.same(decodeCursor(encodeCursor(c)), c);
  for (const bad of ['garbage', '', encodeCursor({ ...c, s: 1.5 }), Buffer.from('{"s":1}').toString('base64url'), Buffer.from('[]').toString('base64url')]) {
    t.throws(() => decodeCursor(bad), { status: 400, code: 'ERR_INVALID_CURSOR' }, bad.slice(0, 20));
  }
});
