/**
 * The server's own profiles: every StructureDefinition (derivation `constraint`) in the profiles directory,
 * loaded at start. A resource that claims one in meta.profile is checked against its elements'
 * cardinality (min/max), fixed[x] and pattern[x] values and FHIRPath invariants. Slices (sliceName) are not
 * evaluated: a profile that has them is loaded and its slices are listed in `skippedElements`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { errors, type Issue } from '../../errors.ts';
import type { ElementDef, StructureDef } from './definitions.ts';
import { compileInvariants, type Invariant } from './invariants.ts';

interface ProfileRule {
  element: ElementDef;
  /** Path segments below the resource, e.g. ['identifier', 'system']. */
  segments: string[];
  min?: number;
  max?: number;
  fixed?: unknown;
  pattern?: unknown;
  invariants: Invariant[];
}

export interface Profile {
  url: string;
  name: string;
  type: string;
  file: string;
  rules: ProfileRule[];
  /** Element ids this validator does not evaluate (slices). */
  skippedElements: string[];
}

function valueWithPrefix(el: ElementDef, prefix: 'fixed' | 'pattern'): unknown {
  for (const key of Object.keys(el)) if (key.startsWith(prefix) && key.length > prefix.length) return el[key];
  return undefined;
}

function baseElement(base: StructureDef | undefined, p: string): ElementDef | undefined {
  return base?.snapshot?.element.find((e) => e.path === p);
}

function compileProfile(sd: StructureDef, file: string, base: StructureDef | undefined): Profile {
  const fromDifferential = Boolean(sd.differential?.element?.length);
  const elements = (fromDifferential ? sd.differential!.element : sd.snapshot?.element) ?? [];
  const name = sd.name ?? sd.url;
  const rules: ProfileRule[] = [];
  const skippedElements: string[] = [];
  const skipInvariant = (key: string, reason: string) => {
    throw errors.internal(`Profile ${name}: invariant ${key} cannot be used: ${reason}`, 'ERR_PROFILE_INVALID');
  };
  for (const el of elements) {
    if (el.sliceName || el.id?.includes(':')) {
      skippedElements.push(el.id ?? el.path);
      continue;
    }
    const segments = el.path.split('.').slice(1);
    const inherited = baseElement(base, el.path);
    const baseKeys = new Set((inherited?.constraint ?? []).map((c) => c.key));
    const own = (el.constraint ?? []).filter((c) => c.severity === 'error' && c.expression && !baseKeys.has(c.key));
    const rule: ProfileRule = { element: el, segments, invariants: compileInvariants(el.path, own, skipInvariant) };
    const tighterMin = el.min !== undefined && (fromDifferential || el.min > (inherited?.min ?? 0));
    if (tighterMin && segments.length > 0) rule.min = el.min!;
    if (el.max !== undefined && el.max !== '*' && segments.length > 0 && (fromDifferential || el.max !== inherited?.max)) {
      rule.max = Number(el.max);
    }
    const fixed = valueWithPrefix(el, 'fixed');
    if (fixed !== undefined) rule.fixed = fixed;
    const pattern = valueWithPrefix(el, 'pattern');
    if (pattern !== undefined) rule.pattern = pattern;
    const useful = rule.min !== undefined || rule.max !== undefined || 'fixed' in rule || 'pattern' in rule || rule.invariants.length > 0;
    if (useful) rules.push(rule);
  }
  return { url: sd.url, name, type: sd.type, file, rules, skippedElements };
}

/** Loads every `*.json` StructureDefinition in `dir`; a file that is not a usable profile stops the start. */
export function loadProfiles(
  dir: string,
  resourceTypes: ReadonlySet<string>,
  structures: ReadonlyMap<string, StructureDef>,
): Map<string, Profile> {
  const profiles = new Map<string, Profile>();
  if (!fs.existsSync(dir)) return profiles;
  for (const entry of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const file = path.join(dir, entry);
    const invalid = (why: string) => errors.internal(`Profile ${file}: ${why}`, 'ERR_PROFILE_INVALID');
    let sd: StructureDef;
    try {
      sd = JSON.parse(fs.readFileSync(file, 'utf8')) as StructureDef;
    } catch (err) {
      throw invalid(`not JSON (${(err as Error).message})`);
    }
    if (sd?.resourceType !== 'StructureDefinition') throw invalid('not a StructureDefinition');
    if (typeof sd.url !== 'string' || sd.url === '') throw invalid('it has no url');
    if (sd.derivation !== 'constraint') throw invalid(`derivation must be 'constraint', got '${String(sd.derivation)}'`);
    if (!resourceTypes.has(sd.type)) throw invalid(`'${sd.type}' is not an R4 resource type`);
    if (profiles.has(sd.url)) throw invalid(`${sd.url} is already defined by ${profiles.get(sd.url)!.file}`);
    profiles.set(sd.url, compileProfile(sd, file, structures.get(sd.type)));
  }
  return profiles;
}

