import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseTokenArgs, UsageError } from '../../src/cli/token.ts';
import type { DevTokenRequest } from '../../src/consent/dev-issuer.ts';
import { createTokenVerifier } from '../../src/consent/token.ts';
import { configFor, tempDir } from './fixtures/helpers.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const node = path.join(root, 'node_modules/.bin/node');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>): Promise<Run> {
  // Only what the CLI needs: the caller's BASE_URL, TRUSTED_ISSUERS … must not leak into the test.
  const childEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env };
  return new Promise((resolve) => {
    execFile(node, ['src/cli/token.ts', ...args], { cwd: root, env: childEnv, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const dir = await tempDir(t);
const env = { DATA_DIR: dir };
const config = configFor(dir);

t.test('prints only a token, which the verifier accepts', async (t) => {
  const args = ['--scope', 'patient/*.rs launch/patient', '--patient', 'example', '--fhir-user', 'Practitioner/dr1'];
  const result = await run([...args, '--ttl', '600', '--sub', 'alice', '--client-id', 'app-1'], env);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'one line, the token alone');
  t.match(result.stderr, /patient\/\*\.rs launch\/patient/, 'a hint on stderr');

  const verifier = await createTokenVerifier({ config });
  const principal = await verifier.verify(`Bearer ${result.stdout.trim()}`);
  t.match(principal, {
    sub: 'alice',
    issuer: `${config.origin}/dev-issuer`,
    scopes: ['patient/*.rs', 'launch/patient'],
    patient: 'example',
    fhirUser: 'Practitioner/dr1',
    clientId: 'app-1',
  });
  const lifetime = principal.expiresAt.getTime() / 1000 - (principal.claims.iat as number);
  t.equal(lifetime, 600);
});

t.test('parseTokenArgs: defaults follow the launch context given', async (t) => {
  const cases: Array<[string[], DevTokenRequest | 'help']> = [
    [[], { sub: 'dev-cli', scope: 'system/*.cruds' }],
    [['--patient', 'p1'], { sub: 'dev-cli', scope: 'patient/*.cruds', patient: 'p1' }],
    [['--fhir-user', 'Practitioner/dr2'], { sub: 'Practitioner/dr2', scope: 'user/*.cruds', fhirUser: 'Practitioner/dr2' }],
    [['--scope', 'user/*.rs', '--fhir-user', 'Patient/p1', '--patient', 'p1', '--sub', 's', '--client-id', 'c', '--ttl', '86400'], {
      sub: 's', scope: 'user/*.rs', fhirUser: 'Patient/p1', patient: 'p1', clientId: 'c', ttlSeconds: 86_400,
    }],
    [['--scope=system/Patient.rs'], { sub: 'dev-cli', scope: 'system/Patient.rs' }],
    [['-h'], 'help'],
  ];
  for (const [args, expected] of cases) t.same(parseTokenArgs(args), expected, args.join(' ') || '(no options)');
});

t.test('parseTokenArgs: bad arguments are usage errors that say why', async (t) => {
  const cases: Array<[string, string[], RegExp]> = [
    ['ttl zero', ['--ttl', '0'], /--ttl/],
    ['ttl over a day', ['--ttl', '86401'], /--ttl/],
    ['ttl not a number', ['--ttl', '1h'], /--ttl/],
    ['ttl negative', ['--ttl=-5'], /--ttl/],
    ['empty scope', ['--scope', ''], /--scope/],
    ['scope with a quote', ['--scope', 'a"b'], /--scope/],
    ['patient a reference', ['--patient', 'Patient/1'], /--patient/],
    ['fhir-user of a wrong type', ['--fhir-user', 'Organization/1'], /--fhir-user/],
    ['fhir-user without id', ['--fhir-user', 'Practitioner'], /--fhir-user/],
    ['empty sub', ['--sub', ''], /--sub/],
    ['empty client id', ['--client-id', ''], /--client-id/],
    ['unknown option', ['--audience', 'x'], /audience/],
    ['positional', ['system/*.rs'], /positional/],
    ['option without value', ['--scope'], /scope/],
  ];
  for (const [name, args, message] of cases) {
    let error: unknown;
    try {
      parseTokenArgs(args);
    } catch (caught) {
      error = caught;
    }
    t.ok(error instanceof UsageError, `${name}: a usage error`);
    t.match((error as Error | undefined)?.message, message, `${name}: says why`);
  }
});

t.test('as a program: bad arguments exit 2 with no token on stdout', async (t) => {
  const results = await Promise.all([run(['--ttl', '0'], env), run(['--bogus'], env)]);
  for (const result of results) {
    t.equal(result.code, 2);
    t.equal(result.stdout, '');
    t.match(result.stderr, /--help/);
  }
});

t.test('help, a disabled dev issuer and a bad environment', async (t) => {
  const [help, off, badEnv] = await Promise.all([
    run(['--help'], env),
    run([], { ...env, DEV_ISSUER: 'off' }),
    run([], { ...env, BASE_URL: 'http://127.0.0.1:8080/api' }),
  ]);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: .*--scope.*--patient.*--fhir-user.*--ttl.*--sub.*--client-id/s);
  t.equal(off.code, 1);
  t.equal(off.stdout, '');
  t.match(off.stderr, /DEV_ISSUER/);
  t.equal(badEnv.code, 1);
  t.equal(badEnv.stdout, '');
  t.match(badEnv.stderr, /BASE_URL/);
});

t.test('a data dir that cannot be made is one line on stderr, exit 1, no stack trace', async (t) => {
  const blocker = path.join(dir, 'a-file');
  await fs.writeFile(blocker, '');
  const result = await run([], { DATA_DIR: path.join(blocker, 'data') });
  t.equal(result.code, 1);
  t.equal(result.stdout, '', 'no token');
  t.match(result.stderr, /^token: cannot create directory .*a-file\/data.* \(ENOTDIR\)/);
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
});
