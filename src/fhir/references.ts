import type { FieldModel, Model } from './validation/model.ts';

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

/** Element types a transaction rewrites placeholders in (http.html#trules: uri, url, oid, uuid; canonical is a uri). */
const URI_TYPES: ReadonlySet<string> = new Set(['uri', 'url', 'oid', 'uuid', 'canonical']);

/**
 * Visits what a transaction rewrites when an entry's fullUrl gets its real id (http.html#trules), by element type
 * (the R4 model the validator uses): every `Reference.reference` (`replaceReference`), every `urn:uuid:` or
 * `urn:oid:` placeholder in an element of type uri, url, oid, uuid or canonical (an attachment's url naming a
 * Binary entry, an extension's valueUri), and the `href` and `src` attributes of narrative XHTML. A string or
 * markdown that happens to hold a placeholder is data and stays as sent (Synthea's DocumentReference.identifier
 * values are `urn:uuid:` URIs of other entries); other absolute URLs are never rewritten (a StructureDefinition's
 * canonical url may equal its own fullUrl and must not become `StructureDefinition/<id>`). Elements the model
 * does not know are left alone: validation refuses them.
 *
 * Copy on write: the input is never modified (a failed transaction may be retried with the same entries, as the
 * importer does); the answer is the input itself when nothing was replaced, or a copy in which only the objects
 * and arrays on the way to a replaced value are new. Cloning every entry whole cost a Synthea transaction ~3 % of
 * the event loop.
 */
export function replacePlaceholders<T>(
  resource: T,
  model: Model,
  replaceReference: (reference: string) => string | undefined,
  replacePlaceholder: (urn: string) => string | undefined,
): T {
  const visitValue = (typeName: string, field: FieldModel, value: unknown): unknown => {
    if (typeof value === 'string') {
      if (typeName === 'Reference' && field.key === 'reference') return replaceReference(value) ?? value;
      if (typeName === 'Narrative' && field.key === 'div') {
        return value.replace(NARRATIVE_LINK, (all, attribute: string, quote: string, urn: string) => {
          const target = replacePlaceholder(urn);
          return target === undefined ? all : `${attribute}=${quote}${target}${quote}`;
        });
      }
      return URI_TYPES.has(field.type) && PLACEHOLDER.test(value) ? (replacePlaceholder(value) ?? value) : value;
    }
    if (value && typeof value === 'object' && !field.primitive) {
      return field.type === 'Resource' ? visitResource(value) : visitObject(value as Record<string, unknown>, field.type);
    }
    return value;
  };
  const visitObject = (node: Record<string, unknown>, typeName: string): Record<string, unknown> => {
    const type = model.get(typeName);
    if (!type) return node;
    let copy: Record<string, unknown> | undefined;
    for (const [key, value] of Object.entries(node)) {
      const field = type.fields.get(key);
      if (!field) continue;
      let next: unknown = value;
      if (Array.isArray(value)) {
        let items: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const item = visitValue(typeName, field, value[i]);
          if (item !== value[i]) (items ??= [...value])[i] = item;
        }
        if (items) next = items;
      } else {
        next = visitValue(typeName, field, value);
      }
      if (next !== value) (copy ??= { ...node })[key] = next;
    }
    return copy ?? node;
  };
  const visitResource = (node: unknown): unknown => {
    const type = (node as { resourceType?: unknown }).resourceType;
    return typeof type === 'string' ? visitObject(node as Record<string, unknown>, type) : node;
  };
  return (resource && typeof resource === 'object' ? visitResource(resource) : resource) as T;
}

const PLACEHOLDER = /^urn:(?:uuid|oid):/;
const NARRATIVE_LINK = /\b(href|src)\s*=\s*(["'])(urn:(?:uuid|oid):[^"']+)\2/g;

/** A copy of `resource` with every reference mapped through `resolve`; the input is left untouched. */
export function withReferences<T>(resource: T, resolve: (reference: string) => string): T {
  const copy = structuredClone(resource);
  visitReferences(copy, resolve);
  return copy;
}
