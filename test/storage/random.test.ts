import t from 'tap';
import { freshRandom } from '../../src/storage/random.ts';

t.test('each draw is fresh, of the asked length, and owns its memory', async (t) => {
  const seen = new Set<string>();
  const problems: string[] = [];
  // 5,000 draws of 12 and 32 bytes cross the 4 KiB pool many times.
  for (let i = 0; i < 5000; i++) {
    const length = i % 2 === 0 ? 12 : 32;
    const bytes = freshRandom(length);
    if (bytes.byteLength !== length) problems.push(`draw ${i} has ${bytes.byteLength} bytes`);
    if (bytes.buffer.byteLength !== length) problems.push(`draw ${i} is a view into a larger buffer`);
    const hex = bytes.toString('hex');
    if (seen.has(hex)) problems.push(`draw ${i} repeats an earlier one`);
    seen.add(hex);
  }
  t.same(problems, []);
  const a = freshRandom(32);
  const before = Buffer.from(a);
  freshRandom(32).fill(0xff);
  t.same(a, before, 'writing into a later draw leaves an earlier one alone');
});

t.test('draws look uniform: every byte value turns up, none far above its share', async (t) => {
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < 2000; i++) for (const b of freshRandom(32)) counts[b]!++;
  // 64,000 bytes: 250 per value expected; 400 is more than 9 standard deviations away.
  t.ok(counts.every((c) => c > 100 && c < 400), `byte counts between ${Math.min(...counts)} and ${Math.max(...counts)}`);
});

t.test('a draw larger than the pool comes straight from the CSPRNG', async (t) => {
  const big = freshRandom(10_000);
  t.equal(big.byteLength, 10_000);
  t.not(big.subarray(0, 32).toString('hex'), big.subarray(32, 64).toString('hex'));
});
