/** The ledger's configuration: defaults, the derived origin, and every invalid value refused at start. */
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.ts';

t.test('defaults and the origin derived from BASE_URL', async (t) => {
  t.same(loadConfig({}).ledger, { origin: '127.0.0.1:8080/ledger', checkpointEntries: 1000, checkpointIntervalMs: 1000, verifyOnStart: 'full', allowTampered: false });
  t.equal(loadConfig({ BASE_URL: 'https://ehr.example.org/api/fhir' }).ledger.origin, 'ehr.example.org/api/ledger');
  t.match(loadConfig({
    LEDGER_ORIGIN: 'hospital.example/audit', LEDGER_CHECKPOINT_ENTRIES: '10', LEDGER_CHECKPOINT_INTERVAL_MS: '250',
    LEDGER_VERIFY_ON_START: 'tail', LEDGER_ALLOW_TAMPERED: '1',
  }).ledger, { origin: 'hospital.example/audit', checkpointEntries: 10, checkpointIntervalMs: 250, verifyOnStart: 'tail', allowTampered: true });
});

t.test('LevelDB open-file limit and write buffer: default, override, bounds', async (t) => {
  t.equal(loadConfig({}).levelMaxOpenFiles, 64);
  t.equal(loadConfig({ LEVELDB_MAX_OPEN_FILES: '1000' }).levelMaxOpenFiles, 1000);
  for (const value of ['8', '0', 'x', '1e9']) t.throws(() => loadConfig({ LEVELDB_MAX_OPEN_FILES: value }), ConfigError, value);
  t.equal(loadConfig({}).levelWriteBufferMiB, 32);
  t.equal(loadConfig({ LEVELDB_WRITE_BUFFER_MIB: '4' }).levelWriteBufferMiB, 4);
  for (const value of ['0', '-1', 'x', '4096', '1.5']) t.throws(() => loadConfig({ LEVELDB_WRITE_BUFFER_MIB: value }), ConfigError, value);
});

t.test('invalid values stop the server', async (t) => {
  for (const env of [
    { LEDGER_ORIGIN: 'has space' }, { LEDGER_ORIGIN: 'a+b' }, { LEDGER_CHECKPOINT_ENTRIES: '0' }, { LEDGER_CHECKPOINT_ENTRIES: 'x' },
    { LEDGER_CHECKPOINT_INTERVAL_MS: '5' }, { LEDGER_VERIFY_ON_START: 'none' }, { LEDGER_ALLOW_TAMPERED: 'yes' },
  ]) {
    t.throws(() => loadConfig(env), ConfigError, JSON.stringify(env));
  }
});

t.test('PORT=0 needs BASE_URL: the derived base URL, and so every token audience, would say port 0', async (t) => {
  t.throws(() => loadConfig({ PORT: '0' }), { name: 'ConfigError', message: /PORT=0 .*needs BASE_URL/ });
  const behindProxy = loadConfig({ PORT: '0', BASE_URL: 'https://ehr.example.org/fhir' });
  t.match(behindProxy, { port: 0, baseUrl: 'https://ehr.example.org/fhir', origin: 'https://ehr.example.org' });
  t.equal(loadConfig({ PORT: '9512' }).baseUrl, 'http://127.0.0.1:9512/fhir');
});
