/**
 * The RFC 9162 proof verifiers of src/ledger/merkle.ts against generated trees: every true proof verifies, every
 * mutated proof, leaf, root or size is judged exactly as an independent verifier written from the RFC's recursive
 * definitions judges it, and garbage of any shape is answered false without a throw.
 *
 * "Exactly as the oracle" rather than "always rejected" for sizes: a proof binds the tree size only through the
 * root, so a size whose proof has the same shape (index 0 of 3 and of 4 leaves both combine [l, p0, p1] the same
 * way) verifies against the same root, in this code as in every CT verifier. Proof bytes, leaves and roots have no
 * such freedom: any change there must be rejected.
 */
import t from 'tap';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { verifyConsistency, verifyInclusion, type Hash } from '../../src/ledger/merkle.ts';
import { refPath, refProof, refRoot, testLeaves } from '../ledger/fixtures/reference.ts';
import { holds } from './fixtures/runs.ts';

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const node = (l: Uint8Array, r: Uint8Array) => sha(Uint8Array.of(1), l, r);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const split = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

/** Which side each PATH(m, D[n]) element joins on, from RFC 9162 §2.1.3.1's recursion. */
function pathSides(m: number, n: number): Array<'left' | 'right'> {
  if (n <= 1) return [];
  const k = split(n);
  return m < k ? [...pathSides(m, k), 'right'] : [...pathSides(m - k, n - k), 'left'];
}

function oracleInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  const sides = pathSides(index, size);
  if (proof.length !== sides.length || proof.some((p) => p.length !== 32)) return false;
  let r = leaf;
  sides.forEach((side, i) => (r = side === 'right' ? node(r, proof[i]!) : node(proof[i]!, r)));
  return same(r, root);
}

type Expr = { proof: number } | 'root1' | { left: Expr; right: Expr };

/** SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1 as expressions of the old and new roots over the proof's elements. */
function subproof(m: number, n: number, b: boolean, next: { i: number }): { old: Expr; new: Expr } {
  if (m === n) {
    if (b) return { old: 'root1', new: 'root1' };
    const e = { proof: next.i++ };
    return { old: e, new: e };
  }
  const k = split(n);
  if (m <= k) {
    const sub = subproof(m, k, b, next);
    return { old: sub.old, new: { left: sub.new, right: { proof: next.i++ } } };
  }
  const sub = subproof(m - k, n - k, false, next);
  const p = { proof: next.i++ };
  return { old: { left: p, right: sub.old }, new: { left: p, right: sub.new } };
}

function oracleConsistency(size1: number, size2: number, proof: readonly Hash[], root1: Hash, root2: Hash): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && same(root1, root2);
  if (size1 === 0) return proof.length === 0;
  const next = { i: 0 };
  const exprs = subproof(size1, size2, true, next);
  if (proof.length !== next.i || proof.some((p) => p.length !== 32)) return false;
  const evaluate = (e: Expr): Uint8Array => (e === 'root1' ? root1 : 'proof' in e ? proof[e.proof]! : node(evaluate(e.left), evaluate(e.right)));
  return same(evaluate(exprs.old), root1) && same(evaluate(exprs.new), root2);
}

/** A tree of 1…70 distinct leaves (a fresh tag per case, so trees differ between runs). */
const tree = fc.tuple(fc.integer({ min: 1, max: 70 }), fc.string({ maxLength: 6 })).map(([n, tag]) => testLeaves(n, `fuzz-${tag}`));

function flipByte(bytes: Uint8Array, at: number, xor: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[at % copy.length] ^= xor;
  return copy;
}

const xorByte = fc.integer({ min: 1, max: 255 });

t.test('the oracle agrees with the RFC reference proofs it is checked against', async (t) => {
  const leaves = testLeaves(13, 'oracle');
  for (let n = 1; n <= 13; n++) {
    for (let m = 0; m < n; m++) t.ok(oracleInclusion(leaves[m]!, m, n, refPath(m, leaves.slice(0, n)), refRoot(leaves.slice(0, n))), `incl ${m}/${n}`);
    for (let m = 1; m < n; m++) t.ok(oracleConsistency(m, n, refProof(m, leaves.slice(0, n)), refRoot(leaves.slice(0, m)), refRoot(leaves.slice(0, n))), `cons ${m}/${n}`);
  }
  // The size ambiguity the header comment describes, in both verifiers.
  const four = leaves.slice(0, 4);
  t.ok(verifyInclusion(four[0]!, 0, 4, refPath(0, four.slice(0, 3)), refRoot(four.slice(0, 3))));
  t.ok(oracleInclusion(four[0]!, 0, 4, refPath(0, four.slice(0, 3)), refRoot(four.slice(0, 3))));
});

