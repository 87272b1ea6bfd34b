/**
 * Resource validation (http://hl7.org/fhir/R4/validation.html): the official R4 JSON schema (ajv), then
 * one type-aware walk for what the schema cannot say (required primitives, calendar dates, references,
 * ele-1, the base FHIRPath invariants), then the server's own profiles that the resource claims.
 *
 * `meta` is the server's: versionId and lastUpdated of the resource itself are ignored (the repository
 * overwrites them on every write), while the rest of meta (profile, security, tag, source) is the
 * client's and is validated like any other element.
 */
import type { Issue } from '../errors.ts';
import { errors } from '../errors.ts';
import { baseDefinitions } from './validation/definitions.ts';
import { compileInvariants, type Invariant } from './validation/invariants.ts';
import { buildModel, type FieldModel, type Model, type TypeModel } from './validation/model.ts';
import { checkProfile, loadProfiles, type Profile } from './validation/profiles.ts';
import { ID_PATTERN, quote } from './validation/primitives.ts';
import { schemaValidator } from './validation/schema.ts';
import { schemaIssues } from './validation/schema-errors.ts';
import { exceedsDepth, Walker } from './validation/walk.ts';

/** The 146 concrete resource types of FHIR R4 (4.0.1), from the base StructureDefinitions, sorted. */
export const RESOURCE_TYPES: readonly string[] = baseDefinitions().resourceTypes;

const RESOURCE_TYPE_SET: ReadonlySet<string> = new Set(RESOURCE_TYPES);

export function isResourceType(type: string): boolean {
  return RESOURCE_TYPE_SET.has(type);
}

export const DEFAULT_MAX_DEPTH = 64;

export interface ValidateOptions {
  /** The type named by the URL; a body of another type is a 400. */
  expectedType?: string;
  /** The id named by the URL of an update; the body must carry the same id (400 otherwise). */
  expectedId?: string;
  /** Accept `Type?search` references (inside a transaction, which resolves them). */
  allowConditionalReferences?: boolean;
  /** Accept `urn:uuid:` / `urn:oid:` references outside a Bundle (an entry checked before its Bundle is resolved). */
  allowUrnReferences?: boolean;
  /**
   * A profile to check against as well, claimed or not ($validate's `profile` parameter): one this server does not
   * know is an error, where an unknown profile the resource claims is only a warning.
   */
  profile?: string;
  /** Deepest nesting of objects and arrays accepted (default: the validator's). */
  maxDepth?: number;
}

export interface ValidatorOptions {
  /** Directory of the server's own profiles (StructureDefinition JSON files); none when absent. */
  profilesDir?: string;
  /** Where the generated schema code is cached (default node_modules/.cache/sealed-fhir); false: compile every time. */
  cacheDir?: string | false;
  /** Evaluate the base R4 FHIRPath invariants (default true). */
  invariants?: boolean;
  maxDepth?: number;
}

export interface Validator {
  /** Every issue found, fatal ones first; an empty list means valid. Never throws for bad input. */
  validate(resource: unknown, options?: ValidateOptions): Issue[];
  /**
   * Throws a 400 FhirError when the body is not a resource of the expected type and id, a 422 when it has
   * any issue of severity error; returns when it is valid (warnings allowed).
   */
  assertValid(resource: unknown, options?: ValidateOptions): void;
  /** The profiles loaded from profilesDir, by canonical URL. */
  readonly profiles: ReadonlyMap<string, Profile>;
  /** Base invariants that are not evaluated, with the reason, by key. */
  readonly skippedInvariants: ReadonlyMap<string, string>;
  /** The R4 element model validation walks (element types: what a transaction may rewrite, references.ts). */
  readonly model: Model;
}

/** A problem that means the body is not a FHIR resource of the kind the request is about: a 400. */
interface Structural {
  code: string;
  issue: Issue;
}

function structural(resource: unknown, options: ValidateOptions, maxDepth: number): Structural | undefined {
  const fatal = (code: string, issueType: Issue['code'], diagnostics: string, expression?: string): Structural => ({
    code,
    issue: { severity: 'fatal', code: issueType, diagnostics, ...(expression ? { expression: [expression] } : {}) },
  });
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    return fatal('ERR_NOT_A_RESOURCE', 'structure', 'The body is not a FHIR resource: expected a JSON object');
  }
  const r = resource as Record<string, unknown>;
  if (typeof r.resourceType !== 'string') {
    return fatal('ERR_NOT_A_RESOURCE', 'structure', 'The body is not a FHIR resource: it has no resourceType');
  }
  if (!RESOURCE_TYPE_SET.has(r.resourceType)) {
    return fatal('ERR_RESOURCE_TYPE', 'not-supported', `${quote(r.resourceType)} is not a FHIR R4 resource type`, 'resourceType');
  }
  if (options.expectedType !== undefined && r.resourceType !== options.expectedType) {
    return fatal('ERR_RESOURCE_TYPE_MISMATCH', 'invalid', `The body is a ${r.resourceType} but the URL is for ${options.expectedType}`, `${r.resourceType}`);
  }
  if (options.expectedId !== undefined) {
    if (r.id === undefined) {
      return fatal('ERR_ID_MISSING', 'required', `${r.resourceType}.id is required in an update and must be ${quote(options.expectedId)}`, `${r.resourceType}.id`);
    }
    if (r.id !== options.expectedId) {
      return fatal('ERR_ID_MISMATCH', 'invalid', `${r.resourceType}.id ${quote(String(r.id))} does not match the id in the URL ${quote(options.expectedId)}`, `${r.resourceType}.id`);
    }
  }
  if (exceedsDepth(resource, maxDepth)) {
    return fatal('ERR_TOO_DEEP', 'too-long', `The resource nests deeper than ${maxDepth} levels`);
  }
  return undefined;
}

