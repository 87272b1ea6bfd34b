/**
 * `npm run -s token -- --scope "<scopes>" …`: prints an access token from the node's development issuer.
 * Only the token goes to stdout, so `TOKEN=$(npm run -s token -- …)` works; hints and errors go to stderr.
 * Reads the same environment as the server (DATA_DIR, BASE_URL, PORT, HOST) so that the token's `aud` and
 * `iss` match it, and creates the issuer key if the server has not yet done so.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { FhirError } from '../errors.ts';
import { DEV_TOKEN_DEFAULT_CLIENT_ID, DEV_TOKEN_DEFAULT_TTL, DEV_TOKEN_MAX_TTL, loadDevIssuer } from '../consent/dev-issuer.ts';
import type { DevTokenRequest } from '../consent/dev-issuer.ts';
import { FHIR_ID, isFhirUserReference, splitScope } from '../consent/principal.ts';

const USAGE = `Usage: npm run -s token -- [options]

Prints a signed access token from this node's development issuer (key in $DATA_DIR/keys).

Options:
  --scope <scopes>       space-separated SMART scopes. Default: "patient/*.cruds" with --patient,
                         else "user/*.cruds" with --fhir-user, else "system/*.cruds" (full access)
  --patient <id>         patient launch context (a Patient id)
  --fhir-user <ref>      the user, e.g. Practitioner/123 (Patient, Practitioner, PractitionerRole,
                         RelatedPerson or Person)
  --ttl <seconds>        lifetime, 1 to ${DEV_TOKEN_MAX_TTL} (default ${DEV_TOKEN_DEFAULT_TTL})
  --sub <subject>        token subject (default: the --fhir-user reference, else "dev-cli")
  --client-id <id>       client_id claim (default "${DEV_TOKEN_DEFAULT_CLIENT_ID}")
  -h, --help             this text

Uses the server's environment (DATA_DIR, BASE_URL, PORT, HOST); tokens are only accepted by a server
started with the same values and with DEV_ISSUER not set to "off".

Example:
  TOKEN=$(npm run -s token -- --scope "patient/*.rs" --patient example)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/fhir/Patient/example
`;

/** A mistake in the command line: reported with a pointer to --help and exit code 2. */
export class UsageError extends Error {}

function parseTtl(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > DEV_TOKEN_MAX_TTL) {
    throw new UsageError(`--ttl must be a whole number of seconds from 1 to ${DEV_TOKEN_MAX_TTL}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** Turns the command line into a token request (defaults applied), or 'help'; throws UsageError. */
export function parseTokenArgs(argv: string[]): DevTokenRequest | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        scope: { type: 'string' },
        patient: { type: 'string' },
        'fhir-user': { type: 'string' },
        ttl: { type: 'string' },
        sub: { type: 'string' },
        'client-id': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const patient = values.patient;
  const fhirUser = values['fhir-user'];
  const defaultScope = patient !== undefined ? 'patient/*.cruds' : fhirUser !== undefined ? 'user/*.cruds' : 'system/*.cruds';
  const request: DevTokenRequest = {
    sub: values.sub ?? fhirUser ?? 'dev-cli',
    scope: values.scope ?? defaultScope,
  };
  if (!splitScope(request.scope)?.length) {
    throw new UsageError('--scope must hold one or more space-separated scopes (printable ASCII, no quotes or backslashes)');
  }
  if (patient !== undefined && !FHIR_ID.test(patient)) {
    throw new UsageError(`--patient must be a Patient id (letters, digits, "-" and ".", at most 64), got ${JSON.stringify(patient)}`);
  }
  if (fhirUser !== undefined && !isFhirUserReference(fhirUser)) {
    throw new UsageError(`--fhir-user must be a reference such as Practitioner/123, got ${JSON.stringify(fhirUser)}`);
  }
  if (values.sub === '' || values['client-id'] === '') throw new UsageError('--sub and --client-id must not be empty');
  const ttlSeconds = parseTtl(values.ttl);
  if (ttlSeconds !== undefined) request.ttlSeconds = ttlSeconds;
  if (patient !== undefined) request.patient = patient;
  if (fhirUser !== undefined) request.fhirUser = fhirUser;
  if (values['client-id'] !== undefined) request.clientId = values['client-id'];
  return request;
}

async function main(argv: string[]): Promise<number> {
  let request: DevTokenRequest | 'help';
  try {
    request = parseTokenArgs(argv);
  } catch (error) {
    process.stderr.write(`token: ${(error as Error).message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (request === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const config = loadConfig();
    if (!config.devIssuer) {
      process.stderr.write('token: DEV_ISSUER is "off", so the server would reject tokens from the development issuer.\n');
      return 1;
    }
    const issuer = await loadDevIssuer(config);
    const token = await issuer.sign(request);
    process.stdout.write(`${token}\n`);
    const ttl = request.ttlSeconds ?? DEV_TOKEN_DEFAULT_TTL;
    process.stderr.write(
      `token: scope "${request.scope}", sub ${request.sub}, valid ${ttl} s, for ${config.baseUrl}\n` +
        `       send it as: Authorization: Bearer $TOKEN  (e.g. curl -H "Authorization: Bearer $TOKEN" ${config.baseUrl}/Patient)\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof FhirError && error.status === 400) {
      process.stderr.write(`token: ${error.message}\nRun with --help for usage.\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof FhirError || isSystemError(error)) {
      process.stderr.write(`token: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  }
}

/** A file-system refusal (the data dir or its keys cannot be made or read), alone or as the cause: one line, no stack. */
function isSystemError(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  }
  return false;
}

// Imported by the tests for parseTokenArgs; run only as the program itself.
if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
