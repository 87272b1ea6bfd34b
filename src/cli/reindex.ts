/**
 * `npm run reindex`: rebuilds the search index from the stored versions (src/fhir/search/reindex.ts), with a
 * progress bar on stderr. Uses the server's environment (DATA_DIR, MASTER_KEY_PASSPHRASE, IPFS_API_URL, BASE_URL);
 * stop the server first (LevelDB admits one process).
 */
import { buildApp } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { reindex } from '../fhir/search/reindex.ts';
import { progressBar } from './progress.ts';

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write('Usage: npm run reindex\n\nRebuilds the search index of the node in $DATA_DIR from its stored versions. Stop the server first.\n');
    return;
  }
  const config = loadConfig();
  const app = await buildApp(config, { logger: false });
  try {
    const bar = progressBar('reindex');
    const started = Date.now();
    const result = await reindex(app.db, app.repo, app.ledger, ({ done, total }) => bar.update(done, total));
    bar.finish();
    process.stderr.write(`reindexed ${result.resources.toLocaleString('en-US')} resources (${result.entries.toLocaleString('en-US')} index entries) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } finally {
    await app.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof ConfigError ? 'configuration: ' : ''}${(err as Error).message}\n`);
  process.exitCode = 1;
});
