// The server's own profiles (profiles/): enforced when a resource claims them in meta.profile, ignored otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FhirError } from '../../src/errors.ts';
import { createValidator } from '../../src/fhir/validate.ts';
import { matchesPattern } from '../../src/fhir/validation/profiles.ts';

const PROFILES = path.resolve(import.meta.dirname, '../../profiles');
const SEALED = 'http://sealed-fhir.example/fhir/StructureDefinition/sealed-patient';

const validator = createValidator({ profilesDir: PROFILES });

const patient = (over: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  meta: { profile: [SEALED] },
  identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345' }],
  name: [{ family: 'Chalmers', given: ['Peter'] }],
  gender: 'male',
  birthDate: '1974-12-25',
  ...over,
});

const summary = (resource: unknown) => validator.validate(resource).map((i) => `${i.severity} ${i.code} ${i.expression?.[0]}`);

t.test('the shipped profiles load, and are valid StructureDefinitions themselves', async (t) => {
  t.same([...validator.profiles.keys()], [SEALED]);
  const sd = JSON.parse(fs.readFileSync(path.join(PROFILES, 'sealed-patient.json'), 'utf8'));
  t.same(validator.validate(sd), []);
});

t.test('SealedPatient: a conforming patient passes', async (t) => {
  t.same(validator.validate(patient()), []);
  t.same(validator.validate(patient({ meta: { profile: [`${SEALED}|0.1.0`] } })), [], 'a versioned canonical is the same profile');
});

t.test('SealedPatient: each rule is enforced when claimed', async (t) => {
  const table: [string, Record<string, unknown>, string[]][] = [
    ['no identifier', { identifier: undefined }, ['error required Patient.identifier']],
    ['identifier without system', { identifier: [{ value: '1' }] }, ['error required Patient.identifier[0].system']],
    ['second identifier without value', { identifier: [{ system: 'http://x.org/mrn', value: '1' }, { system: 'http://x.org/ssn' }] }, ['error required Patient.identifier[1].value']],
    ['relative system (sfp-1)', { identifier: [{ system: 'mrn', value: '1' }] }, ['error invariant Patient']],
    ['no name', { name: undefined }, ['error required Patient.name']],
    ['name with text only (sfp-2)', { name: [{ text: 'Peter Chalmers' }] }, ['error invariant Patient.name[0]']],
    ['no gender', { gender: undefined }, ['error required Patient.gender']],
    ['no birthDate', { birthDate: undefined }, ['error required Patient.birthDate']],
  ];
  for (const [name, over, expected] of table) {
    const issues = validator.validate(patient(over));
    t.same(issues.map((i) => `${i.severity} ${i.code} ${i.expression?.[0]}`), expected, name);
    t.ok(issues.every((i) => i.diagnostics?.endsWith('(profile SealedPatient)')), `${name}: the message names the profile`);
  }
  t.same(summary(patient({ birthDate: undefined, _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] } })), [], 'a primitive present only through its extension counts as present');
});

t.test('SealedPatient: ignored when not claimed', async (t) => {
  t.same(validator.validate({ resourceType: 'Patient' }), []);
  t.same(validator.validate({ resourceType: 'Patient', identifier: [{ value: '1' }] }), []);
});

t.test('claims that cannot apply', async (t) => {
  t.same(summary({ resourceType: 'Patient', meta: { profile: ['http://example.org/StructureDefinition/other'] } }), ['warning not-supported Patient.meta.profile[0]'], 'unknown profile: a warning');
  t.same(summary({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, meta: { profile: [SEALED] } }), ['error invalid Observation.meta.profile[0]'], 'profile of another type: an error');
  t.same(createValidator().validate(patient({ identifier: undefined })).map((i) => i.code), ['not-supported'], 'a validator without profiles warns');
});

function profileDir(t: { teardown(fn: () => void): void }, files: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealed-fhir-profiles-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

const VITAL = 'http://example.org/StructureDefinition/vital';
const vitalProfile = {
  resourceType: 'StructureDefinition',
  url: VITAL,
  name: 'Vital',
  status: 'draft',
  kind: 'resource',
  abstract: false,
  type: 'Observation',
  baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Observation',
  derivation: 'constraint',
  differential: {
    element: [
      { id: 'Observation.status', path: 'Observation.status', fixedCode: 'final' },
      {
        id: 'Observation.category',
        path: 'Observation.category',
        min: 1,
        patternCodeableConcept: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
      },
      { id: 'Observation.note', path: 'Observation.note', max: '0' },
      { id: 'Observation.identifier', path: 'Observation.identifier', max: '1' },
      { id: 'Observation.value[x]', path: 'Observation.value[x]', min: 1 },
      { id: 'Observation.component', path: 'Observation.component', min: 2 },
      { id: 'Observation.component:systolic', path: 'Observation.component', sliceName: 'systolic', min: 1 },
    ],
  },
};
const vital = (over: Record<string, unknown> = {}) => ({
  resourceType: 'Observation',
  meta: { profile: [VITAL] },
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }], text: 'Vital' }],
  code: { text: 'BP' },
  valueString: 'n/a',
  component: [{ code: { text: 'sys' } }, { code: { text: 'dia' } }],
  ...over,
});

