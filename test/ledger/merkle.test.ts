import t from 'tap';
import { readFileSync } from 'node:fs';
import { EMPTY_ROOT, leafHash, nodeHash, splitPoint, verifyConsistency, verifyInclusion, type Hash } from '../../src/ledger/merkle.ts';
import { hex, refPath, refProof, refRoot, testLeaves } from './fixtures/reference.ts';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/merkle/ct-vectors.json', import.meta.url), 'utf8')) as {
  leafInputsHex: string[];
  leafHashes: string[];
  emptyRoot: string;
  roots: Record<string, string>;
  hasherKnownAnswers: Array<{ leaf?: string; leafHash?: string; left?: string; right?: string; nodeHash?: string }>;
};
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s.replace(/ \(ascii\)$/, ''));

t.test('CT vectors reproduce exactly', async (t) => {
  t.equal(hex(EMPTY_ROOT), vectors.emptyRoot, 'empty root');
  const leaves = vectors.leafInputsHex.map((h) => leafHash(fromHex(h)));
  t.same(leaves.map(hex), vectors.leafHashes, 'leaf hashes');
  for (const [n, root] of Object.entries(vectors.roots)) {
    t.equal(hex(refRootVia(leaves.slice(0, Number(n)))), root, `root of ${n} leaves`);
    t.equal(hex(refRoot(leaves.slice(0, Number(n)))), root, `oracle root of ${n} leaves`);
  }
  const [leafAnswer, nodeAnswer] = vectors.hasherKnownAnswers;
  t.equal(hex(leafHash(ascii(leafAnswer!.leaf!))), leafAnswer!.leafHash);
  t.equal(hex(nodeHash(ascii(nodeAnswer!.left!), ascii(nodeAnswer!.right!))), nodeAnswer!.nodeHash);
});

/** MTH with the module's own hashing (the oracle in reference.ts hashes independently). */
function refRootVia(leaves: Hash[]): Hash {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(refRootVia(leaves.slice(0, k)), refRootVia(leaves.slice(k)));
}

t.test('splitPoint is the largest power of two below n', async (t) => {
  const table: Array<[number, number]> = [[2, 1], [3, 2], [4, 2], [5, 4], [8, 4], [9, 8], [2 ** 40 + 1, 2 ** 40], [2 ** 52, 2 ** 51]];
  for (const [n, k] of table) t.equal(splitPoint(n), k, `n=${n}`);
});

/** Every way a valid proof can be damaged; none may verify. */
function corruptions(proof: Hash[]): Array<[string, Hash[]]> {
  const out: Array<[string, Hash[]]> = [];
  proof.forEach((_, i) => {
    const flipped = proof.map((p) => new Uint8Array(p));
    flipped[i]![i % 32] ^= 1 << (i % 8);
    out.push([`bit flip in ${i}`, flipped]);
  });
  if (proof.length > 0) {
    out.push(['truncated', proof.slice(0, -1)]);
    out.push(['first dropped', proof.slice(1)]);
    out.push(['short element', [proof[0]!.slice(0, 31), ...proof.slice(1)]]);
  }
  if (proof.length > 1) out.push(['swapped', [proof[1]!, proof[0]!, ...proof.slice(2)]]);
  out.push(['extended', [...proof, new Uint8Array(32)]]);
  out.push(['prefixed', [new Uint8Array(32), ...proof]]);
  return out;
}

t.test('inclusion: every (index, size) up to 64 verifies, every corruption fails', async (t) => {
  const leaves = testLeaves(64);
  const bad: string[] = [];
  for (let size = 1; size <= 64; size++) {
    const root = refRoot(leaves.slice(0, size));
    for (let index = 0; index < size; index++) {
      const proof = refPath(index, leaves.slice(0, size));
      const leaf = leaves[index]!;
      if (!verifyInclusion(leaf, index, size, proof, root)) bad.push(`valid ${index}/${size}`);
      for (const [what, p] of corruptions(proof)) {
        if (verifyInclusion(leaf, index, size, p, root)) bad.push(`${what} ${index}/${size}`);
      }
      // The probes of transparency-dev/merkle's verifier tests (wrong index, wrong height, wrong leaf or root).
      const others: Array<[string, boolean]> = [
        ['wrong leaf', verifyInclusion(leaves[(index + 1) % 64]!, index, size, proof, root)],
        ['index - 1', index > 0 && verifyInclusion(leaf, index - 1, size, proof, root)],
        ['index + 1', verifyInclusion(leaf, index + 1, size, proof, root)],
        ['index ^ 2', verifyInclusion(leaf, index ^ 2, size, proof, root)],
        ['size * 2', verifyInclusion(leaf, index, size * 2, proof, root)],
        ['size / 2', verifyInclusion(leaf, index, Math.floor(size / 2), proof, root)],
        ['empty root', verifyInclusion(leaf, index, size, proof, EMPTY_ROOT)],
        ['empty leaf', verifyInclusion(EMPTY_ROOT, index, size, proof, root)],
        ['size as index', verifyInclusion(leaf, size, size, proof, root)],
      ];
      for (const [what, accepted] of others) if (accepted) bad.push(`${what} ${index}/${size}`);
    }
  }
  t.same(bad, []);
});

