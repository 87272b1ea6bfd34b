/**
 * $validate (http://hl7.org/fhir/R4/resource-operation-validate.html) on a type or an instance: answers with an
 * OperationOutcome listing every issue, stores nothing. The resource comes as the body or as the `resource`
 * parameter of a Parameters body; `mode` is create, update or delete.
 * The operation's definition: "This operation returns a 200 OK whether or not the resource is valid. A 4xx or 5xx
 * error means that the validation itself could not be performed": an invalid resource is a 200 listing its errors,
 * and a nominated profile this server cannot check against is a 400.
 */
import type { Parameters, Resource } from '@medplum/fhirtypes';
import { errors, FhirError, type Issue } from '../../errors.ts';
import { auditEntry } from '../audit.ts';
import { outcomeOf } from '../outcome.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import type { ValidateOptions } from '../validate.ts';
import { resourceBody } from './write-common.ts';

const MODES = new Set(['create', 'update', 'delete']);

export async function validateOperation(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const resourceType = match.resourceType!;
  const body = resourceBody(req);
  let candidate: Resource | undefined = body;
  let mode = req.query.mode?.[0];
  let profile: string | undefined = req.query.profile?.[0];
  if (body.resourceType === 'Parameters' && resourceType !== 'Parameters') {
    const parameters = (body as Parameters).parameter ?? [];
    candidate = parameters.find((p) => p.name === 'resource')?.resource;
    const modeParameter = parameters.find((p) => p.name === 'mode')?.valueCode;
    if (mode === undefined && modeParameter !== undefined) mode = modeParameter;
    const profileParameter = parameters.find((p) => p.name === 'profile');
    if (profile === undefined) profile = profileParameter?.valueUri ?? profileParameter?.valueCanonical;
  }
  if (mode !== undefined && !MODES.has(mode)) throw errors.badRequest(`mode must be create, update or delete, got '${mode.slice(0, 40)}'`, undefined, 'ERR_BAD_PARAMETER');
  if (profile !== undefined && !canCheckAgainst(ctx, resourceType, profile)) {
    // "If a profile is nominated, and the server cannot validate against the nominated profile, it SHALL return an error"
    const known = [...ctx.validator.profiles.keys()].join(', ') || 'none';
    throw errors.notSupported(`Profile ${profile.slice(0, 200)} is not known to this server, so the resource cannot be validated against it (known: ${known})`, 'ERR_UNKNOWN_PROFILE');
  }

  let issues: Issue[];
  if (mode === 'delete') {
    if (!match.id) throw errors.badRequest('mode=delete needs an instance: POST [type]/[id]/$validate', undefined, 'ERR_BAD_PARAMETER');
    const head = await ctx.repo.head(resourceType, match.id);
    issues = head && !head.deleted ? [] : [{ severity: 'error', code: 'not-found', diagnostics: `${resourceType}/${match.id} is not known` }];
  } else {
    if (!candidate) throw errors.badRequest('No resource to validate: send it as the body or as the "resource" parameter', undefined, 'ERR_NO_BODY');
    // The profile parameter: checked against it whether claimed or not; one the server cannot check is an error.
    issues = validationIssues(ctx, candidate, resourceType, mode === 'update' ? match.id : undefined, profile);
  }
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: [{ reference: match.id ? `${resourceType}/${match.id}` : resourceType }] }));
  const outcome = outcomeOf(issues.length ? issues : [{ severity: 'information', code: 'informational', diagnostics: 'Validation successful: no issues found' }]);
  return { status: 200, body: outcome };
}

/** The base definition of the type, which every validation checks, or one of the server's profiles. */
function canCheckAgainst(ctx: InteractionContext, resourceType: string, profile: string): boolean {
  const url = profile.split('|')[0]!;
  return url === `http://hl7.org/fhir/StructureDefinition/${resourceType}` || ctx.validator.profiles.has(url);
}

function validationIssues(ctx: InteractionContext, resource: Resource, expectedType: string, expectedId: string | undefined, profile: string | undefined): Issue[] {
  try {
    const options: ValidateOptions = { expectedType };
    if (expectedId !== undefined) options.expectedId = expectedId;
    if (profile !== undefined) options.profile = profile;
    return ctx.validator.validate(resource, options);
  } catch (err) {
    // Structural problems (not a resource, wrong type) are thrown as 400s by the validator: report them as issues.
    if (err instanceof FhirError && err.status < 500) return err.issues;
    throw err;
  }
}
