/**
 * The one error type of the whole server. Every layer throws a FhirError (or a subclass); exactly one place
 * (src/fhir/outcome.ts) turns it into an HTTP status and an OperationOutcome. The `code` is stable and is what
 * tests assert on (as jose does with ERR_JWT_EXPIRED); the message text is for humans and may change.
 */

/** FHIR IssueType codes (http://hl7.org/fhir/R4/valueset-issue-type.html) used by this server. */
export type IssueType =
  | 'invalid' | 'structure' | 'required' | 'value' | 'invariant'
  | 'security' | 'login' | 'unknown' | 'expired' | 'forbidden' | 'suppressed'
  | 'processing' | 'not-supported' | 'duplicate' | 'multiple-matches' | 'not-found' | 'deleted'
  | 'too-long' | 'code-invalid' | 'extension' | 'too-costly' | 'business-rule' | 'conflict'
  | 'transient' | 'lock-error' | 'no-store' | 'exception' | 'timeout' | 'incomplete' | 'throttled'
  | 'informational';

export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';

export interface Issue {
  severity: IssueSeverity;
  code: IssueType;
  diagnostics?: string;
  /** FHIRPath expressions of the offending elements, e.g. `Patient.birthDate`. */
  expression?: string[];
}

export interface FhirErrorOptions {
  /** HTTP status this error maps to (4xx for the caller's mistakes, 5xx only for ours). */
  status: number;
  /** Stable machine-readable code, e.g. `ERR_NOT_FOUND`. */
  code: string;
  /** FHIR issue type of the first issue. */
  issueType: IssueType;
  /** More issues (validation reports many at once). When given they replace the single issue built from the message. */
  issues?: Issue[];
  expression?: string[];
  /** Extra HTTP headers the response must carry (e.g. WWW-Authenticate). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class FhirError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issueType: IssueType;
  readonly issues: Issue[];
  readonly headers: Record<string, string>;

  constructor(message: string, options: FhirErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FhirError';
    this.status = options.status;
    this.code = options.code;
    this.issueType = options.issueType;
    this.headers = options.headers ?? {};
    this.issues = options.issues ?? [
      {
        severity: options.status >= 500 ? 'fatal' : 'error',
        code: options.issueType,
        diagnostics: message,
        ...(options.expression ? { expression: options.expression } : {}),
      },
    ];
  }
}

/** Shorthands for the errors every layer raises; each keeps a stable code. */
export const errors = {
  badRequest: (message: string, expression?: string[], code = 'ERR_BAD_REQUEST') =>
    new FhirError(message, { status: 400, code, issueType: 'invalid', ...(expression ? { expression } : {}) }),
  unprocessable: (issues: Issue[], message = 'Resource failed validation', code = 'ERR_VALIDATION') =>
    new FhirError(message, { status: 422, code, issueType: 'invalid', issues }),
  unauthorized: (message: string, code: string, wwwAuthenticate: string) =>
    new FhirError(message, { status: 401, code, issueType: 'login', headers: { 'www-authenticate': wwwAuthenticate } }),
  forbidden: (message: string, code = 'ERR_FORBIDDEN') =>
    new FhirError(message, { status: 403, code, issueType: 'forbidden' }),
  notFound: (message: string, code = 'ERR_NOT_FOUND') =>
    new FhirError(message, { status: 404, code, issueType: 'not-found' }),
  gone: (message: string, code = 'ERR_GONE') => new FhirError(message, { status: 410, code, issueType: 'deleted' }),
  conflict: (message: string, code = 'ERR_CONFLICT') => new FhirError(message, { status: 409, code, issueType: 'conflict' }),
  preconditionFailed: (message: string, code = 'ERR_PRECONDITION_FAILED') =>
    new FhirError(message, { status: 412, code, issueType: 'conflict' }),
  notAcceptable: (message: string) => new FhirError(message, { status: 406, code: 'ERR_NOT_ACCEPTABLE', issueType: 'not-supported' }),
  unsupportedMediaType: (message: string) =>
    new FhirError(message, { status: 415, code: 'ERR_UNSUPPORTED_MEDIA_TYPE', issueType: 'not-supported' }),
  tooLarge: (message: string) => new FhirError(message, { status: 413, code: 'ERR_TOO_LARGE', issueType: 'too-long' }),
  notSupported: (message: string, code = 'ERR_NOT_SUPPORTED') =>
    new FhirError(message, { status: 400, code, issueType: 'not-supported' }),
  methodNotAllowed: (message: string) =>
    new FhirError(message, { status: 405, code: 'ERR_METHOD_NOT_ALLOWED', issueType: 'not-supported' }),
  unavailable: (message: string, code = 'ERR_UNAVAILABLE', cause?: unknown) =>
    new FhirError(message, { status: 503, code, issueType: 'transient', headers: { 'retry-after': '1' }, cause }),
  internal: (message: string, code = 'ERR_INTERNAL', cause?: unknown) =>
    new FhirError(message, { status: 500, code, issueType: 'exception', cause }),
};

/**
 * Why a network call failed, in words one can act on: fetch (undici) says only "fetch failed" and puts the
 * reason (ECONNREFUSED, ENOTFOUND, a TLS error, a blocked port) in its cause.
 */
export function networkFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
