import t from 'tap';
import { createHash } from 'node:crypto';
import { fromBase64, GENESIS_PREV, parseEntry, sealEntry, toBase64 } from '../../src/ledger/entry.ts';
import type { EntryDraft } from '../../src/ledger/types.ts';

const TIME = '2025-01-02T03:04:05.678Z';
const draft: EntryDraft = {
  interaction: 'read',
  status: 200,
  agent: { sub: 'u1', fhirUser: 'Practitioner/7', clientId: 'app', address: '127.0.0.1', issuer: undefined },
  entity: [{ reference: 'Patient/p1', version: '2', cid: 'bafkrei', hmac: 'aGFzaA', patient: 'Patient/p1' }],
  purpose: undefined,
};

t.test('genesis prev is base64 SHA-256 of the empty string', async (t) => {
  t.equal(GENESIS_PREV, createHash('sha256').update('').digest('base64'));
  t.equal(GENESIS_PREV, '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
});

t.test('a sealed entry has fixed canonical bytes and the RFC 9162 leaf hash', async (t) => {
  const sealed = sealEntry(draft, 0, TIME, GENESIS_PREV);
  const text =
    '{"agent":{"address":"127.0.0.1","clientId":"app","fhirUser":"Practitioner/7","sub":"u1"},' +
    '"entity":[{"cid":"bafkrei","hmac":"aGFzaA","patient":"Patient/p1","reference":"Patient/p1","version":"2"}],' +
    `"interaction":"read","prev":"${GENESIS_PREV}","seq":0,"status":200,"time":"${TIME}","v":1}`;
  t.equal(Buffer.from(sealed.bytes).toString('utf8'), text, 'undefined members dropped, keys sorted');
  const expected = createHash('sha256').update(Uint8Array.of(0)).update(text).digest('hex');
  t.equal(Buffer.from(sealed.leafHash).toString('hex'), expected, 'SHA-256(0x00 ‖ bytes)');
  t.same(parseEntry(sealed.bytes, 0), sealed.entry, 'round trip');
  t.notOk('issuer' in sealed.entry.agent, 'no undefined member survives in the object either');
  const again = sealEntry({ ...draft, agent: { ...draft.agent } }, 0, TIME, GENESIS_PREV);
  t.same(again.bytes, sealed.bytes, 'deterministic');
});

t.test('drafts with fields outside the schema or wrong types are refused', async (t) => {
  const bad: Array<[string, unknown]> = [
    ['unknown top-level field', { ...draft, name: 'Jane Doe' }],
    ['unknown agent field', { ...draft, agent: { sub: 'u', email: 'x@y' } }],
    ['unknown entity field', { ...draft, entity: [{ reference: 'Patient/1', resource: {} }] }],
    ['entity without reference', { ...draft, entity: [{ version: '1' }] }],
    ['entity not an array', { ...draft, entity: { reference: 'Patient/1' } }],
    ['undefined inside entity array', { ...draft, entity: [undefined] }],
    ['status not a code', { ...draft, status: 42 }],
    ['status not an integer', { ...draft, status: 200.5 }],
    ['empty interaction', { ...draft, interaction: '' }],
    ['agent missing', { interaction: 'read', status: 200 }],
    ['numeric sub', { ...draft, agent: { sub: 5 } }],
    ['patients not strings', { ...draft, patients: [1] }],
    ['query not a string', { ...draft, query: { name: 'x' } }],
    ['seq in a draft', { ...draft, seq: 4 }],
  ];
  for (const [what, value] of bad) {
    t.throws(() => sealEntry(value as EntryDraft, 0, TIME, GENESIS_PREV), { code: 'ERR_LEDGER_DRAFT_INVALID' }, what);
  }
});

t.test('stored bytes are parsed strictly', async (t) => {
  const good = JSON.parse(Buffer.from(sealEntry(draft, 3, TIME, GENESIS_PREV).bytes).toString('utf8')) as Record<string, unknown>;
  const canonical = (v: unknown): Uint8Array => sealLike(v);
  const cases: Array<[string, Uint8Array]> = [
    ['not JSON', new TextEncoder().encode('{"v":1')],
    ['not UTF-8', Uint8Array.of(0x7b, 0xc3, 0x7d)],
    ['whitespace', new TextEncoder().encode(JSON.stringify(sortKeys(good), null, 1))],
    ['unsorted', new TextEncoder().encode(JSON.stringify({ v: 1, ...good }))],
    ['wrong version', canonical({ ...good, v: 2 })],
    ['negative seq', canonical({ ...good, seq: -1 })],
    ['bad time', canonical({ ...good, time: 'yesterday' })],
    ['prev not a hash', canonical({ ...good, prev: 'AAAA' })],
    ['prev not base64', canonical({ ...good, prev: '!'.repeat(44) })],
    ['extra field', canonical({ ...good, note: 'x' })],
    ['missing agent', canonical({ ...good, agent: undefined })],
  ];
  for (const [what, bytes] of cases) t.throws(() => parseEntry(bytes), { code: 'ERR_LEDGER_ENTRY_INVALID' }, what);
  t.throws(() => parseEntry(canonical(good), 4), { code: 'ERR_LEDGER_ENTRY_INVALID' }, 'seq other than expected');
  t.equal(parseEntry(canonical(good), 3).seq, 3);
});

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
}

function sealLike(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(sortKeys(v)));
}

t.test('base64 helpers are strict', async (t) => {
  const bytes = Uint8Array.of(0, 1, 2, 250, 251, 252);
  t.equal(toBase64(bytes), 'AAEC+vv8');
  t.same(fromBase64('AAEC+vv8'), bytes);
  t.equal(toBase64(new Uint8Array(bytes.buffer, 2, 2)), toBase64(Uint8Array.of(2, 250)), 'respects views');
  for (const bad of ['AAEC-_v8', 'AAE', 'AAEC+vv8\n', ' AAEC+vv8', 'AA==AA==']) {
    t.throws(() => fromBase64(bad), { code: 'ERR_BASE64' }, JSON.stringify(bad));
  }
});
