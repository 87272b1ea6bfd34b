/**
 * Incremental storage of the RFC 9162 tree in the stored-hash layout of Go's golang.org/x/mod/sumdb/tlog (after
 * Crosby and Wallach, "Efficient Data Structures for Tamper-Evident Logging", §3.3): every complete subtree hash
 * gets one dense index, written once by the append that completes it, so an append stores 1 + (trailing ones of
 * n) hashes and the indexes grow contiguously from 0. Roots and proofs are assembled from O(log n) stored hashes,
 * fetched through a HashReader (the only I/O, passed in).
 *
 * Proofs are described first as the RFC's list of subtree ranges D[lo:hi] (PATH of §2.1.3.1, SUBPROOF of
 * §2.1.4.1); each range's hash is then folded from the complete subtrees that tile it.
 */
import { errors } from '../errors.ts';
import { EMPTY_ROOT, HASH_SIZE, nodeHash, splitPoint, type Hash } from './merkle.ts';

/** Reads stored hashes by stored-hash index, in one batch; returns them in the order asked. */
export type HashReader = (indexes: readonly number[]) => Promise<Hash[]>;

/** An [index, hash] pair to store. */
export type StoredHash = [index: number, hash: Hash];

type Range = [lo: number, hi: number];

const pow2 = (level: number): number => 2 ** level;

/** Go's StoredHashIndex: the dense index of the hash of subtree n at `level` (leaves n·2^level ..). */
export function storedHashIndex(level: number, n: number): number {
  for (let l = level; l > 0; l--) n = 2 * n + 1;
  let i = 0;
  for (; n > 0; n = Math.floor(n / 2)) i += n;
  return i + level;
}

/** Go's SplitStoredHashIndex, the inverse of storedHashIndex. */
export function splitStoredHashIndex(index: number): { level: number; n: number } {
  let n = Math.floor(index / 2);
  let indexN = storedHashIndex(0, n);
  for (;;) {
    const x = indexN + 1 + trailingOnes(n);
    if (x > index) break;
    n++;
    indexN = x;
  }
  const level = index - indexN;
  return { level, n: Math.floor(n / pow2(level)) };
}

/** How many hashes a tree of `size` leaves has stored (indexes 0 .. count-1). */
export function storedHashCount(size: number): number {
  if (size === 0) return 0;
  return storedHashIndex(0, size - 1) + 1 + trailingOnes(size - 1);
}

export function trailingOnes(n: number): number {
  let m = 0;
  for (; n % 2 === 1; n = Math.floor(n / 2)) m++;
  return m;
}

/** Index of the leaf whose append wrote stored hash `index` (the last leaf of that subtree). */
export function appendOfStoredHash(index: number): number {
  const { level, n } = splitStoredHashIndex(index);
  return (n + 1) * pow2(level) - 1;
}

/** The complete subtrees tiling D[lo:hi], largest first, as [level, n]. */
function tiles(lo: number, hi: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  while (lo < hi) {
    let level = 0;
    while (pow2(level + 1) <= hi - lo) level++;
    out.push([level, lo / pow2(level)]);
    lo += pow2(level);
  }
  return out;
}

/** Stored-hash indexes of the right frontier of a tree of `size` leaves: its complete subtrees, left to right. */
export function frontierIndexes(size: number): number[] {
  return tiles(0, size).map(([level, n]) => storedHashIndex(level, n));
}

/** The root of the tree whose frontier (complete subtree hashes, left to right) is given. */
export function rootFromFrontier(frontier: readonly Hash[]): Hash {
  if (frontier.length === 0) return EMPTY_ROOT;
  let h = frontier[frontier.length - 1]!;
  for (let i = frontier.length - 2; i >= 0; i--) h = nodeHash(frontier[i]!, h);
  return h;
}

/**
 * Appends leaf `n` (the tree has n leaves before) to `frontier` in place and returns the hashes this append
 * completes, to be stored: the leaf itself, then one node per trailing one bit of n.
 */
export function appendLeaf(frontier: Hash[], n: number, leaf: Hash): StoredHash[] {
  const stored: StoredHash[] = [[storedHashIndex(0, n), leaf]];
  let h = leaf;
  const m = trailingOnes(n);
  for (let i = 0; i < m; i++) {
    const left = frontier.pop();
    if (left === undefined) throw errors.internal(`Frontier too short for leaf ${n}`, 'ERR_LEDGER_CORRUPT');
    h = nodeHash(left, h);
    stored.push([storedHashIndex(i + 1, Math.floor(n / pow2(i + 1))), h]);
  }
  frontier.push(h);
  return stored;
}

