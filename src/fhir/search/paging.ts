/**
 * Sort keys and cursors for search paging. A page link carries the point in time of the first page (a ledger
 * index: resources created after it stay out of every later page) and the (sort keys, id) of the row the page
 * continues after or before, so creates and deletes between pages neither shift nor repeat rows (an update that
 * moves a row's sort value across that point can: README, Known gaps). Pure: no I/O.
 */
import { errors } from '../../errors.ts';
import { splitKeepingEscapes, unescapeValue } from './encode.ts';
import type { SortKey } from './params.ts';

export type KeyValue = string | null;

export interface Row {
  id: string;
  /** Resource type (system-level search mixes types). */
  type: string;
  keys: KeyValue[];
}

export interface Cursor {
  /** Ledger index of the first page's point in time. */
  s: number;
  /** Continue after (`a`) or before (`b`) the row with these keys. */
  d: 'a' | 'b';
  k: KeyValue[];
  t: string;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

export function decodeCursor(token: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Cursor;
    const ok =
      Number.isInteger(c.s) && (c.d === 'a' || c.d === 'b') && Array.isArray(c.k) && typeof c.id === 'string' && typeof c.t === 'string' &&
      c.k.every((k) => k === null || typeof k === 'string');
    if (ok) return c;
  } catch {
    // fall through
  }
  throw errors.badRequest(`_page '${token.slice(0, 40)}' is not a cursor this server issued`, ['_page'], 'ERR_INVALID_CURSOR');
}

/**
 * The key one resource sorts by, from its index values for the parameter: dates by the start of their earliest
 * range ascending and the end of their latest descending (R4: "the lowest/highest value"), strings normalized
 * (plaintext, from the decrypted resource).
 */
export function sortKeyOf(key: SortKey, values: string[]): KeyValue {
  if (key.type === 'id') return values[0] ?? null;
  let candidates = values;
  // date values are `low~high` (ascending reads `<code>`) or `high~low` (descending reads `<code>:hi`): the first part
  if (key.type === 'date') candidates = values.map((v) => v.slice(0, v.indexOf('~')));
  // token forms escape `|` in codes (extract.ts): a code is a form with no unescaped `|`
  if (key.type === 'token') candidates = values.filter((v) => splitKeepingEscapes(v, '|').length === 1).map(unescapeValue);
  if (key.type === 'quantity') candidates = values.filter((v) => v.startsWith('#')).map((v) => v.slice(1));
  if (candidates.length === 0) return null;
  return candidates.reduce((a, b) => ((key.descending ? b > a : b < a) ? b : a));
}

/** Where a row comes among those of equal keys: lower first; rows of equal rank by type name, then id. */
export type RowRank = (type: string, id: string) => number;

/** Rows compare by their keys (missing values last in either direction), then their rank, type name and id. */
export function compareRows(sort: SortKey[], a: Pick<Row, 'keys' | 'type' | 'id'>, b: Pick<Row, 'keys' | 'type' | 'id'>, rowRank?: RowRank): number {
  for (let i = 0; i < sort.length; i++) {
    const x = a.keys[i] ?? null;
    const y = b.keys[i] ?? null;
    if (x === y) continue;
    if (x === null) return 1;
    if (y === null) return -1;
    const c = x < y ? -1 : 1;
    return sort[i]!.descending ? -c : c;
  }
  const rank = rowRank ? rowRank(a.type, a.id) - rowRank(b.type, b.id) : 0;
  if (rank !== 0) return rank;
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export interface PageSlice<R extends Row> {
  rows: R[];
  /** The rows before and after this page exist. */
  hasPrevious: boolean;
  hasNext: boolean;
}

/** Cuts one page out of the sorted rows, after or before the cursor's row (which need not exist any more). */
export function slicePage<R extends Row>(sorted: R[], sort: SortKey[], count: number, cursor: Cursor | undefined, rowRank?: RowRank): PageSlice<R> {
  let start = 0;
  let end = Math.min(count, sorted.length);
  if (cursor) {
    const pivot = { keys: cursor.k, type: cursor.t, id: cursor.id };
    // first row strictly after the pivot
    let lo = 0;
    let hi = sorted.length;
    const strictlyAfter = cursor.d === 'a';
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = compareRows(sort, sorted[mid]!, pivot, rowRank);
      if (c < 0 || (c === 0 && strictlyAfter)) lo = mid + 1;
      else hi = mid;
    }
    if (cursor.d === 'a') {
      start = lo;
      end = Math.min(lo + count, sorted.length);
    } else {
      end = lo;
      start = Math.max(0, lo - count);
    }
  }
  return { rows: sorted.slice(start, end), hasPrevious: start > 0, hasNext: end < sorted.length };
}
