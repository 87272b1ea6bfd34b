import { LRUCache } from 'lru-cache';

/**
 * Decrypted resource versions kept in memory, least recently used dropped first, bounded in bytes. Keyed by the
 * version's full sealed address (type/id/version, CID, wrapped key): a version never changes, so an entry can never
 * be stale. Plaintext stays inside the process (the rule is that PHI leaves it only encrypted); erasure drops every
 * entry under the erased key.
 *
 * lru-cache rather than a Map re-inserted on each hit: V8's Map makes `delete` + `set` of the same key cost O(size)
 * (measured 27 µs at 10,000 entries), so one hot resource made every read of a full cache pay it.
 */
export class PlaintextCache {
  readonly #entries: LRUCache<string, { kek: string; bytes: Uint8Array }>;
  /** One version may take at most an eighth of the cache, so a few large ones cannot flush the rest. */
  readonly #maxEntryBytes: number;

  constructor(maxBytes: number) {
    this.#maxEntryBytes = Math.floor(maxBytes / 8);
    this.#entries = new LRUCache({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (entry) => Math.max(1, entry.bytes.byteLength),
    });
  }

  get(key: string): Uint8Array | undefined {
    return this.#entries.get(key)?.bytes;
  }

  set(key: string, kek: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.#maxEntryBytes || this.#entries.has(key)) return;
    this.#entries.set(key, { kek, bytes });
  }

  /** Drops every version protected by this key (erasure). */
  forget(kek: string): void {
    const doomed: string[] = [];
    for (const [key, entry] of this.#entries.entries()) if (entry.kek === kek) doomed.push(key);
    for (const key of doomed) this.#entries.delete(key);
  }

  get bytes(): number {
    return this.#entries.calculatedSize;
  }
}
