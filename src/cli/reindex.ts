/**
 * `npm run reindex`: rebuilds the search index from the stored versions (src/fhir/search/reindex.ts), with a
 * progress bar on stderr. `npm run reindex -- --check` changes nothing: it compares the live index with the one
 * the stored versions give and exits 1 on any difference. Uses the server's environment (DATA_DIR,
 * MASTER_KEY_PASSPHRASE, IPFS_API_URL, BASE_URL); stop the server first (LevelDB admits one process).
 */
import { buildApp } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { checkSearchIndex } from '../fhir/search/index-check.ts';
import { reindex } from '../fhir/search/reindex.ts';
import { isLockedError } from '../storage/db.ts';
import { progressBar } from './progress.ts';

const USAGE = `Usage: npm run reindex [-- --check]

Rebuilds the search index of the node in $DATA_DIR from its stored versions. Stop the server first.
--check  change nothing: compare the live index with a rebuild (exit 1 on any difference)
`;

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, out: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(USAGE);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length) {
    out(`unknown argument ${unknown[0]}\n${USAGE}`);
    return 2;
  }
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp(loadConfig(env), { logger: false, allowOtherIndexFormat: true });
  } catch (err) {
    if (!isLockedError(err)) throw err;
    out('reindex: the data dir is in use by another process (a running server, an import or a reindex): LevelDB allows one at a time. Stop the server first.');
    return 2;
  }
  try {
    if (argv.includes('--check')) {
      const result = await checkSearchIndex(app.repo, out);
      // It decrypted every current resource: like the rebuild, that is one audited read.
      await app.ledger.commit({ entries: [{ interaction: 'reindex-check', status: result.problems.length === 0 ? 200 : 500, agent: { sub: 'reindex' } }], ops: () => [] });
      out(result.problems.length === 0 ? `OK: the index matches the stored versions (${result.resources} resources)` : `FAIL: ${result.problems.length} problem(s)`);
      return result.problems.length === 0 ? 0 : 1;
    }
    const bar = progressBar('reindex');
    const started = Date.now();
    const result = await reindex(app.db, app.repo, app.ledger, ({ done, total }) => bar.update(done, total));
    bar.finish();
    out(`reindexed ${result.resources.toLocaleString('en-US')} resources (${result.entries.toLocaleString('en-US')} index entries) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    await app.close();
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`${err instanceof ConfigError ? 'configuration: ' : ''}${(err as Error).message}\n`);
    return 1;
  });
}
