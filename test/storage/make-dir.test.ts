/**
 * makeDirectory: mkdir -p that refuses, quickly and by name, the paths where Node's recursive mkdir loops forever
 * (a parent that exists but answers ENOENT for the child: procfs), and the start with them.
 */
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDevIssuer } from '../../src/consent/dev-issuer.ts';
import { makeDirectory } from '../../src/storage/make-dir.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sealed-make-dir-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));

t.test('creates every missing level with the mode; an existing directory is fine, a file in the way is not', async (t) => {
  const dir = path.join(root, 'a', 'b', 'c');
  await makeDirectory(dir, 0o700);
  t.equal((await fs.stat(dir)).mode & 0o777, 0o700);
  t.equal((await fs.stat(path.join(root, 'a'))).mode & 0o777, 0o700);
  await makeDirectory(dir, 0o700);
  await fs.writeFile(path.join(root, 'file'), '');
  await t.rejects(makeDirectory(path.join(root, 'file'), 0o700), { message: /cannot create directory .*file \(EEXIST\): something that is not a directory/ });
  await t.rejects(makeDirectory(path.join(root, 'file', 'x'), 0o700), { message: /\(ENOTDIR\)/ });
});

t.test('a dangling symlink as parent is named, not followed', async (t) => {
  await fs.symlink(path.join(root, 'nowhere'), path.join(root, 'dangling'));
  await t.rejects(makeDirectory(path.join(root, 'dangling', 'data'), 0o700), { message: /dangling \(EEXIST\): something that is not a directory/ });
});

t.test('DATA_DIR under /proc: the start fails with a clear message, as does the token CLI issuer', { skip: !existsSync('/proc/self') && 'no procfs here' }, async (t) => {
  await t.rejects(makeDirectory('/proc/sealed-fhir-test/data', 0o700), { message: /\/proc\/sealed-fhir-test \(ENOENT\)/ });
  const config = loadConfig({ DATA_DIR: '/proc/sealed-fhir-test', MASTER_KEY_PASSPHRASE: 'test passphrase', LOG_LEVEL: 'silent' });
  await t.rejects(buildApp(config, { logger: false }), { message: /^DATA_DIR \/proc\/sealed-fhir-test cannot be used: cannot create directory \/proc\/sealed-fhir-test \(ENOENT\)/ });
  await t.rejects(loadDevIssuer(config), { message: /cannot create directory \/proc\/sealed-fhir-test/ });
});
