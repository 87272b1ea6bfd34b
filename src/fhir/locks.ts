/**
 * Keyed async locks: writes to one resource are serialized from reading its version head to the durable commit,
 * so two concurrent updates can never both become version n+1. Keys are always taken in sorted order, which
 * rules out deadlock between requests that lock several resources (transactions).
 */
export class KeyedLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits for every key (in sorted order) and returns the function that releases them all. */
  async acquire(keys: Iterable<string>): Promise<() => void> {
    const sorted = [...new Set(keys)].sort();
    const releases: Array<() => void> = [];
    for (const key of sorted) releases.push(await this.acquireOne(key));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const release of releases) release();
    };
  }

  private async acquireOne(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      // Drop the entry once nobody queued behind us, so the map does not grow with every resource ever written.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
