/**
 * Whether one resource that is not stored yet passes a parsed search, from its plaintext index entries
 * (extract.ts extractEntries) alone: the same tests the engine applies to a decrypted candidate (engine.ts
 * `passes`), without the index. A transaction uses it so that its conditions and conditional references also see
 * the resources it is about to write. Pure.
 */
import { presenceCodes, type IndexEntry } from './extract.ts';
import type { Filter } from './params.ts';

/**
 * Whether a value filter holds on a resource's plaintext entries (some condition holds on some value of its code;
 * with `negate`, none does). The engine decides a decrypted candidate with it too.
 */
export function passesOnEntries(f: Extract<Filter, { kind: 'match' | 'residual' }>, entries: readonly IndexEntry[]): boolean {
  const values = entries.filter((e) => f.conditions.some((c) => c.code === e.code)).map((e) => e.value);
  return f.conditions.some((c) => values.some((v) => (c.plain ?? c.test)(v))) !== f.negate;
}

/**
 * true or false when the filters can be decided on the entries; undefined when one cannot (a chain or `_has`
 * needs other resources, which only the stored index has).
 */
export function matchesEntries(filters: readonly Filter[], entries: readonly IndexEntry[]): boolean | undefined {
  let decided = true;
  for (const f of filters) {
    switch (f.kind) {
      case 'match':
      case 'residual':
        if (!passesOnEntries(f, entries)) return false;
        break;
      case 'missing': {
        const codes = presenceCodes(f.code);
        const present = entries.some((e) => codes.includes(e.code));
        if (present === f.missing) return false;
        break;
      }
      case 'chain':
      case 'has':
        decided = false;
        break;
    }
  }
  return decided ? true : undefined;
}