/** The resource as validated: the server-owned meta.versionId / meta.lastUpdated left out. */
function withoutServerMeta(r: Record<string, unknown>): Record<string, unknown> {
  const meta = r.meta;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return r;
  const { versionId: _v, lastUpdated: _l, _versionId, _lastUpdated, ...rest } = meta as Record<string, unknown>;
  if (Object.keys(rest).length === 0) {
    const { meta: _m, ...body } = r;
    return body;
  }
  return { ...r, meta: rest };
}

function claimedProfiles(r: Record<string, unknown>): string[] {
  const profile = (r.meta as { profile?: unknown } | undefined)?.profile;
  return Array.isArray(profile) ? profile.filter((p): p is string => typeof p === 'string') : [];
}

export function createValidator(options: ValidatorOptions = {}): Validator {
  const defs = baseDefinitions();
  const model = buildModel(defs.structures);
  const schema = schemaValidator(defs.resourceTypes, options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir });
  const profiles = options.profilesDir ? loadProfiles(options.profilesDir, RESOURCE_TYPE_SET, defs.structures) : new Map<string, Profile>();
  const defaultMaxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const withInvariants = options.invariants ?? true;

  const skippedInvariants = new Map<string, string>();
  const compiled = new Map<FieldModel | TypeModel, readonly Invariant[]>();
  const invariantsOf = (owner: FieldModel | TypeModel): readonly Invariant[] => {
    let list = compiled.get(owner);
    if (!list) {
      const base = 'key' in owner ? owner.type : owner.name;
      list = withInvariants ? compileInvariants(base, owner.constraints, (key, why) => skippedInvariants.set(key, why)) : [];
      compiled.set(owner, list);
    }
    return list;
  };
  // Compiled up front so the first request pays nothing and skippedInvariants is complete from the start.
  for (const type of model.values()) {
    invariantsOf(type);
    for (const field of type.fields.values()) invariantsOf(field);
  }

  const check = (resource: unknown, opts: ValidateOptions): { structural?: Structural; issues: Issue[] } => {
    const fatal = structural(resource, opts, opts.maxDepth ?? defaultMaxDepth);
    if (fatal) return { structural: fatal, issues: [fatal.issue] };
    const r = withoutServerMeta(resource as Record<string, unknown>);
    const type = r.resourceType as string;
    const issues: Issue[] = [];
    if (!schema.validate(r)) issues.push(...schemaIssues(schema.validate.errors, type, r, schema.patterns));
    if (typeof r.id === 'string' && !ID_PATTERN.test(r.id) && !issues.some((i) => i.expression?.[0] === `${type}.id`)) {
      issues.push({ severity: 'error', code: 'value', diagnostics: `${type}.id: ${quote(r.id)} is not a valid id`, expression: [`${type}.id`] });
    }
    const walker = new Walker({
      model,
      invariantsOf,
      issues,
      rules: {
        resourceTypes: RESOURCE_TYPE_SET,
        allowConditional: opts.allowConditionalReferences ?? false,
        allowUrn: opts.allowUrnReferences ?? false,
      },
    });
    walker.resource(r, type);
    const claimed = claimedProfiles(r);
    claimed.forEach((url, i) => issues.push(...profileIssues(r, type, url, `${type}.meta.profile[${i}]`, false)));
    const nominated = opts.profile?.split('|')[0];
    // The base definition is what every validation checks; a claimed profile was checked just above.
    if (nominated !== undefined && nominated !== `http://hl7.org/fhir/StructureDefinition/${type}` && !claimed.some((url) => url.split('|')[0] === nominated)) {
      issues.push(...profileIssues(r, type, opts.profile!, 'profile', true));
    }
    return { issues: dedupe(issues) };
  };

  /** The issues of `r` against the profile `url`; `required`: a profile this server does not know is an error. */
  const profileIssues = (r: Record<string, unknown>, type: string, url: string, expression: string, required: boolean): Issue[] => {
    const profile = profiles.get(url.split('|')[0]!);
    // a claimed profile is quoted, as the resource's own values are; a nominated one is named as the request gave it
    const shown = required ? url.slice(0, 200) : quote(url, 200);
    if (!profile) {
      const diagnostics = required
        ? `Profile ${shown} is not known to this server, so the resource cannot be validated against it (known: ${[...profiles.keys()].join(', ') || 'none'})`
        : `Profile ${shown} is not known to this server: the resource was checked against the base R4 definition only`;
      return [{ severity: required ? 'error' : 'warning', code: 'not-supported', diagnostics, expression: [expression] }];
    }
    if (profile.type !== type) {
      return [{ severity: 'error', code: 'invalid', diagnostics: `Profile ${shown} is for ${profile.type}, not ${type}`, expression: [expression] }];
    }
    return checkProfile(r, profile);
  };

  return {
    profiles,
    skippedInvariants,
    model,
    validate: (resource, opts = {}) => check(resource, opts).issues,
    assertValid(resource, opts = {}) {
      const result = check(resource, opts);
      if (result.structural) {
        const { issue, code } = result.structural;
        throw errors.badRequest(issue.diagnostics ?? 'Not a FHIR resource', issue.expression, code);
      }
      if (result.issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) throw errors.unprocessable(result.issues);
    },
  };
}

function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.severity}|${i.expression?.[0]}|${i.diagnostics}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
