/**
 * A minimal, pure reading of SMART App Launch scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html),
 * v1 (`.read`, `.write`, `.*`) and v2 (`.c` `.r` `.u` `.d` `.s` letters, in that order), enough to decide whether
 * a set of scopes grants given interactions on a resource type. Granular scopes (`?param=value`) narrow access,
 * so they never grant whole-type access here; the full grammar with search constraints comes with src/consent/access.
 */

export type Context = 'patient' | 'user' | 'system';

export interface ResourceScope {
  context: Context;
  /** A resource type or `*`. */
  resourceType: string;
  /** Granted letters, a subset of `cruds`. */
  letters: string;
  /** True for `?param=value` scopes: they narrow, so they cannot grant a whole type. */
  granular: boolean;
}

const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
const SCOPE = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)(\?.+)?$/;

/** Parses one scope token; undefined for anything that is not a SMART resource scope (openid, launch, …). */
export function parseResourceScope(token: string): ResourceScope | undefined {
  const m = SCOPE.exec(token);
  if (!m) return undefined;
  const [, context, resourceType, permission, query] = m as unknown as [string, Context, string, string, string | undefined];
  let letters = V1[permission];
  if (letters === undefined) {
    // v2: letters in the order c r u d s, each at most once.
    if (!/^c?r?u?d?s?$/.test(permission) || permission === '') return undefined;
    letters = permission;
  }
  return { context, resourceType, letters, granular: query !== undefined };
}

/**
 * True when one scope of the given context grants EVERY letter asked on `resourceType` (e.g. `rs` for reading and
 * searching), as SMART unions scopes but each interaction needs its own letter.
 */
export function grants(scopes: readonly string[], resourceType: string, letters: string, contexts: readonly Context[] = ['system']): boolean {
  const wanted = [...letters];
  const granted = new Set<string>();
  for (const token of scopes) {
    const scope = parseResourceScope(token);
    if (!scope || scope.granular || !contexts.includes(scope.context)) continue;
    if (scope.resourceType !== '*' && scope.resourceType !== resourceType) continue;
    for (const letter of scope.letters) granted.add(letter);
  }
  return wanted.every((letter) => granted.has(letter));
}
