/**
 * `npm run verify -- …`: verifies the ledger from outside the server and exits non-zero on any failure.
 *   --url <BASE_URL> --key <verifier key> [--token <access token>]   a running node, through the auditor API
 *   --data-dir <dir> [--key <verifier key>] [--skip-blocks]         a stopped node's store, offline (--skip-blocks:
 *                                                                   no IPFS block checks, for nodes whose blocks live on Kubo);
 *                                                                   with MASTER_KEY_PASSPHRASE set, also every wrapped key
 *   --bundle <file> [--key <verifier key>]                          one offline proof bundle
 * The verifier key is `name+keyid+base64(0x01‖pubkey)` as `GET /ledger/key` serves it; pin your own copy.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkKeys } from '../fhir/key-check.ts';
import { checkRecords } from '../fhir/store-check.ts';
import { verifyBundle, type ProofBundle } from '../ledger/bundle.ts';
import { fsck } from '../ledger/fsck.ts';
import { parseVerifierKey, verifierKeyString, type NoteVerifier } from '../ledger/note.ts';
import { verifyRemote } from '../ledger/remote-verify.ts';
import { openDatabase } from '../storage/db.ts';
import { openKeyFile, type KeyStore } from '../storage/keyring.ts';
import { checkLevelDbFiles } from '../storage/leveldb-files.ts';
import { isHeldByAnotherProcess, privateStoreCopy } from '../storage/store-copy.ts';

const USAGE = `usage:
  npm run verify -- --url <BASE_URL> --key <verifier key> [--token <token>]   (token also from LEDGER_TOKEN)
  npm run verify -- --data-dir <dir> [--key <verifier key>] [--skip-blocks]
      (set MASTER_KEY_PASSPHRASE to also check that every KEK and wrapped data key unwraps)
  npm run verify -- --bundle <file> [--key <verifier key>]
Exit status: 0 verified, 1 verification failed, 2 usage error.`;

class UsageError extends Error {}

function keyOf(text: string | undefined): NoteVerifier | undefined {
  if (text === undefined) return undefined;
  try {
    return parseVerifierKey(text);
  } catch (err) {
    throw new UsageError(`--key: ${(err as Error).message}`);
  }
}

export async function main(argv: string[], out: (line: string) => void = console.log, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        token: { type: 'string' },
        'data-dir': { type: 'string' },
        bundle: { type: 'string' },
        'skip-blocks': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
    if (values.help) {
      out(USAGE);
      return 0;
    }
    const modes = [values.url, values['data-dir'], values.bundle].filter((v) => v !== undefined);
    if (modes.length !== 1) throw new UsageError('give exactly one of --url, --data-dir, --bundle');
    const verifier = keyOf(values.key);

    if (values.url !== undefined) {
      if (!verifier) throw new UsageError('--url needs --key (the verifier key you trust)');
      const result = await verifyRemote({ url: values.url, token: values.token ?? process.env.LEDGER_TOKEN, verifier, log: out });
      if (result.ok) {
        out(`OK: ${result.size} entries and ${result.checkpoints} checkpoints verified`);
        return 0;
      }
      out(`FAIL ${result.code}${result.index !== undefined ? ` (first bad index ${result.index})` : ''}: ${result.message}`);
      return 1;
    }

    if (values['data-dir'] !== undefined) {
      const dir = path.resolve(values['data-dir']);
      // Opening a missing store would create an empty one, and an empty log verifies: a mistyped path must not pass.
      if (!(await fs.stat(path.join(dir, 'db', 'CURRENT')).catch(() => undefined))) {
        throw new UsageError(`--data-dir ${dir} holds no node store (no db/CURRENT): is the path right?`);
      }
      if (await isHeldByAnotherProcess(path.join(dir, 'db'))) {
        throw new UsageError(`--data-dir ${dir} is in use by a running server: stop it first, or verify it online with --url`);
      }
      // The master key first (scrypt, ~0.5 s): a wrong passphrase is the caller's mistake, told before any long check.
      // Without it the wrapped keys cannot be checked, and the output says so rather than pass over them in silence.
      // A development node keeps its generated passphrase beside the key (keyring.ts): the server uses it, so may we.
      const devPassphrase = await fs.readFile(path.join(dir, 'keys', 'master.passphrase'), 'utf8').then((p) => p.trim(), () => undefined);
      // Empty counts as not set, as the server's configuration reads it (config.ts).
      const given = env.MASTER_KEY_PASSPHRASE || undefined;
      if (given === undefined && devPassphrase !== undefined) out('note: MASTER_KEY_PASSPHRASE is not set: using the development passphrase file keys/master.passphrase');
      const passphrase = given ?? devPassphrase;
      let keyStore: KeyStore | undefined;
      if (passphrase !== undefined) {
        try {
          keyStore = await openKeyFile({ dataDir: dir, passphrase, warn: (m) => out(`note: ${m}`), existingOnly: true });
        } catch (err) {
          throw new UsageError(`MASTER_KEY_PASSPHRASE is set but the master key cannot be opened: ${(err as Error).message}`);
        }
      }
      // LevelDB's own checksums first, on the node's files as they are.
      const files = await checkLevelDbFiles(path.join(dir, 'db'), { tables: true });
      for (const p of files) out(`${p.at}: ${p.code} ${p.message}`);
      out(`files: ${files.length === 0 ? 'every log record and table block matches its checksum' : `${files.length} problem(s)`}`);
      // Then the content, from a private copy: opening the node's own directory would let LevelDB's recovery
      // rewrite it and drop a bad log record for good, so that the next run found nothing (store-copy.ts).
      const copy = await privateStoreCopy(path.join(dir, 'db'));
      // Shared with the verifier's worker threads (one chunk of the log each).
      const db = await openDatabase(copy.dir, { multithreading: true }).catch(async (err: unknown) => {
        await copy.remove();
        throw err;
      });
      try {
        if (!verifier) out('note: no --key given: trusting the verifier keys recorded in the store itself');
        const report = await fsck(db, { ...(verifier ? { verifiers: [verifier] } : {}), blocks: values['skip-blocks'] ? 'none' : 'all', log: out });
        const records = await checkRecords(db, out);
        const keys = keyStore ? await checkKeys(db, keyStore, out) : undefined;
        if (!keys) {
          out(
            'keys: NOT CHECKED: MASTER_KEY_PASSPHRASE is not set, so no KEK and no wrapped data key was unwrapped. A damaged ' +
              "one leaves its versions unreadable (500 on read) and is not found without the master key; nor is a changed " +
              "version record's lastUpdated or method. Set MASTER_KEY_PASSPHRASE to check them (the server's full start-up check does).",
          );
        }
        report.problems.unshift(...files, ...records.problems, ...(keys?.problems ?? []));
        report.ok = report.problems.length === 0;
        if (report.ok) {
          const keyPart = keys ? `, ${keys.keks} KEKs and ${keys.dataKeys} data keys` : '';
          out(`OK: ${report.size} entries, ${report.checkpoints} checkpoints, ${report.blocks} blocks${keyPart} verified${keys ? '' : '; wrapped keys NOT checked (no MASTER_KEY_PASSPHRASE)'}`);
          return 0;
        }
        const first = report.problems.find((p) => p.index !== undefined);
        out(`FAIL: ${report.problems.length} problem(s)${first ? `; first bad index ${first.index} (${first.code})` : ''}`);
        for (const p of report.problems.slice(0, 50)) out(`  ${p.code}${p.index !== undefined ? ` index ${p.index}` : ''}${p.at ? ` at ${p.at}` : ''}: ${p.message}`);
        return 1;
      } finally {
        await db.close();
        await copy.remove();
      }
    }

    const text = await fs.readFile(values.bundle!, 'utf8');
    let bundle: ProofBundle | string = text;
    try {
      bundle = JSON.parse(text) as ProofBundle;
    } catch {
      // the C2SP text form
    }
    let trusted = verifier;
    if (trusted && typeof bundle !== 'string' && typeof bundle.key === 'string' && bundle.key !== verifierKeyString(trusted.name, trusted.publicKey)) {
      // Harmless (the bundle's key is never trusted when --key is given), but worth knowing: a bundle from another node?
      out(`note: the bundle names another key (${bundle.key.slice(0, 60)}); verifying against --key only`);
    }
    if (!trusted) {
      if (typeof bundle === 'string' || typeof bundle.key !== 'string') throw new UsageError('--bundle needs --key for a bundle that names no key');
      out('note: no --key given: trusting the key the bundle names (pin your own copy with --key)');
      trusted = keyOf(bundle.key)!;
    }
    const result = verifyBundle(bundle, trusted);
    if (result.ok) {
      out(`OK: entry ${result.index} (leaf ${result.leafHash}) is in the tree of size ${result.size} signed by ${trusted.name}`);
      return 0;
    }
    out(`FAIL ${result.code}: ${result.message}`);
    return 1;
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      out(`${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    // LevelDB refusing its own files (a table whose footer is damaged, a broken MANIFEST) is a finding, not a crash.
    const corrupt = (err as { code?: string }).code === 'LEVEL_CORRUPTION' || /Corruption:/.test((err as Error).message);
    out(corrupt ? `FAIL ERR_STORE_CORRUPT: LevelDB cannot read the store's files: ${(err as Error).message}` : `FAIL: ${(err as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