/** Go's StoredHashesForRecordHash: the same pairs as appendLeaf, read from storage instead of a frontier. */
export async function storedHashesForLeaf(n: number, leaf: Hash, read: HashReader): Promise<StoredHash[]> {
  const m = trailingOnes(n);
  const indexes: number[] = [];
  for (let i = m - 1; i >= 0; i--) indexes.push(storedHashIndex(i, Math.floor(n / pow2(i)) - 1));
  const old = await readExactly(read, indexes);
  const stored: StoredHash[] = [[storedHashIndex(0, n), leaf]];
  let h = leaf;
  for (let i = 0; i < m; i++) {
    h = nodeHash(old[m - 1 - i]!, h);
    stored.push([storedHashIndex(i + 1, Math.floor(n / pow2(i + 1))), h]);
  }
  return stored;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]) as subtree ranges, deepest first. */
function inclusionRanges(m: number, lo: number, hi: number, out: Range[]): Range[] {
  if (hi - lo <= 1) return out;
  const k = splitPoint(hi - lo);
  if (m < lo + k) {
    inclusionRanges(m, lo, lo + k, out);
    out.push([lo + k, hi]);
  } else {
    inclusionRanges(m, lo + k, hi, out);
    out.push([lo, lo + k]);
  }
  return out;
}

/** RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], b) as subtree ranges, deepest first. */
function consistencyRanges(m: number, lo: number, hi: number, b: boolean, out: Range[]): Range[] {
  if (m === hi) {
    if (!b) out.push([lo, hi]);
    return out;
  }
  const k = splitPoint(hi - lo);
  if (m <= lo + k) {
    consistencyRanges(m, lo, lo + k, b, out);
    out.push([lo + k, hi]);
  } else {
    consistencyRanges(m, lo + k, hi, false, out);
    out.push([lo, lo + k]);
  }
  return out;
}

/** MTH of each range, with one batched read of all the stored hashes involved. */
async function rangeHashes(ranges: readonly Range[], read: HashReader): Promise<Hash[]> {
  const tiling = ranges.map(([lo, hi]) => tiles(lo, hi).map(([level, n]) => storedHashIndex(level, n)));
  const hashes = await readExactly(read, tiling.flat());
  let at = 0;
  return tiling.map((indexes) => {
    const part = hashes.slice(at, at + indexes.length);
    at += indexes.length;
    return rootFromFrontier(part);
  });
}

async function readExactly(read: HashReader, indexes: readonly number[]): Promise<Hash[]> {
  if (indexes.length === 0) return [];
  const hashes = await read(indexes);
  if (hashes.length !== indexes.length || hashes.some((h) => !(h instanceof Uint8Array) || h.length !== HASH_SIZE)) {
    throw errors.internal('Stored Merkle hashes are missing or malformed', 'ERR_LEDGER_CORRUPT');
  }
  return hashes;
}

function checkSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw errors.badRequest(`${name} must be a non-negative integer`, undefined, 'ERR_LEDGER_RANGE');
}

/** MTH(D[0:size]) from stored hashes: at most log2(size) + 1 reads, in one batch. */
export async function treeHash(size: number, read: HashReader): Promise<Hash> {
  checkSize('size', size);
  if (size === 0) return EMPTY_ROOT;
  const [root] = await rangeHashes([[0, size]], read);
  return root!;
}

/** RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves. */
export async function inclusionProof(index: number, size: number, read: HashReader): Promise<Hash[]> {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw errors.badRequest(`index ${index} is not below size ${size}`, undefined, 'ERR_LEDGER_RANGE');
  return rangeHashes(inclusionRanges(index, 0, size, []), read);
}

/** RFC 9162 §2.1.4.1 consistency proof between the trees of `size1` and `size2` leaves (empty if size1 is 0 or size2). */
export async function consistencyProof(size1: number, size2: number, read: HashReader): Promise<Hash[]> {
  checkSize('size1', size1);
  checkSize('size2', size2);
  if (size1 > size2) throw errors.badRequest(`size1 ${size1} exceeds size2 ${size2}`, undefined, 'ERR_LEDGER_RANGE');
  if (size1 === 0 || size1 === size2) return [];
  return rangeHashes(consistencyRanges(size1, 0, size2, true, []), read);
}
