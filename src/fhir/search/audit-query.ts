/**
 * How a search query is written into the ledger without plaintext PHI (docs/ledger.md, "Searches"). Parameter
 * names (with modifiers and chains) stay in clear: they say what kind of search it was and hold no PHI. Every
 * value of a filter parameter (`name=Smith`, `identifier=…|MRN-42`, `patient=123`) is replaced by `h:` and the
 * HMAC-SHA-256 of its UTF-8 bytes under the node's content-hash key: the node (or an auditor it lets verify) can
 * confirm that a given query was run; nobody without the key can guess names or identifiers back from the log.
 * Result parameters (`_count`, `_sort`, `_include`, …) carry no PHI and stay in clear. Pure.
 */

const CLEAR = new Set(['_count', '_sort', '_include', '_revinclude', '_include:iterate', '_revinclude:iterate', '_summary', '_elements', '_total', '_format', '_pretty', '_type']);

export function protectQuery(query: Record<string, string[]>, hash: (bytes: Uint8Array) => string): string {
  const encoder = new TextEncoder();
  const parts: string[] = [];
  for (const name of Object.keys(query).sort()) {
    if (name === '_page') continue; // a cursor: opaque and derived from the query it continues
    for (const value of query[name]!) {
      const shown = CLEAR.has(name) ? value : `h:${hash(encoder.encode(value))}`;
      parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(shown)}`);
    }
  }
  return parts.join('&');
}
