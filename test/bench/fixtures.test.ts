/**
 * What the bench sends and samples: the create bodies are valid, distinct Patients (so a create benchmark never
 * counts rejections), and the /proc readers see a live process.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { PATIENT_FIXTURE, patientBodies } from '../../bench/fhir-scenarios.ts';
import { procCpuSeconds, procStatusBytes } from '../../bench/servers.ts';
import { createValidator } from '../../src/fhir/validate.ts';

t.test('create bodies: the fixture without its id, each with its own identifier, all valid', async (t) => {
  const fixture = JSON.parse(readFileSync(PATIENT_FIXTURE, 'utf8'));
  const next = patientBodies('run1');
  const bodies = Array.from({ length: 3 }, () => JSON.parse(next()));
  const validator = createValidator();
  for (const body of bodies) {
    t.equal(body.id, undefined, 'no id: the server assigns it');
    const { identifier, ...rest } = body;
    const { id: _id, identifier: fixtureIdentifier, ...fixtureRest } = fixture;
    t.same(rest, fixtureRest, 'everything else is the official example');
    t.same(identifier.slice(0, -1), fixtureIdentifier);
    t.same(validator.validate(body, { expectedType: 'Patient' }).filter((issue) => issue.severity === 'error' || issue.severity === 'fatal'), []);
  }
  t.same(bodies.map((b) => b.identifier.at(-1)), [1, 2, 3].map((n) => ({ system: 'urn:sealed-fhir:bench', value: `run1-${n}` })));
  t.not(JSON.parse(patientBodies('run2')()).identifier.at(-1).value, bodies[0].identifier.at(-1).value, 'runs do not collide');
});

t.test('/proc readers', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const rss = procStatusBytes(process.pid, 'VmRSS');
  const hwm = procStatusBytes(process.pid, 'VmHWM');
  t.ok(rss !== undefined && rss > 1024 * 1024, 'RSS of this process is over 1 MiB');
  t.ok(hwm !== undefined && rss !== undefined && hwm >= rss, 'peak RSS ≥ current RSS');
  const before = procCpuSeconds(process.pid)!;
  const end = Date.now() + 150;
  while (Date.now() < end) Math.sqrt(Math.random());
  t.ok(procCpuSeconds(process.pid)! > before, 'CPU time grows with work');
  t.equal(procStatusBytes(2 ** 22 + 1, 'VmRSS'), undefined, 'no such process');
  t.equal(procCpuSeconds(2 ** 22 + 1), undefined);
});
