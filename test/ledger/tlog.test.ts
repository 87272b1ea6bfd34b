import t from 'tap';
import { EMPTY_ROOT, leafHash, nodeHash, verifyConsistency, verifyInclusion, type Hash } from '../../src/ledger/merkle.ts';
import {
  appendLeaf, appendOfStoredHash, consistencyProof, frontierIndexes, inclusionProof, rootFromFrontier,
  splitStoredHashIndex, storedHashCount, storedHashesForLeaf, storedHashIndex, treeHash, type HashReader,
} from '../../src/ledger/tlog.ts';
import { hex, refPath, refProof, refRoot, testLeaves } from './fixtures/reference.ts';

/** An in-memory hash store filled the way the ledger fills LevelDB, counting its reads. */
function buildStore(leaves: readonly Hash[]) {
  const store = new Map<number, Hash>();
  const frontier: Hash[] = [];
  leaves.forEach((leaf, n) => {
    for (const [index, hash] of appendLeaf(frontier, n, leaf)) {
      if (store.has(index)) throw new Error(`index ${index} written twice`);
      store.set(index, hash);
    }
  });
  const stats = { calls: 0, hashes: 0 };
  const read: HashReader = async (indexes) => {
    stats.calls++;
    stats.hashes += indexes.length;
    return indexes.map((i) => {
      const h = store.get(i);
      if (!h) throw new Error(`missing ${i}`);
      return h;
    });
  };
  return { store, frontier, read, stats };
}

t.test('stored-hash layout of Go sumdb/tlog (worked example n = 0..4)', async (t) => {
  // [level, n] → index, as in docs/ledger.md
  const table: Array<[number, number, number]> = [
    [0, 0, 0], [0, 1, 1], [1, 0, 2], [0, 2, 3], [0, 3, 4], [1, 1, 5], [2, 0, 6], [0, 4, 7],
    [0, 5, 8], [1, 2, 9], [0, 6, 10], [0, 7, 11], [1, 3, 12], [2, 1, 13], [3, 0, 14], [0, 8, 15],
  ];
  for (const [level, n, index] of table) {
    t.equal(storedHashIndex(level, n), index, `StoredHashIndex(${level}, ${n})`);
    t.same(splitStoredHashIndex(index), { level, n }, `SplitStoredHashIndex(${index})`);
  }
  const counts = [0, 1, 3, 4, 7, 8, 10, 11, 15, 16];
  counts.forEach((count, size) => t.equal(storedHashCount(size), count, `StoredHashCount(${size})`));
  t.equal(appendOfStoredHash(6), 3, 'the level-2 hash 6 is completed by leaf 3');
  t.equal(appendOfStoredHash(7), 4);
});

t.test('split is the inverse of the index, also beyond 32 bits', async (t) => {
  const bad: string[] = [];
  for (let index = 0; index < 5000; index++) {
    const { level, n } = splitStoredHashIndex(index);
    if (storedHashIndex(level, n) !== index) bad.push(`${index}`);
  }
  for (const n of [2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, 2 ** 50 - 1]) {
    for (const level of [0, 1, 5, 20]) {
      const index = storedHashIndex(level, Math.floor(n / 2 ** level));
      const back = splitStoredHashIndex(index);
      if (back.level !== level || back.n !== Math.floor(n / 2 ** level)) bad.push(`${level}/${n}`);
    }
  }
  t.same(bad, []);
});

t.test('appends store contiguous indexes; frontier and reader agree', async (t) => {
  const leaves = testLeaves(300);
  const { store, read } = buildStore(leaves);
  t.equal(store.size, storedHashCount(300));
  t.same([...store.keys()], [...store.keys()].sort((a, b) => a - b), 'written in index order');
  const frontier: Hash[] = [];
  const bad: string[] = [];
  for (let n = 0; n < leaves.length; n++) {
    const fromFrontier = appendLeaf(frontier, n, leaves[n]!);
    const fromReader = await storedHashesForLeaf(n, leaves[n]!, read);
    if (JSON.stringify(fromFrontier.map(([i, h]) => [i, hex(h)])) !== JSON.stringify(fromReader.map(([i, h]) => [i, hex(h)]))) {
      bad.push(`append ${n}`);
    }
    if (fromFrontier.length !== storedHashCount(n + 1) - storedHashCount(n)) bad.push(`count ${n}`);
    if (hex(rootFromFrontier(frontier)) !== hex(refRoot(leaves.slice(0, n + 1)))) bad.push(`root ${n + 1}`);
    const recovered = await read(frontierIndexes(n + 1));
    if (recovered.map(hex).join() !== frontier.map(hex).join()) bad.push(`frontier ${n + 1}`);
  }
  t.same(bad, []);
  t.equal(hex(rootFromFrontier([])), hex(EMPTY_ROOT));
});