interface Located {
  node: unknown;
  expression: string;
}

function children(parent: Record<string, unknown>, segment: string, at: string): Located[] {
  const out: Located[] = [];
  const take = (key: string) => {
    const v = parent[key];
    if (v === undefined) return;
    if (Array.isArray(v)) v.forEach((node, i) => out.push({ node, expression: `${at}.${key}[${i}]` }));
    else out.push({ node: v, expression: `${at}.${key}` });
  };
  if (segment.endsWith('[x]')) {
    const prefix = segment.slice(0, -3);
    for (const key of Object.keys(parent)) {
      if (key.startsWith(prefix) && /^[A-Z]/.test(key.slice(prefix.length))) take(key);
    }
    return out;
  }
  take(segment);
  // A primitive given only by its extensions (`_birthDate`) is still present.
  if (out.length === 0 && parent[`_${segment}`] !== undefined) out.push({ node: parent[`_${segment}`], expression: `${at}.${segment}` });
  return out;
}

/** Whether `value` has everything `pattern` has (pattern[x] semantics: arrays match element by element). */
export function matchesPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => matchesPattern(v, p)));
  }
  if (pattern !== null && typeof pattern === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
    const v = value as Record<string, unknown>;
    return Object.entries(pattern).every(([k, p]) => matchesPattern(Array.isArray(p) && !Array.isArray(v[k]) ? [v[k]] : v[k], p));
  }
  return value === pattern;
}

/** The issues of `resource` against `profile` (the resource is already known to be of the profile's type). */
export function checkProfile(resource: Record<string, unknown>, profile: Profile): Issue[] {
  const issues: Issue[] = [];
  const fail = (code: Issue['code'], expression: string, text: string) =>
    issues.push({ severity: 'error', code, diagnostics: `${text} (profile ${profile.name})`, expression: [expression] });
  const vars = { resource, rootResource: resource };
  for (const rule of profile.rules) {
    let parents: Located[] = [{ node: resource, expression: profile.type }];
    for (const segment of rule.segments.slice(0, -1)) {
      parents = parents.flatMap((p) => (p.node !== null && typeof p.node === 'object' ? children(p.node as Record<string, unknown>, segment, p.expression) : []));
    }
    const last = rule.segments.at(-1);
    for (const parent of parents) {
      const isObject = parent.node !== null && typeof parent.node === 'object';
      const found = last === undefined ? [parent] : isObject ? children(parent.node as Record<string, unknown>, last, parent.expression) : [];
      const at = last === undefined ? parent.expression : `${parent.expression}.${last}`;
      if (rule.min !== undefined && found.length < rule.min) {
        fail('required', at, rule.min === 1 ? `${at} is required` : `${at}: at least ${rule.min} required, found ${found.length}`);
      }
      if (rule.max !== undefined && found.length > rule.max) {
        fail('structure', at, rule.max === 0 ? `${at} is not allowed` : `${at}: at most ${rule.max} allowed, found ${found.length}`);
      }
      for (const item of found) {
        if ('fixed' in rule && !isDeepStrictEqual(item.node, rule.fixed)) {
          fail('value', item.expression, `${item.expression} must be exactly ${JSON.stringify(rule.fixed)}`);
        }
        if ('pattern' in rule && !matchesPattern(item.node, rule.pattern)) {
          fail('value', item.expression, `${item.expression} must match ${JSON.stringify(rule.pattern)}`);
        }
        for (const inv of rule.invariants) {
          const ok = inv.holds(item.node, vars);
          if (ok === false) fail('invariant', item.expression, `${item.expression}: ${inv.human} (${inv.key}: ${inv.expression})`);
          else if (ok !== true) fail('invariant', item.expression, `${item.expression}: invariant ${inv.key} could not be evaluated: ${ok.message}`);
        }
      }
    }
  }
  return issues;
}
