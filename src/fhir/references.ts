/**
 * Walks the strings of a resource body that name other resources. Transactions rewrite `urn:uuid:` and conditional
 * references with it; tools that load Synthea records (tests, benchmarks) use it to point references at new ids.
 */

/**
 * Visits every string of a resource body in place, with the member name it is the value of (undefined for an item
 * of an array); a defined return value replaces it.
 */
function visitStrings(node: unknown, visit: (key: string | undefined, value: string) => string | undefined): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      if (typeof item === 'string') {
        const replaced = visit(undefined, item);
        if (replaced !== undefined) node[i] = replaced;
      } else if (item && typeof item === 'object') {
        visitStrings(item, visit);
      }
    }
  } else if (node && typeof node === 'object') {
    const record = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(record)) {
      if (typeof value === 'string') {
        const replaced = visit(key, value);
        if (replaced !== undefined) record[key] = replaced;
      } else if (value && typeof value === 'object') {
        visitStrings(value, visit);
      }
    }
  }
}

/** Visits every `reference` string in place; a defined return value replaces it. */
export function visitReferences(node: unknown, replace: (reference: string) => string | undefined): void {
  visitStrings(node, (key, value) => (key === 'reference' ? replace(value) : undefined));
}

/**
 * Visits what a transaction rewrites when an entry's fullUrl gets its real id (http.html#trules): every
 * `reference` string (`replaceReference`), every other string that is a `urn:uuid:` or `urn:oid:` placeholder
 * (elements of type uri, url, oid and uuid: an attachment's url naming a Binary entry, an extension's valueUri),
 * and the `href` and `src` attributes of narrative XHTML. Other absolute URLs outside references are left alone:
 * a StructureDefinition's canonical url may equal its own fullUrl and must not become `StructureDefinition/<id>`.
 */
export function visitPlaceholders(node: unknown, replaceReference: (reference: string) => string | undefined, replacePlaceholder: (urn: string) => string | undefined): void {
  visitStrings(node, (key, value) => {
    if (key === 'reference') return replaceReference(value);
    if (key === 'div') {
      return value.replace(NARRATIVE_LINK, (all, attribute: string, quote: string, urn: string) => {
        const target = replacePlaceholder(urn);
        return target === undefined ? all : `${attribute}=${quote}${target}${quote}`;
      });
    }
    return PLACEHOLDER.test(value) ? replacePlaceholder(value) : undefined;
  });
}

const PLACEHOLDER = /^urn:(?:uuid|oid):/;
const NARRATIVE_LINK = /\b(href|src)\s*=\s*(["'])(urn:(?:uuid|oid):[^"']+)\2/g;

/** A copy of `resource` with every reference mapped through `resolve`; the input is left untouched. */
export function withReferences<T>(resource: T, resolve: (reference: string) => string): T {
  const copy = structuredClone(resource);
  visitReferences(copy, resolve);
  return copy;
}
