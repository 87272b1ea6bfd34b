/**
 * Crash safety of the atomic commit, the short form of `npm run test:crash` (test/stress/crash.ts): a real server
 * process under creates, updates and transactions is SIGKILLed at a random moment, three rounds; after each
 * restart every acknowledged write is readable at its version and in the ledger, nothing is half-visible, the
 * index matches the stored versions and the ledger verifies.
 */
import t from 'tap';
import { checkStore, runCrashRounds } from '../stress/crash.ts';
import { startServer } from '../helpers/server.ts';

// Three server processes start and die here: on a loaded 2-core machine that can take minutes.
t.setTimeout(300_000);

t.test('SIGKILL under write load loses no acknowledged write', async (t) => {
  const result = await runCrashRounds({ rounds: 3, killAfterMs: [200, 1000], log: (line) => t.comment(line) });
  t.ok(result.rounds.every((r) => r.acked > 0), 'every round acknowledged writes before its kill');
  t.same(result.violations, []);
});

t.test('the check finds a lost acknowledged write and a half-visible transaction', async (t) => {
  const server = await startServer(t);
  const created = await server.fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', identifier: [{ system: 'urn:crash', value: 'x-0' }] } });
  const content = { resourceType: 'Patient', id: created.body.id, identifier: [{ system: 'urn:crash', value: 'x-0' }] };
  const { violations } = await checkStore(server.app, {
    known: new Map(),
    attempts: [
      { kind: 'create', tags: ['x-0'], acked: [{ type: 'Patient', id: created.body.id, version: 1, content }] },
      { kind: 'create', tags: ['x-1'], acked: [{ type: 'Patient', id: 'never-written', version: 1, content: {} }] },
      { kind: 'transaction', tags: ['x-0', 'x-2'] },
      { kind: 'update', tags: ['x-0'], refused: 412 },
    ],
  });
  t.same(violations.sort(), [
    'acknowledged Patient/never-written/1 has no ledger entry',
    'acknowledged Patient/never-written/1 is newer than the head (undefined)',
    'acknowledged Patient/never-written/1 is not readable',
    'transaction x-0 is half-visible: 1 of 2 resources stored',
    'update x-0 was refused (412) but is stored',
  ]);
});