t.test('consistency: every (size1, size2) up to 64 verifies, every corruption fails', async (t) => {
  const leaves = testLeaves(64);
  const roots = Array.from({ length: 65 }, (_, n) => refRoot(leaves.slice(0, n)));
  const bad: string[] = [];
  for (let size2 = 0; size2 <= 64; size2++) {
    for (let size1 = 0; size1 <= size2; size1++) {
      const proof = size1 === 0 || size1 === size2 ? [] : refProof(size1, leaves.slice(0, size2));
      const [r1, r2] = [roots[size1]!, roots[size2]!];
      if (!verifyConsistency(size1, size2, proof, r1, r2)) bad.push(`valid ${size1}/${size2}`);
      if (size1 === 0) continue;
      for (const [what, p] of corruptions(proof)) {
        if (verifyConsistency(size1, size2, p, r1, r2)) bad.push(`${what} ${size1}/${size2}`);
      }
      if (size1 === size2) continue;
      const others: Array<[string, boolean]> = [
        ['root1 of another size', verifyConsistency(size1, size2, proof, roots[size1 - 1]!, r2)],
        ['root2 of another size', verifyConsistency(size1, size2, proof, r1, roots[size2 - 1]!)],
        ['roots swapped', verifyConsistency(size1, size2, proof, r2, r1)],
        ['sizes swapped', verifyConsistency(size2, size1, proof, r2, r1)],
        ['empty root1', verifyConsistency(size1, size2, proof, EMPTY_ROOT, r2)],
        ['empty root2', verifyConsistency(size1, size2, proof, r1, EMPTY_ROOT)],
        ['size2 * 2', verifyConsistency(size1, size2 * 2, proof, r1, r2)],
        ['size1 / 2', size1 > 1 && verifyConsistency(Math.floor(size1 / 2), size2, proof, r1, r2)],
      ];
      for (const [what, accepted] of others) if (accepted) bad.push(`${what} ${size1}/${size2}`);
    }
  }
  t.same(bad, []);
});

t.test('verifiers return false, never throw, on malformed input', async (t) => {
  const leaves = testLeaves(5);
  const root = refRoot(leaves);
  const proof = refPath(2, leaves);
  const junk: unknown[] = [undefined, null, -1, 1.5, NaN, Infinity, '2', 2 ** 53, {}, [], 'x', [null], [new Uint8Array(31)]];
  const calls: Array<() => boolean> = [];
  for (const j of junk) {
    const a = j as never;
    calls.push(
      () => verifyInclusion(a, 2, 5, proof, root),
      () => verifyInclusion(leaves[2]!, a, 5, proof, root),
      () => verifyInclusion(leaves[2]!, 2, a, proof, root),
      () => verifyInclusion(leaves[2]!, 2, 5, a, root),
      () => verifyInclusion(leaves[2]!, 2, 5, proof, a),
      () => verifyConsistency(a, 5, proof, root, root),
      () => verifyConsistency(3, a, proof, root, root),
      () => verifyConsistency(3, 5, a, root, root),
      () => verifyConsistency(3, 5, proof, a, root),
      () => verifyConsistency(3, 5, proof, root, a),
    );
  }
  const results = calls.map((call) => {
    try {
      return call();
    } catch (error) {
      return `threw ${String(error)}`;
    }
  });
  t.same(results.filter((r) => r !== false), []);
  t.equal(verifyInclusion(leaves[2]!, 2, 5, proof, root), true, 'the undamaged call still verifies');
});

t.test('edge cases follow the CT reference verifiers', async (t) => {
  const leaves = testLeaves(3);
  const r1 = refRoot(leaves.slice(0, 1));
  const r3 = refRoot(leaves);
  t.equal(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT), true, 'empty to empty');
  t.equal(verifyConsistency(0, 3, [], EMPTY_ROOT, r3), true, 'every tree extends the empty one');
  t.equal(verifyConsistency(0, 3, [r1], EMPTY_ROOT, r3), false, 'but only with an empty proof');
  t.equal(verifyConsistency(3, 3, [], r3, r3), true, 'same tree');
  t.equal(verifyConsistency(3, 3, [], r3, r1), false, 'same size, different roots');
  t.equal(verifyConsistency(3, 3, [r1], r3, r3), false, 'same size needs an empty proof');
  t.equal(verifyConsistency(1, 3, [], r1, r3), false, 'empty proof between different sizes');
  t.equal(verifyInclusion(leaves[0]!, 0, 1, [], r1), true, 'single leaf is its own root');
  t.equal(verifyInclusion(leaves[0]!, 0, 0, [], EMPTY_ROOT), false, 'nothing is in the empty tree');
});

t.test('random larger trees', async (t) => {
  const leaves = testLeaves(700, 'big');
  const bad: string[] = [];
  let seed = 7;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let round = 0; round < 25; round++) {
    const size = 65 + rand(636);
    const index = rand(size);
    const prefix = leaves.slice(0, size);
    const root = refRoot(prefix);
    const path = refPath(index, prefix);
    if (!verifyInclusion(leaves[index]!, index, size, path, root)) bad.push(`inclusion ${index}/${size}`);
    if (verifyInclusion(leaves[index]!, index, size, path.slice(0, -1), root)) bad.push(`short inclusion ${index}/${size}`);
    const size1 = 1 + rand(size - 1);
    const proof = refProof(size1, prefix);
    const root1 = refRoot(leaves.slice(0, size1));
    if (!verifyConsistency(size1, size, proof, root1, root)) bad.push(`consistency ${size1}/${size}`);
    if (verifyConsistency(size1, size, [...proof, proof[0]!], root1, root)) bad.push(`long consistency ${size1}/${size}`);
  }
  t.same(bad, []);
});
