/**
 * The one place where errors become HTTP statuses and OperationOutcomes
 * (http://hl7.org/fhir/R4/operationoutcome.html). Everything else throws FhirError.
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { FhirError, type Issue } from '../errors.ts';
import { isDecodeError } from '../storage/db.ts';
import { decryptError } from '../storage/envelope.ts';

export function outcomeOf(issues: Issue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((issue) => {
      const out: OperationOutcomeIssue = { severity: issue.severity, code: issue.code };
      if (issue.diagnostics !== undefined) out.diagnostics = issue.diagnostics;
      if (issue.expression?.length) out.expression = issue.expression;
      return out;
    }),
  };
}

export function informational(message: string): OperationOutcome {
  return outcomeOf([{ severity: 'information', code: 'informational', diagnostics: message }]);
}

/** Errors we did not raise on purpose must not leak internals: the client sees a generic 500 outcome. */
export function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  // A stored JSON record that does not parse (abstract-level's "Could not decode value", on a read the repository
  // does not name it on: history, export): a damaged record, answered as repository.ts `damagedRecord` answers.
  if (isDecodeError(err)) return decryptError(err as Error);
  return new FhirError('Internal server error', { status: 500, code: 'ERR_INTERNAL', issueType: 'exception', cause: err });
}
