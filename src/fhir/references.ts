/**
 * Walks every `Reference.reference` string of a resource body. Transactions rewrite `urn:uuid:` and conditional
 * references with it; tools that load Synthea records (tests, benchmarks) use it to point references at new ids.
 */

/** Visits every `reference` string in place; a defined return value replaces it. */
export function visitReferences(node: unknown, replace: (reference: string) => string | undefined): void {
  if (Array.isArray(node)) {
    for (const item of node) visitReferences(item, replace);
  } else if (node && typeof node === 'object') {
    const record = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(record)) {
      if (key === 'reference' && typeof value === 'string') {
        const target = replace(value);
        if (target !== undefined) record[key] = target;
      } else if (value && typeof value === 'object') {
        visitReferences(value, replace);
      }
    }
  }
}

/** A copy of `resource` with every reference mapped through `resolve`; the input is left untouched. */
export function withReferences<T>(resource: T, resolve: (reference: string) => string): T {
  const copy = structuredClone(resource);
  visitReferences(copy, resolve);
  return copy;
}
