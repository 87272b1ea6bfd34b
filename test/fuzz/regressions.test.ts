/**
 * Bugs the fuzz suite found, each pinned as one small fixed example (the properties in the other files keep
 * searching around them).
 */
import t from 'tap';
import { encodeNumber, numberRange } from '../../src/fhir/search/encode.ts';
import { numberCondition } from '../../src/fhir/search/conditions.ts';

t.test('a search number with more digits than a double holds still matches its own value', async (t) => {
  for (const text of ['5.724228417594691e-33', '100.000000000000000001', `0.${'0'.repeat(400)}`]) {
    const r = numberRange(text)!;
    t.ok(r.low <= r.value && r.value < r.high, `${text}: the range holds the value`);
    const eq = numberCondition('n', 'n', text, '');
    t.ok(eq.test(encodeNumber(Number(text))), `${text}: eq matches the stored value`);
  }
});
