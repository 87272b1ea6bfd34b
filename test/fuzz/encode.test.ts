/**
 * The order-preserving encodings of src/fhir/search/encode.ts: the index answers range searches by comparing
 * key strings, so string order must be numeric order, decoding must undo encoding, and a date's range must be
 * exactly the instants its precision covers. Garbage must give undefined, never a throw.
 */
import t from 'tap';
import fc from 'fast-check';
import { dateRange, decodeInstant, decodeNumber, encodeInstant, encodeNumber, normalizeString, numberRange } from '../../src/fhir/search/encode.ts';
import { holds } from './fixtures/runs.ts';

const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
const number = fc.oneof(fc.double({ noNaN: true }), fc.integer(), fc.constantFrom(0, -0, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE));

t.test('encodeNumber: 16 hex digits whose string order is the numeric order; decode undoes it', async (t) => {
  await holds(
    t,
    fc.property(number, number, (a, b) => {
      const ea = encodeNumber(a);
      const eb = encodeNumber(b);
      return /^[0-9a-f]{16}$/.test(ea) && cmp(ea, eb) === cmp(a, b) && Object.is(decodeNumber(ea), a === 0 ? 0 : a);
    }),
    2000,
  );
});

// Instants of years 0001–9999, the span the index's fixed-width encoding covers.
const instant = fc.integer({ min: Date.parse('0001-01-01T00:00:00Z'), max: Date.parse('9999-12-31T23:59:59.999Z') });

t.test('encodeInstant: fixed width, string order is time order, decode undoes it', async (t) => {
  await holds(
    t,
    fc.property(instant, instant, (a, b) => {
      const ea = encodeInstant(a);
      const eb = encodeInstant(b);
      return ea.length === 15 && eb.length === 15 && cmp(ea, eb) === cmp(a, b) && decodeInstant(ea) === a;
    }),
    2000,
  );
});

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const isoYear = (y: number) => (y > 9999 ? `+${pad(y, 6)}` : pad(y, 4));

/** A valid FHIR date/dateTime at a random precision, with the instants it covers computed by Date.parse. */
const datedValue = fc
  .record({
    y: fc.integer({ min: 1, max: 9999 }),
    mo: fc.integer({ min: 1, max: 12 }),
    d: fc.integer({ min: 1, max: 31 }),
    h: fc.integer({ min: 0, max: 23 }),
    mi: fc.integer({ min: 0, max: 59 }),
    s: fc.integer({ min: 0, max: 59 }),
    frac: fc.stringMatching(/^\d{1,9}$/),
    zone: fc.oneof(fc.constant(''), fc.constant('Z'), fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 14 }), fc.integer({ min: 0, max: 59 })).map(([sg, h, m]) => `${sg}${pad(h)}:${pad(m)}`)),
    precision: fc.constantFrom('year', 'month', 'day', 'minute', 'second', 'fraction'),
  })
  .map((v) => ({ ...v, d: Math.min(v.d, new Date(Date.UTC(2000, v.mo, 0)).getUTCDate() - (v.mo === 2 && !isLeap(v.y) ? 1 : 0)) }));

