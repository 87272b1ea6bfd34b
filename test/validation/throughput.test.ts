// A quick micro-run of validations per second (printed as comments; no timing is asserted). Each measured
// resource must be valid, so a regression that makes them fail is caught here too.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createValidator, type Validator } from '../../src/fhir/validate.ts';

const DIR = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');
const load = (file: string) => JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as Record<string, unknown>;

const patient = load('Patient-f001.json');
const observation = load('Observation-f001.json');
const pool = fs.readdirSync(DIR).filter((f) => /^(Patient|Observation)-/.test(f)).map(load);
const bundle = {
  resourceType: 'Bundle',
  type: 'transaction',
  entry: Array.from({ length: 100 }, (_, i) => {
    const resource = pool[i % pool.length]!;
    return { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource, request: { method: 'POST', url: resource.resourceType } };
  }),
};

function rate(validator: Validator, resource: unknown, ms: number): number {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    validator.validate(resource);
    n++;
  }
  return Math.round(n / ((performance.now() - start) / 1000));
}

t.test('validations per second', async (t) => {
  const started = performance.now();
  const full = createValidator();
  const schemaAndWalk = createValidator({ invariants: false });
  t.comment(`createValidator: ${Math.round(performance.now() - started)} ms for two (the schema code is shared)`);
  for (const [name, resource] of [['Patient', patient], ['Observation', observation], ['Bundle of 100', bundle]] as const) {
    t.same(full.validate(resource), [], `${name} is valid`);
    t.comment(`${name}: ${rate(full, resource, 400)}/s with invariants, ${rate(schemaAndWalk, resource, 400)}/s without`);
  }
});