t.test('roots and proofs from stored hashes match the RFC oracle for every size up to 64', async (t) => {
  const leaves = testLeaves(64);
  const { read, stats } = buildStore(leaves);
  const bad: string[] = [];
  t.equal(hex(await treeHash(0, read)), hex(EMPTY_ROOT));
  for (let size = 1; size <= 64; size++) {
    const prefix = leaves.slice(0, size);
    const root = await treeHash(size, read);
    if (hex(root) !== hex(refRoot(prefix))) bad.push(`root ${size}`);
    for (let index = 0; index < size; index++) {
      const proof = await inclusionProof(index, size, read);
      if (proof.map(hex).join() !== refPath(index, prefix).map(hex).join()) bad.push(`inclusion ${index}/${size}`);
      if (!verifyInclusion(leaves[index]!, index, size, proof, root)) bad.push(`verify inclusion ${index}/${size}`);
    }
    for (let size1 = 0; size1 <= size; size1++) {
      const proof = await consistencyProof(size1, size, read);
      const want = size1 === 0 || size1 === size ? [] : refProof(size1, prefix);
      if (proof.map(hex).join() !== want.map(hex).join()) bad.push(`consistency ${size1}/${size}`);
      if (!verifyConsistency(size1, size, proof, refRoot(leaves.slice(0, size1)), root)) bad.push(`verify consistency ${size1}/${size}`);
    }
  }
  t.same(bad, []);
  t.ok(stats.calls > 0, 'proofs came from the store');
});

t.test('random larger trees, with O(log n) reads in one batch', async (t) => {
  const leaves = testLeaves(3000, 'large');
  const { read, stats } = buildStore(leaves);
  const bad: string[] = [];
  let seed = 99;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let round = 0; round < 30; round++) {
    const size = 65 + rand(leaves.length - 64);
    const index = rand(size);
    const size1 = 1 + rand(size - 1);
    const prefix = leaves.slice(0, size);
    // One batched read per call, of at most ⌈log2 size⌉ + 1 hashes for a root and 2⌈log2 size⌉ + 1 for a proof
    // (only one range of a proof is not a complete subtree).
    const log = Math.ceil(Math.log2(size));
    const measured = async <T>(what: string, bound: number, call: () => Promise<T>): Promise<T> => {
      const before = { ...stats };
      const result = await call();
      if (stats.calls - before.calls !== 1) bad.push(`${what} ${size}: ${stats.calls - before.calls} read calls`);
      if (stats.hashes - before.hashes > bound) bad.push(`${what} ${size}: ${stats.hashes - before.hashes} hashes read`);
      return result;
    };
    const root = await measured('root', log + 1, () => treeHash(size, read));
    const path = await measured('inclusion', 2 * log + 1, () => inclusionProof(index, size, read));
    const proof = await measured('consistency', 2 * log + 1, () => consistencyProof(size1, size, read));
    if (hex(root) !== hex(refRoot(prefix))) bad.push(`root ${size}`);
    if (path.map(hex).join() !== refPath(index, prefix).map(hex).join()) bad.push(`inclusion ${index}/${size}`);
    if (proof.map(hex).join() !== refProof(size1, prefix).map(hex).join()) bad.push(`consistency ${size1}/${size}`);
    if (!verifyConsistency(size1, size, proof, refRoot(leaves.slice(0, size1)), root)) bad.push(`verify ${size1}/${size}`);
  }
  t.same(bad, []);
});

t.test('bad requests and a store that lies are typed errors', async (t) => {
  const { read } = buildStore(testLeaves(8));
  await t.rejects(inclusionProof(8, 8, read), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(inclusionProof(-1, 8, read), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(inclusionProof(0.5, 8, read), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(consistencyProof(5, 4, read), { code: 'ERR_LEDGER_RANGE' });
  await t.rejects(treeHash(NaN, read), { code: 'ERR_LEDGER_RANGE' });
  const short: HashReader = async (indexes) => (await read(indexes)).slice(1);
  await t.rejects(treeHash(7, short), { code: 'ERR_LEDGER_CORRUPT' });
  const malformed: HashReader = async (indexes) => (await read(indexes)).map((h) => h.slice(1));
  await t.rejects(inclusionProof(2, 7, malformed), { code: 'ERR_LEDGER_CORRUPT' });
  t.throws(() => appendLeaf([], 1, EMPTY_ROOT), { code: 'ERR_LEDGER_CORRUPT' }, 'leaf 1 needs the frontier of leaf 0');
});

t.test('index arithmetic holds beyond 32 bits (trees of 2^40 + s leaves)', async (t) => {
  // Stored hashes of a tree too big to build: levels up to 4 are honest hashes of their children, higher ones
  // stand-in values. Proofs near the right edge of a 2^40 + s tree never split a stand-in, so they must verify.
  const big = 2 ** 40;
  const honest = (level: number, n: number): Hash =>
    level === 0 ? leafHashOf(n) : nodeHash(honest(level - 1, 2 * n), honest(level - 1, 2 * n + 1));
  const read: HashReader = async (indexes) =>
    indexes.map((i) => {
      const { level, n } = splitStoredHashIndex(i);
      return level <= 4 ? honest(level, n) : nodeHash(leafHashOf(level), leafHashOf(n));
    });
  const bad: string[] = [];
  for (let s = 1; s < 16; s++) {
    const size = big + s;
    const root = await treeHash(size, read);
    for (let index = big; index < size; index++) {
      const proof = await inclusionProof(index, size, read);
      if (!verifyInclusion(leafHashOf(index), index, size, proof, root)) bad.push(`inclusion ${index - big}/${s}`);
      if (verifyInclusion(leafHashOf(index), index - 1, size, proof, root)) bad.push(`wrong index ${index - big}/${s}`);
    }
    for (let s1 = 1; s1 < s; s1++) {
      const proof = await consistencyProof(big + s1, size, read);
      if (!verifyConsistency(big + s1, size, proof, await treeHash(big + s1, read), root)) bad.push(`consistency ${s1}/${s}`);
    }
  }
  t.same(bad, []);
});

function leafHashOf(n: number): Hash {
  return leafHash(new TextEncoder().encode(`leaf ${n}`));
}
