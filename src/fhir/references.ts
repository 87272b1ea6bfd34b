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
 */
export function visitPlaceholders(
  resource: unknown,
  model: Model,
  replaceReference: (reference: string) => string | undefined,
  replacePlaceholder: (urn: string) => string | undefined,
): void {
  const visitValue = (typeName: string, field: FieldModel, value: unknown): string | undefined => {
    if (typeof value === 'string') {
      if (typeName === 'Reference' && field.key === 'reference') return replaceReference(value);
      if (typeName === 'Narrative' && field.key === 'div') {
        return value.replace(NARRATIVE_LINK, (all, attribute: string, quote: string, urn: string) => {
          const target = replacePlaceholder(urn);
          return target === undefined ? all : `${attribute}=${quote}${target}${quote}`;
        });
      }
      return URI_TYPES.has(field.type) && PLACEHOLDER.test(value) ? replacePlaceholder(value) : undefined;
    }
    if (value && typeof value === 'object' && !field.primitive) {
      if (field.type === 'Resource') visitResource(value);
      else visitObject(value as Record<string, unknown>, field.type);
    }
    return undefined;
  };
  const visitObject = (node: Record<string, unknown>, typeName: string): void => {
    const type = model.get(typeName);
    if (!type) return;
    for (const [key, value] of Object.entries(node)) {
      const field = type.fields.get(key);
      if (!field) continue;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const replaced = visitValue(typeName, field, value[i]);
          if (replaced !== undefined) value[i] = replaced;
        }
      } else {
        const replaced = visitValue(typeName, field, value);
        if (replaced !== undefined) node[key] = replaced;
      }
    }
  };
  const visitResource = (node: unknown): void => {
    const type = (node as { resourceType?: unknown }).resourceType;
    if (typeof type === 'string') visitObject(node as Record<string, unknown>, type);
  };
  if (resource && typeof resource === 'object') visitResource(resource);
}

const PLACEHOLDER = /^urn:(?:uuid|oid):/;
const NARRATIVE_LINK = /\b(href|src)\s*=\s*(["'])(urn:(?:uuid|oid):[^"']+)\2/g;

/** A copy of `resource` with every reference mapped through `resolve`; the input is left untouched. */
export function withReferences<T>(resource: T, resolve: (reference: string) => string): T {
  const copy = structuredClone(resource);
  visitReferences(copy, resolve);
  return copy;
}
