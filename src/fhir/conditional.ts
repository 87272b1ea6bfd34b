/**
 * Conditional interactions: conditional create (http://hl7.org/fhir/R4/http.html#ccreate), conditional update
 * (#cond-update), conditional delete (#3.1.0.7.1) and conditional patch (#patch), plus conditional references in
 * transactions (http://hl7.org/fhir/R4/bundle.html#references, "Conditional References").
 * What is pure here — parsing the condition, the spec's outcome for 0, 1 or many matches, the lock key — is kept
 * apart from `matchIds`, the one function that asks the search index.
 */
import { errors } from '../errors.ts';
import { parseQuery, type InteractionContext } from './request.ts';
import { isEmptyValue } from './search/params.ts';

export type ConditionalKind = 'create' | 'update' | 'delete' | 'patch';

/** What a conditional interaction does once its condition is resolved. */
export type ConditionalOutcome =
  /** No match: create (conditional create, conditional update). */
  | { action: 'create' }
  /** One match: conditional create returns it unchanged; update/delete/patch act on it. */
  | { action: 'match'; id: string }
  /** No match for a conditional delete: nothing to do. */
  | { action: 'none' };

/**
 * Parameters that shape a response, not the set of matches (search.html#return, http.html#parameters): never part
 * of a condition. A condition of nothing else (`DELETE Patient?_count=1`) has no criteria, so it is refused
 * rather than matching every resource (and, with only one stored, acting on it).
 */
const NOT_CRITERIA = new Set(['_format', '_pretty', '_count', '_sort', '_include', '_revinclude', '_summary', '_elements', '_total', '_contained', '_containedType']);

/**
 * Parses a condition: the `If-None-Exist` header (`identifier=a|b`; `Type?identifier=a|b` is accepted too, as
 * several clients send it) or the query of a conditional URL / reference.
 */
export function parseCondition(text: string, resourceType: string, where: string): Record<string, string[]> {
  let search = text.trim();
  const question = search.indexOf('?');
  if (question >= 0) {
    const type = search.slice(0, question).replace(/^.*\//, '');
    if (type !== '' && type !== resourceType) {
      throw errors.badRequest(`${where} names ${type.slice(0, 64)}, but the resource is a ${resourceType}`, undefined, 'ERR_CONDITION_TYPE');
    }
    search = search.slice(question + 1);
  }
  return criteriaOf(parseQuery(search), where);
}

/**
 * The search criteria of a query: result-shaping parameters dropped; at least one criterion required. An empty value
 * is refused: a search ignores it (params.ts), so `identifier=&birthdate=2000` (an MRN the client failed to fill in)
 * would otherwise act on whatever matches the rest.
 */
export function criteriaOf(query: Record<string, string[]>, where: string): Record<string, string[]> {
  const criteria: Record<string, string[]> = Object.create(null);
  for (const [name, values] of Object.entries(query)) {
    if (NOT_CRITERIA.has(name)) continue;
    if (values.some(isEmptyValue)) {
      throw errors.badRequest(`${where}: '${name.slice(0, 64)}' has an empty value, which a search ignores; a condition must not`, [name], 'ERR_CONDITION_EMPTY');
    }
    criteria[name] = values;
  }
  if (Object.keys(criteria).length === 0) {
    throw errors.badRequest(`${where} needs search parameters: a condition without criteria would match every resource`, undefined, 'ERR_CONDITION_EMPTY');
  }
  return criteria;
}

/**
 * The lock that serializes conditional writes with the same type and criteria, held from the search to the
 * durable commit, so two identical conditional creates cannot both see "no match". Parameter order is irrelevant
 * to a FHIR search (AND is commutative), so names and values are sorted. The leading `?` sorts before every
 * resource type, so condition locks are always taken before resource locks (no lock-order inversion).
 */
export function conditionLockKey(resourceType: string, query: Record<string, string[]>): string {
  const pairs = Object.entries(query).flatMap(([name, values]) => values.map((value) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`));
  return `?${resourceType}?${pairs.sort().join('&')}`;
}

/** The spec's outcome for a conditional interaction given the ids its condition matched. */
export function conditionalOutcome(kind: ConditionalKind, ids: string[], label: string): ConditionalOutcome {
  if (ids.length > 1) {
    throw errors.preconditionFailed(`${label} matched more than one resource; the condition must be more selective`, 'ERR_CONDITION_MULTIPLE_MATCHES');
  }
  const [id] = ids;
  if (id !== undefined) return { action: 'match', id };
  switch (kind) {
    case 'create':
    case 'update':
      return { action: 'create' };
    case 'delete':
      return { action: 'none' };
    case 'patch':
      throw errors.notFound(`${label} matched no resource`, 'ERR_CONDITION_NO_MATCH');
  }
}

/** A conditional reference (`Type?params`) of a transaction: its target type and criteria, or undefined. */
export function conditionalReference(reference: string): { resourceType: string; search: string } | undefined {
  const m = /^([A-Z][A-Za-z]{1,63})\?(.+)$/s.exec(reference);
  return m ? { resourceType: m[1]!, search: m[2]! } : undefined;
}

/** Ids matching a condition (400 on bad criteria); two are enough to tell "one" from "many". */
export async function matchIds(ctx: Pick<InteractionContext, 'repo'>, resourceType: string, query: Record<string, string[]>): Promise<string[]> {
  return ctx.repo.findIds(resourceType, query, { limit: 2 });
}

/**
 * Resolves a conditional interaction's condition under its lock, unless a transaction already did (then the ids
 * it found travel on the request, and it holds the lock).
 */
export async function resolveCondition(
  ctx: InteractionContext,
  resourceType: string,
  query: Record<string, string[]>,
  resolvedIds: string[] | undefined,
): Promise<string[]> {
  if (resolvedIds) return resolvedIds;
  await ctx.work.lock([conditionLockKey(resourceType, query)]);
  return matchIds(ctx, resourceType, query);
}
