// String prefixes are indexed at some lengths only (extract.ts, PREFIX_LENGTHS): every other search length is
// looked up at a shorter indexed length and checked on decrypted values. The answers must be exactly those of a
// starts-with over the folded values, for every prefix length 1..60 and alone, OR-ed, or with another filter.
import t from 'tap';
import { indexedPrefixLength, PREFIX_LENGTHS } from '../../src/fhir/search/extract.ts';
import { normalizeString } from '../../src/fhir/search/encode.ts';
import { startServer } from '../helpers/server.ts';

t.test('indexedPrefixLength: the longest ladder rung not above n', async (t) => {
  t.equal(indexedPrefixLength(0), 0);
  for (let n = 1; n <= 80; n++) {
    const l = indexedPrefixLength(n);
    t.ok(PREFIX_LENGTHS.includes(l as never) && l <= n && !PREFIX_LENGTHS.some((r) => r > l && r <= n), `n=${n} → ${l}`);
  }
});

// Families sharing long prefixes, so that a lookup at a shorter rung finds candidates the check must drop.
const STEM = 'Vanderbilt-Oppenheimer Montgomery Fitzwilliam Castellanos';
const FAMILIES = [
  STEM, `${STEM}-Smythe`, STEM.slice(0, 45), STEM.slice(0, 30), STEM.slice(0, 20) + 'X', STEM.slice(0, 13), 'Vanderbilt', 'Vandenberg', 'Müller',
  'Muller-Lüdenscheidt', 'Mu', 'Smith', 'Smithson', 'Smyth',
];

t.test('prefix searches of every length 1..60 give exactly the starts-with matches', async (t) => {
  const server = await startServer(t);
  const repo = server.app.repo;
  const ids = new Map<string, string>();
  for (const [i, family] of FAMILIES.entries()) {
    const res = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family, given: [`G${i}`] }], gender: i % 2 ? 'male' : 'female' } });
    t.equal(res.status, 201);
    ids.set(family, res.body.id as string);
  }
  const expected = (prefix: string, gender?: string) =>
    FAMILIES.filter((f, i) => normalizeString(f).startsWith(normalizeString(prefix)) && (!gender || (i % 2 ? 'male' : 'female') === gender))
      .map((f) => ids.get(f)!)
      .sort();
  const probes = [STEM, `${STEM}-Smythe`, 'Muller-Ludenscheidt', 'smithson'];
  for (const probe of probes) {
    for (let n = 1; n <= Math.min(60, probe.length); n++) {
      const prefix = probe.slice(0, n);
      t.same(await repo.findIds('Patient', { family: [prefix] }), expected(prefix), `family=${prefix}`);
      t.same(await repo.findIds('Patient', { family: [prefix], gender: ['male'] }), expected(prefix, 'male'), `family=${prefix}&gender=male`);
      t.same(await repo.findIds('Patient', { gender: ['female'], name: [prefix.toUpperCase()] }), expected(prefix, 'female'), `gender=female&name=${prefix.toUpperCase()}`);
    }
  }
  // OR of a lossy and an exactly indexed prefix, and the lossy filter checked on another filter's candidates
  const or = (a: string, b: string) => [...new Set([...expected(a), ...expected(b)])].sort();
  t.same(await repo.findIds('Patient', { family: ['Vanderbilt-Opp,smyt'] }), or('Vanderbilt-Opp', 'smyt'));
  t.same(await repo.findIds('Patient', { family: ['smithso,mu'] }), or('smithso', 'mu'));
  t.same(await repo.findIds('Patient', { _id: [`${ids.get(STEM)},${ids.get('Vanderbilt')}`], family: ['vanderbilt-o'] }), [ids.get(STEM)!]);
  t.same(await repo.findIds('Patient', { family: ['vanderbilt-oppenheimer montgomery fitzwilliam castellanos-smythe!'] }), []);
  // `phonetic` has `name`'s expression: stored once, under `name`, and answered the same
  for (const q of ['vanderbilt-oppenheimer montgomery', 'smi', 'G1', 'Muller-Lü']) {
    t.same(await repo.findIds('Patient', { phonetic: [q] }), await repo.findIds('Patient', { name: [q] }), `phonetic=${q}`);
    t.same(await repo.findIds('Patient', { 'phonetic:exact': [q] }), await repo.findIds('Patient', { 'name:exact': [q] }), `phonetic:exact=${q}`);
  }
  t.same(await repo.findIds('Patient', { 'phonetic:missing': ['false'] }), [...ids.values()].sort());
  const keys: string[] = [];
  for await (const k of repo.index.valueIndex.keys({ gte: 'Patient/', lt: 'Patient0' })) keys.push(k);
  t.ok(keys.some((k) => k.startsWith('Patient/name/')) && !keys.some((k) => k.startsWith('Patient/phonetic')), 'no phonetic keys');
  // over HTTP too (the interaction's paging and total)
  const res = await server.fhir('Patient?family=vanderbilt-oppenheimer%20montgomery%20fitz&_count=2');
  t.equal(res.body.total, expected('vanderbilt-oppenheimer montgomery fitz').length);
});
