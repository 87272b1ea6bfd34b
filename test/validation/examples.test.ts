// Every official R4 example (test/fixtures/fhir-r4-examples, see SOURCE.md) is accepted, or is listed in
// test/fixtures/fhir-r4-examples/rejected.ts with the exact reason it breaks the R4 specification itself.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createValidator } from '../../src/fhir/validate.ts';
import { REJECTED_EXAMPLES as REJECTED } from '../fixtures/fhir-r4-examples/rejected.ts';

const DIR = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');

/** Profiles some examples claim that this server does not have: a warning each, never an error. */
const UNKNOWN_PROFILES = new Set([
  'http://hl7.org/fhir/StructureDefinition/vitalsigns',
  'http://hl7.org/fhir/StructureDefinition/cqf-questionnaire',
]);

const validator = createValidator();
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

t.test('the fixtures are all there', async (t) => {
  t.ok(files.length >= 422, `${files.length} examples`);
  for (const name of Object.keys(REJECTED)) t.ok(files.includes(name), `${name} exists`);
});

t.test('each example is accepted or rejected for its listed reason', async (t) => {
  let accepted = 0;
  for (const file of files) {
    const resource = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as { resourceType: string; id: string };
    // As an update of its own URL would be: the type and the id must agree with it.
    const issues = validator.validate(resource, { expectedType: resource.resourceType, expectedId: resource.id });
    const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    const warnings = issues.filter((i) => i.severity === 'warning');
    const listed = REJECTED[file];
    if (listed) {
      t.same(errors.map((i) => [i.code, i.expression?.[0]]), listed.issues, `${file} is rejected: ${listed.reason}`);
    } else {
      t.same(errors.map((i) => i.diagnostics), [], `${file} is accepted`);
      accepted++;
    }
    for (const w of warnings) {
      const profile = /Profile '([^']+)' is not known/.exec(w.diagnostics ?? '')?.[1];
      t.ok(profile && UNKNOWN_PROFILES.has(profile), `${file}: only unknown-profile warnings (${w.diagnostics})`);
    }
  }
  t.equal(accepted, files.length - Object.keys(REJECTED).length);
});
