/**
 * Decrypted resource versions kept in memory, least recently used dropped first, bounded in bytes. Keyed by the
 * version's full sealed address (type/id/version, CID, wrapped key): a version never changes, so an entry can never
 * be stale. Plaintext stays inside the
 * process (the rule is that PHI leaves it only encrypted); erasure drops every entry under the erased key.
 */
export class PlaintextCache {
  private readonly entries = new Map<string, { kek: string; bytes: Uint8Array }>();
  private size = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get(key: string): Uint8Array | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // Re-insert: Map iteration order is insertion order, so the first key is always the least recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.bytes;
  }

  set(key: string, kek: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.maxBytes / 8 || this.entries.has(key)) return;
    this.entries.set(key, { kek, bytes });
    this.size += bytes.byteLength;
    for (const [oldest, entry] of this.entries) {
      if (this.size <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.size -= entry.bytes.byteLength;
    }
  }

  /** Drops every version protected by this key (erasure). */
  forget(kek: string): void {
    for (const [key, entry] of this.entries) {
      if (entry.kek !== kek) continue;
      this.entries.delete(key);
      this.size -= entry.bytes.byteLength;
    }
  }

  get bytes(): number {
    return this.size;
  }
}
