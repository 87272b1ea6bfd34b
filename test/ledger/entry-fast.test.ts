import t from 'tap';
import fc from 'fast-check';
import { canonicalBytes } from '../../src/ledger/canonical.ts';
import { fastEntryPrev, GENESIS_PREV, parseEntry, sealEntry } from '../../src/ledger/entry.ts';
import type { EntryDraft } from '../../src/ledger/types.ts';

// fastEntryPrev is only allowed to say yes when parseEntry does (with the same prev); whatever it declines goes
// to parseEntry, so declining is always safe. These properties check both halves of that contract.

const TIME = '2025-01-02T03:04:05.678Z';
const ascii = fc.string({ unit: fc.constantFrom(...'abcXYZ019/-_.:+= '.split('')), maxLength: 12 });
const anyText = fc.oneof(ascii, fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('', '"', '\\', '\u007f', '\n', 'é'));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const draftArb: fc.Arbitrary<EntryDraft> = fc.record({
  interaction: fc.oneof(fc.constantFrom('read', 'create', 'search-type'), anyText.filter((s) => s !== '')),
  status: fc.integer({ min: 100, max: 599 }),
  agent: fc.record({ sub: opt(anyText), issuer: opt(anyText), fhirUser: opt(anyText), clientId: opt(anyText), address: opt(anyText) }),
  entity: opt(fc.array(fc.record({
    reference: anyText.filter((s) => s !== ''), version: opt(anyText), cid: opt(anyText), hmac: opt(anyText), patient: opt(anyText),
  }), { maxLength: 3 })),
  operation: opt(anyText),
  query: opt(anyText),
  patients: opt(fc.array(anyText, { maxLength: 3 })),
  purpose: opt(anyText),
  error: opt(anyText),
});

const asText = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');
const printableAscii = (text: string) => /^[\x20-\x7e]*$/.test(text);

t.test('sealed entries: the fast path accepts exactly the printable-ASCII ones, with their prev', async (t) => {
  fc.assert(fc.property(draftArb, fc.nat({ max: 2 ** 40 }), (draft, seq) => {
    let sealed;
    try {
      sealed = sealEntry(draft, seq, TIME, GENESIS_PREV);
    } catch {
      return true; // a draft sealEntry refuses (say, a lone surrogate) never reaches the store
    }
    const text = asText(sealed.bytes);
    const fast = fastEntryPrev(text, seq);
    if (printableAscii(text) && !/[\\]/.test(text)) return fast === GENESIS_PREV;
    return fast === undefined;
  }), { numRuns: 2000 });
});

t.test('sealEntry writes exactly what the canonicalize package writes, and refuses what it refuses', async (t) => {
  fc.assert(fc.property(draftArb, fc.nat({ max: 2 ** 40 }), (draft, seq) => {
    let sealed;
    try {
      sealed = sealEntry(draft, seq, TIME, GENESIS_PREV);
    } catch (error) {
      // Only lone surrogates are refused; the generic serializer refuses them too.
      let generic: unknown;
      try {
        canonicalBytes({ v: 1, seq, time: TIME, prev: GENESIS_PREV, ...JSON.parse(JSON.stringify(draft)) });
      } catch (e) {
        generic = e;
      }
      return (error as { code?: string }).code === 'ERR_CANONICAL_JSON' && (generic as { code?: string } | undefined)?.code === 'ERR_CANONICAL_JSON';
    }
    return Buffer.from(sealed.bytes).equals(Buffer.from(canonicalBytes(sealed.entry)));
  }), { numRuns: 3000 });
});