t.test('fixed[x], pattern[x], min, max; slices are listed as not evaluated', async (t) => {
  const v = createValidator({ profilesDir: profileDir(t, { 'vital.json': vitalProfile, 'README.txt': 'not a profile' }) });
  t.same(v.profiles.get(VITAL)?.skippedElements, ['Observation.component:systolic']);
  t.same(v.validate(vital()), [], 'conforming');
  const table: [string, Record<string, unknown>, string[]][] = [
    ['fixed code differs', { status: 'amended' }, ['value Observation.status']],
    ['pattern not matched', { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }] }, ['value Observation.category[0]']],
    ['pattern element missing (min 1)', { category: undefined }, ['required Observation.category']],
    ['max 0', { note: [{ text: 'x' }] }, ['structure Observation.note']],
    ['max 1', { identifier: [{ value: '1' }, { value: '2' }] }, ['structure Observation.identifier']],
    ['choice required', { valueString: undefined }, ['required Observation.value[x]']],
    ['min 2', { component: [{ code: { text: 'sys' } }] }, ['required Observation.component']],
  ];
  for (const [name, over, expected] of table) {
    t.same(v.validate(vital(over)).map((i) => `${i.code} ${i.expression?.[0]}`), expected, name);
  }
});

t.test('pattern semantics', async (t) => {
  const cc = { coding: [{ system: 's', code: 'c' }] };
  t.ok(matchesPattern({ coding: [{ system: 'x', code: 'y' }, { system: 's', code: 'c', display: 'd' }], text: 't' }, cc), 'extra content and extra array items are fine');
  t.notOk(matchesPattern({ coding: [{ system: 's', code: 'd' }] }, cc), 'a differing value fails');
  t.notOk(matchesPattern({ text: 't' }, cc), 'a missing element fails');
  t.ok(matchesPattern('final', 'final'));
  t.notOk(matchesPattern(['final'], 'final'));
});

function startError(profilesDir: string): string | undefined {
  try {
    createValidator({ profilesDir });
    return undefined;
  } catch (err) {
    return err instanceof FhirError ? err.code : String(err);
  }
}

t.test('a profile file that cannot be used stops the start', async (t) => {
  const bad: [string, unknown][] = [
    ['not JSON', '{'],
    ['not a StructureDefinition', { resourceType: 'Patient' }],
    ['no url', { ...vitalProfile, url: undefined }],
    ['not a constraint', { ...vitalProfile, derivation: 'specialization' }],
    ['not a resource type', { ...vitalProfile, type: 'HumanName' }],
    ['broken invariant', { ...vitalProfile, differential: { element: [{ id: 'Observation', path: 'Observation', constraint: [{ key: 'x-1', severity: 'error', human: 'x', expression: 'status = ' }] }] } }],
  ];
  for (const [name, content] of bad) {
    const dir = profileDir(t, { 'p.json': content });
    t.equal(startError(dir), 'ERR_PROFILE_INVALID', name);
  }
  const dir = profileDir(t, { 'a.json': vitalProfile, 'b.json': vitalProfile });
  t.equal(startError(dir), 'ERR_PROFILE_INVALID', 'the same url twice');
  t.same([...createValidator({ profilesDir: path.join(dir, 'missing') }).profiles.keys()], [], 'a missing directory means no profiles');
});

t.test('arbitrary JSON never makes the validator throw', async (t) => {
  const fc = (await import('fast-check')).default;
  const fields = ['identifier', 'name', 'gender', 'birthDate', 'contained', 'extension', 'meta', 'contact', 'link', 'id', '_birthDate', 'text'];
  const body = fc.dictionary(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 4 }));
  fc.assert(
    fc.property(body, fc.constantFrom('Patient', 'Observation', 'Bundle'), (fieldsOf, resourceType) => {
      const claimed = { ...fieldsOf, resourceType, meta: { profile: [SEALED] } };
      validator.validate(claimed);
      validator.validate({ ...fieldsOf, resourceType });
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('no exception');
});