t.test('inclusion: true proofs verify; mutated leaf, root or proof bytes never do; sizes and indexes as the oracle says', async (t) => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('leaf' as const), at: fc.nat(), xor: xorByte }),
    fc.record({ kind: fc.constant('root' as const), at: fc.nat(), xor: xorByte }),
    fc.record({ kind: fc.constant('proof' as const), which: fc.nat(), at: fc.nat(), xor: xorByte }),
    fc.record({ kind: fc.constant('drop' as const), which: fc.nat() }),
    fc.record({ kind: fc.constant('extra' as const), which: fc.nat() }),
    fc.record({ kind: fc.constant('index' as const), to: fc.integer({ min: -2, max: 80 }) }),
    fc.record({ kind: fc.constant('size' as const), to: fc.integer({ min: -2, max: 140 }) }),
  );
  await holds(
    t,
    fc.property(tree, fc.nat(), mutation, (leaves, pick, mut) => {
      const n = leaves.length;
      const i = pick % n;
      const leaf = leaves[i]!;
      const proof = refPath(i, leaves);
      const root = refRoot(leaves);
      if (!verifyInclusion(leaf, i, n, proof, root)) return false;
      switch (mut.kind) {
        case 'leaf':
          return !verifyInclusion(flipByte(leaf, mut.at, mut.xor), i, n, proof, root);
        case 'root':
          return !verifyInclusion(leaf, i, n, proof, flipByte(root, mut.at, mut.xor));
        case 'proof': {
          if (proof.length === 0) return true;
          const bad = proof.map((p, j) => (j === mut.which % proof.length ? flipByte(p, mut.at, mut.xor) : p));
          return !verifyInclusion(leaf, i, n, bad, root);
        }
        case 'drop': {
          if (proof.length === 0) return true;
          const bad = proof.filter((_, j) => j !== mut.which % proof.length);
          return !verifyInclusion(leaf, i, n, bad, root);
        }
        case 'extra': {
          const bad = [...proof];
          bad.splice(mut.which % (proof.length + 1), 0, leaves[mut.which % n]!);
          return !verifyInclusion(leaf, i, n, bad, root);
        }
        case 'index':
          if (mut.to === i) return true;
          return verifyInclusion(leaf, mut.to, n, proof, root) === oracleInclusion(leaf, mut.to, n, proof, root) && !verifyInclusion(leaf, mut.to, n, proof, root);
        case 'size':
          return verifyInclusion(leaf, i, mut.to, proof, root) === oracleInclusion(leaf, i, mut.to, proof, root);
      }
    }),
    300,
  );
});

t.test('consistency: true proofs verify; mutated roots or proof bytes never do; sizes as the oracle says', async (t) => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('root1' as const), at: fc.nat(), xor: xorByte }),
    fc.record({ kind: fc.constant('root2' as const), at: fc.nat(), xor: xorByte }),
    fc.record({ kind: fc.constant('proof' as const), which: fc.nat(), at: fc.nat(), xor: xorByte }),
    fc.record({ kind: fc.constant('drop' as const), which: fc.nat() }),
    fc.record({ kind: fc.constant('extra' as const), which: fc.nat() }),
    fc.record({ kind: fc.constant('size1' as const), to: fc.integer({ min: -2, max: 80 }) }),
    fc.record({ kind: fc.constant('size2' as const), to: fc.integer({ min: -2, max: 140 }) }),
  );
  await holds(
    t,
    fc.property(tree, fc.nat(), mutation, (leaves, pick, mut) => {
      const n = leaves.length;
      const m = 1 + (pick % n); // 1…n; size 0 and equal sizes are checked below
      const proof = m === n ? [] : refProof(m, leaves);
      const root1 = refRoot(leaves.slice(0, m));
      const root2 = refRoot(leaves);
      if (!verifyConsistency(m, n, proof, root1, root2)) return false;
      const agrees = (s1: number, s2: number, p: Hash[], r1: Hash, r2: Hash) => verifyConsistency(s1, s2, p, r1, r2) === oracleConsistency(s1, s2, p, r1, r2);
      switch (mut.kind) {
        case 'root1':
          return !verifyConsistency(m, n, proof, flipByte(root1, mut.at, mut.xor), root2);
        case 'root2':
          return !verifyConsistency(m, n, proof, root1, flipByte(root2, mut.at, mut.xor));
        case 'proof': {
          if (proof.length === 0) return true;
          const bad = proof.map((p, j) => (j === mut.which % proof.length ? flipByte(p, mut.at, mut.xor) : p));
          return !verifyConsistency(m, n, bad, root1, root2);
        }
        case 'drop': {
          if (proof.length === 0) return true;
          return !verifyConsistency(m, n, proof.filter((_, j) => j !== mut.which % proof.length), root1, root2);
        }
        case 'extra': {
          const bad = [...proof];
          bad.splice(mut.which % (proof.length + 1), 0, leaves[mut.which % n]!);
          return !verifyConsistency(m, n, bad, root1, root2);
        }
        case 'size1':
          return agrees(mut.to, n, proof, root1, root2);
        case 'size2':
          return agrees(m, mut.to, proof, root1, root2);
      }
    }),
    300,
  );
});

t.test('verifiers answer false, never throw, on garbage of any shape', async (t) => {
  const junk = fc.oneof(
    fc.anything(),
    fc.uint8Array({ maxLength: 40 }),
    fc.double(),
    fc.constantFrom(2 ** 53, 2 ** 60, -1, 1.5, NaN, Infinity, '3', null, undefined),
    fc.array(fc.oneof(fc.uint8Array({ minLength: 31, maxLength: 33 }), fc.anything()), { maxLength: 5 }),
  );
  const size = fc.oneof(fc.nat({ max: 100 }), junk);
  await holds(
    t,
    fc.property(junk, size, size, junk, junk, junk, (a, s1, s2, proof, r1, r2) => {
      // Casts on purpose: the verifiers face bytes from the network, whatever their declared types.
      const inclusion = verifyInclusion(a as Hash, s1 as number, s2 as number, proof as Hash[], r1 as Hash);
      const consistency = verifyConsistency(s1 as number, s2 as number, proof as Hash[], r1 as Hash, r2 as Hash);
      return typeof inclusion === 'boolean' && typeof consistency === 'boolean' && (inclusion === false || a instanceof Uint8Array);
    }),
    500,
  );
});