t.test('whatever the fast path accepts, parseEntry accepts with the same prev', async (t) => {
  // Mutations of valid entries (one character changed, inserted or removed) and hand-made near misses.
  const mutated = fc.tuple(draftArb, fc.nat({ max: 1000 }), fc.nat(), fc.constantFrom('replace', 'insert', 'delete'), fc.constantFrom(...'{}[]",:01 9aA\\'.split('')))
    .map(([draft, seq, at, how, ch]) => {
      let text: string;
      try {
        text = asText(sealEntry(draft, seq, TIME, GENESIS_PREV).bytes);
      } catch {
        text = '{}';
      }
      const i = at % (text.length + 1);
      if (how === 'replace') text = text.slice(0, i) + ch + text.slice(i + 1);
      else if (how === 'insert') text = text.slice(0, i) + ch + text.slice(i);
      else text = text.slice(0, i) + text.slice(i + 1);
      return { text, seq };
    });
  fc.assert(fc.property(mutated, ({ text, seq }) => {
    const fast = fastEntryPrev(text, seq);
    if (fast === undefined) return true;
    return parseEntry(Buffer.from(text, 'utf8'), seq).prev === fast;
  }), { numRuns: 5000 });
});

t.test('near misses the fast path must decline', async (t) => {
  const base = { v: 1, seq: 3, time: TIME, prev: GENESIS_PREV, interaction: 'read', status: 200, agent: {} };
  const good = asText(canonicalBytes(base));
  t.equal(fastEntryPrev(good, 3), GENESIS_PREV, 'the minimal entry');
  const cases: Array<[string, string]> = [
    ['another seq', good.replace('"seq":3', '"seq":4')],
    ['leading zero', good.replace('"seq":3', '"seq":03')],
    ['a fraction', good.replace('"seq":3', '"seq":3.0')],
    ['v 2', good.replace('"v":1', '"v":2')],
    ['status 600', good.replace('"status":200', '"status":600')],
    ['status 99', good.replace('"status":200', '"status":99')],
    ['whitespace', good.replace(',"seq"', ', "seq"')],
    ['trailing byte', good + ' '],
    ['unsorted members', good.replace('"agent":{},', '').replace('"v":1}', '"v":1,"agent":{}}')],
    ['duplicate member', good.replace('"agent":{},', '"agent":{},"agent":{},')],
    ['unknown member', good.replace('"agent":{},', '"agent":{},"name":"x",')],
    ['unknown agent member', good.replace('"agent":{}', '"agent":{"email":"x"}')],
    ['agent member not a string', good.replace('"agent":{}', '"agent":{"sub":1}')],
    ['missing interaction', good.replace('"interaction":"read",', '')],
    ['empty interaction', good.replace('"interaction":"read"', '"interaction":""')],
    ['non-canonical base64 prev', good.replace(GENESIS_PREV, GENESIS_PREV.replace('U=', 'V='))],
    ['short prev', good.replace(GENESIS_PREV, 'AAAA')],
    ['bad time', good.replace(TIME, '2025-13-02T03:04:05.678Z')],
    ['entity without reference', good.replace('"agent":{},', '"agent":{},"entity":[{"version":"1"}],')],
    ['entity with empty reference', good.replace('"agent":{},', '"agent":{},"entity":[{"reference":""}],')],
    ['an escape', good.replace('"read"', '"re\\u0061d"')],
    ['non-ASCII', good.replace('"read"', '"réad"')],
    ['a replacement character', good.replace('"read"', '"re\ufffdd"')],
  ];
  for (const [name, text] of cases) {
    t.equal(fastEntryPrev(text, 3), undefined, name);
    if (text !== good) {
      let exact: string | undefined;
      try {
        exact = parseEntry(Buffer.from(text, 'utf8'), 3).prev;
      } catch {
        exact = undefined;
      }
      if (exact !== undefined) t.ok(['an escape', 'non-ASCII', 'a replacement character'].includes(name), `${name}: declined though valid, which is allowed only for escapes and non-ASCII`);
    }
  }
  t.equal(fastEntryPrev(asText(canonicalBytes({ ...base, entity: [], patients: [] })), 3), GENESIS_PREV, 'empty arrays');
});
