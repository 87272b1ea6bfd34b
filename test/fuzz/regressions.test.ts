/**
 * Bugs the fuzz suite found, each pinned as one small fixed example (the properties in the other files keep
 * searching around them).
 */
import t from 'tap';
import { encodeNumber, numberRange } from '../../src/fhir/search/encode.ts';
import { numberCondition } from '../../src/fhir/search/conditions.ts';
import { startServer } from '../helpers/server.ts';

t.test('a search number with more digits than a double holds still matches its own value', async (t) => {
  for (const text of ['5.724228417594691e-33', '100.000000000000000001', `0.${'0'.repeat(400)}`]) {
    const r = numberRange(text)!;
    t.ok(r.low <= r.value && r.value < r.high, `${text}: the range holds the value`);
    const eq = numberCondition('n', 'n', text, '');
    t.ok(eq.test(encodeNumber(Number(text))), `${text}: eq matches the stored value`);
  }
});

t.test('over HTTP', async (t) => {
  const server = await startServer(t);

  await t.test('a Bundle entry whose conditional header is not a string is a 400, not a 500', async (t) => {
    for (const [name, value] of [['ifNoneExist', 7], ['ifMatch', 5], ['ifNoneMatch', { a: 1 }], ['ifModifiedSince', true]] as const) {
      for (const type of ['transaction', 'batch']) {
        const res = await server.fhir('', {
          method: 'POST',
          body: { resourceType: 'Bundle', type, entry: [{ request: { method: 'POST', url: 'Patient', [name]: value }, resource: { resourceType: 'Patient' } }] },
        });
        const status = type === 'batch' ? Number(res.body?.entry?.[0]?.response?.status?.slice(0, 3)) : res.status;
        t.equal(status, 400, `${type} with ${name}: ${JSON.stringify(value)}`);
      }
    }
    t.equal((await server.fhir('Patient')).body.total, 0, 'nothing was created');
  });
});