function isLeap(y: number) {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

type Dated = typeof datedValue extends fc.Arbitrary<infer T> ? T : never;

function expected(v: Dated): { text: string; low: number; next: number } {
  const { y, mo, d, h, mi, s, frac, zone, precision } = v;
  const date = `${isoYear(y)}-${pad(mo)}-${pad(d)}`;
  const ms = frac.slice(0, 3).padEnd(3, '0');
  const z = zone === '' ? 'Z' : zone;
  switch (precision) {
    case 'year':
      return { text: pad(y, 4), low: Date.parse(`${isoYear(y)}-01-01T00:00:00Z`), next: Date.parse(`${isoYear(y + 1)}-01-01T00:00:00Z`) };
    case 'month': {
      const [ny, nm] = mo === 12 ? [y + 1, 1] : [y, mo + 1];
      return { text: `${pad(y, 4)}-${pad(mo)}`, low: Date.parse(`${isoYear(y)}-${pad(mo)}-01T00:00:00Z`), next: Date.parse(`${isoYear(ny)}-${pad(nm)}-01T00:00:00Z`) };
    }
    case 'day': {
      const low = Date.parse(`${date}T00:00:00Z`);
      return { text: `${pad(y, 4)}-${pad(mo)}-${pad(d)}`, low, next: low + 86_400_000 };
    }
    case 'minute': {
      const low = Date.parse(`${date}T${pad(h)}:${pad(mi)}:00${z}`);
      return { text: `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}${zone}`, low, next: low + 60_000 };
    }
    case 'second': {
      const low = Date.parse(`${date}T${pad(h)}:${pad(mi)}:${pad(s)}${z}`);
      return { text: `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${zone}`, low, next: low + 1000 };
    }
    case 'fraction': {
      const low = Date.parse(`${date}T${pad(h)}:${pad(mi)}:${pad(s)}.${ms}${z}`);
      return { text: `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}.${frac}${zone}`, low, next: low + 10 ** (3 - Math.min(frac.length, 3)) };
    }
  }
}

t.test('dateRange: exactly the instants the precision covers, low <= high', async (t) => {
  await holds(
    t,
    fc.property(datedValue, (v) => {
      const want = expected(v);
      const got = dateRange(want.text);
      return got !== undefined && got.low === want.low && got.high === want.next - 1 && got.low <= got.high;
    }),
    2000,
  );
});

t.test('dateRange: a more precise date lies inside each of its less precise prefixes', async (t) => {
  await holds(
    t,
    fc.property(datedValue, (v) => {
      const full = dateRange(expected({ ...v, precision: 'fraction', zone: 'Z' }).text)!;
      return (['year', 'month', 'day'] as const).every((p) => {
        const outer = dateRange(expected({ ...v, precision: p }).text)!;
        return outer.low <= full.low && full.high <= outer.high;
      });
    }),
    1000,
  );
});

t.test('dateRange: impossible or malformed dates give undefined, never a throw or an inverted range', async (t) => {
  const dateish = fc.oneof(
    fc.stringMatching(/^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,12})?)?)?([+-]\d{2}:\d{2}|Z)?)?)?)?$/),
    fc.string({ maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
  );
  await holds(
    t,
    fc.property(dateish, (text) => {
      const r = dateRange(text);
      if (r === undefined) return true;
      // Anything accepted is a real calendar date: Date.parse agrees on its first instant (zone-less = UTC).
      const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/.exec(text)!;
      const day = Date.parse(`${m[1]}-${m[2] ?? '01'}-${m[3] ?? '01'}T00:00:00Z`);
      const zoneSpan = 15 * 3_600_000; // offsets reach ±14:59
      return Number.isFinite(day) && r.low <= r.high && r.low >= day - zoneSpan && r.low < day + 86_400_000 + zoneSpan;
    }),
    2000,
  );
});

t.test('numberRange: low <= value < high for every decimal it accepts; garbage and decimals no double holds give undefined', async (t) => {
  const decimal = fc.oneof(
    fc.stringMatching(/^[+-]?\d{1,20}(\.\d{1,20})?([eE][+-]?\d{1,3})?$/),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
    fc.string({ maxLength: 12 }),
  );
  await holds(
    t,
    fc.property(decimal, (text) => {
      const r = numberRange(text);
      if (r === undefined) return !/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text) || !Number.isFinite(Number(text)) || (Number(text) === 0 && /[1-9]/.test(text.replace(/[eE].*/, '')));
      return r.value === Number(text) && r.low <= r.value && r.value < r.high;
    }),
    2000,
  );
});

t.test('normalizeString is idempotent and never throws', async (t) => {
  await holds(
    t,
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
      const n = normalizeString(s);
      return normalizeString(n) === n && n === n.trim();
    }),
    1000,
  );
});
