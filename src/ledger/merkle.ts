/**
 * The Merkle tree hash of RFC 9162 §2.1 (https://www.rfc-editor.org/rfc/rfc9162#section-2.1) and the two proof
 * verifiers of §2.1.3.2 and §2.1.4.2. Pure: no I/O, no state. Tree sizes and indexes are plain numbers (exact up
 * to 2^53); every verifier answers false for anything malformed instead of throwing.
 */
import { sha256 } from '../storage/sha256.ts';

export type Hash = Uint8Array;
export const HASH_SIZE = 32;

/** MTH({}) = SHA-256() — the root of the empty tree. */
export const EMPTY_ROOT: Hash = sha256(new Uint8Array(0));

/** MTH({d}) = SHA-256(0x00 ‖ d). */
export function leafHash(data: Uint8Array): Hash {
  // allocUnsafe draws small buffers from Node's pool: measurably faster than a fresh Uint8Array per hash.
  const buf = Buffer.allocUnsafe(1 + data.length);
  buf[0] = 0x00;
  buf.set(data, 1);
  return sha256(buf);
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  const buf = Buffer.allocUnsafe(1 + left.length + right.length);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return sha256(buf);
}

/** The k of RFC 9162's split: the largest power of two smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function isSize(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function isHashList(proof: unknown): proof is Hash[] {
  return Array.isArray(proof) && proof.every((p) => p instanceof Uint8Array && p.length === HASH_SIZE);
}

function isBytes(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array;
}

// Halving instead of `>> 1`: JS shifts are 32-bit and tree sizes are not.
const half = (n: number): number => Math.floor(n / 2);
const odd = (n: number): boolean => n % 2 === 1;

/**
 * RFC 9162 §2.1.3.2: does `proof` show that the leaf with hash `leaf` sits at `index` in the tree of `size`
 * leaves whose root is `root`?
 */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): boolean {
  if (!isSize(index) || !isSize(size) || index >= size) return false;
  if (!isBytes(leaf) || !isBytes(root) || !isHashList(proof)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hashesEqual(r, root);
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of `size1` leaves with root `root1` is a prefix of the tree
 * of `size2` leaves with root `root2`? As in the CT reference verifiers (transparency-dev/merkle), equal sizes
 * need an empty proof and equal roots, and every tree extends the empty one (size1 = 0) with an empty proof.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Hash[],
  root1: Hash,
  root2: Hash,
): boolean {
  if (!isSize(size1) || !isSize(size2) || size1 > size2) return false;
  if (!isBytes(root1) || !isBytes(root2) || !isHashList(proof)) return false;
  if (size1 === size2) return proof.length === 0 && hashesEqual(root1, root2);
  if (size1 === 0) return proof.length === 0;
  if (proof.length === 0) return false;

  // Step 2: a first tree that is a complete subtree is its own starting point.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hashesEqual(fr, root1) && hashesEqual(sr, root2);
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && !odd(n)) n = half(n);
  return n === 1;
}
