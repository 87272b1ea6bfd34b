/**
 * The search index's format version. The index is derived data whose keys depend on how values are normalized,
 * escaped and hashed (extract.ts, encode.ts, index-store.ts); an index written under other rules does not fail,
 * it answers searches wrongly. So each store records the format its index was built with, and the server refuses
 * a store whose index was built under other rules until `npm run reindex` rebuilds it, which records the current
 * format in the same synced batch as its ledger entry.
 *
 * Bump SEARCH_INDEX_FORMAT with every change to what the index stores for a resource, and list it in
 * docs/storage.md ("Search index format").
 */
import { jsonSublevel, SUBLEVELS, type BatchOp, type Database } from '../../storage/db.ts';

/**
 * 1: stores written before the format was recorded (no marker: every store up to 783fe42).
 * 2: long values hashed whole, `\|` `\$` escaped in token forms (e3737e1, 559f604), and the marker itself.
 */
export const SEARCH_INDEX_FORMAT = 2;
const FORMAT_KEY = 'format';

export type IndexFormatState =
  /** The index was built under the current rules. */
  | { state: 'current' }
  /** No resource stored yet: whatever is written from now on is current. */
  | { state: 'empty' }
  /** Built under other rules (older, or a newer server's): `found` is the recorded format, 1 when none was. */
  | { state: 'other'; found: number };

export async function indexFormatState(db: Database): Promise<IndexFormatState> {
  const found = await jsonSublevel<unknown>(db, SUBLEVELS.searchMeta).get(FORMAT_KEY);
  if (found === SEARCH_INDEX_FORMAT) return { state: 'current' };
  if (found === undefined) {
    const [head] = await db.sublevel(SUBLEVELS.head).keys({ limit: 1 }).all();
    if (head === undefined) return { state: 'empty' };
  }
  return { state: 'other', found: typeof found === 'number' ? found : 1 };
}

/** The batch op that records the current format (reindex writes it with its ledger entry). */
export function indexFormatOp(db: Database): BatchOp {
  return { type: 'put', sublevel: jsonSublevel(db, SUBLEVELS.searchMeta), key: FORMAT_KEY, value: SEARCH_INDEX_FORMAT };
}

/** The operator's instruction for a store built under other rules. */
export function staleIndexMessage(found: number): string {
  const which = found < SEARCH_INDEX_FORMAT ? 'an older server' : 'a newer server';
  return `The search index in this data dir was built by ${which} (index format ${found}, this server writes ${SEARCH_INDEX_FORMAT}), ` +
    `so searches would answer wrongly: stop the server and run \`npm run reindex\` once (docs/storage.md, "Search index format")`;
}
