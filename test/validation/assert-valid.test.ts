// assertValid: 400 for bodies that are not the resource the URL is about, 422 for invalid resources; how meta is treated.
import t from 'tap';
import { FhirError } from '../../src/errors.ts';
import { createValidator, RESOURCE_TYPES, isResourceType, type ValidateOptions } from '../../src/fhir/validate.ts';

const validator = createValidator();

function thrown(resource: unknown, options?: ValidateOptions): FhirError | undefined {
  try {
    validator.assertValid(resource, options);
    return undefined;
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
}

t.test('not a resource of the expected kind: 400 with a stable code', async (t) => {
  const table: [string, unknown, ValidateOptions, string][] = [
    ['a string', 'Patient', {}, 'ERR_NOT_A_RESOURCE'],
    ['null', null, {}, 'ERR_NOT_A_RESOURCE'],
    ['an array', [{ resourceType: 'Patient' }], {}, 'ERR_NOT_A_RESOURCE'],
    ['no resourceType', { name: [{ family: 'x' }] }, {}, 'ERR_NOT_A_RESOURCE'],
    ['resourceType not a string', { resourceType: 7 }, {}, 'ERR_NOT_A_RESOURCE'],
    ['unknown resourceType', { resourceType: 'Patients' }, {}, 'ERR_RESOURCE_TYPE'],
    ['type of another URL', { resourceType: 'Patient' }, { expectedType: 'Observation' }, 'ERR_RESOURCE_TYPE_MISMATCH'],
    ['id of another URL', { resourceType: 'Patient', id: 'a' }, { expectedType: 'Patient', expectedId: 'b' }, 'ERR_ID_MISMATCH'],
    ['update without id', { resourceType: 'Patient' }, { expectedType: 'Patient', expectedId: 'b' }, 'ERR_ID_MISSING'],
    ['too deep', { resourceType: 'Patient', name: [{ period: { start: '2020' } }] }, { maxDepth: 3 }, 'ERR_TOO_DEEP'],
  ];
  for (const [name, resource, options, code] of table) {
    const err = thrown(resource, options);
    t.equal(err?.status, 400, `${name}: 400`);
    t.equal(err?.code, code, `${name}: ${code}`);
  }
});

t.test('an invalid resource: 422 carrying every issue', async (t) => {
  const err = thrown({ resourceType: 'Observation', code: { text: 'x' }, effectiveDateTime: '2023-02-30' });
  t.equal(err?.status, 422);
  t.equal(err?.code, 'ERR_VALIDATION');
  t.same(err?.issues.map((i) => i.expression?.[0]).sort(), ['Observation.effectiveDateTime', 'Observation.status']);
});

t.test('warnings alone do not fail', async (t) => {
  const resource = { resourceType: 'Patient', meta: { profile: ['http://example.org/StructureDefinition/unknown'] } };
  t.equal(thrown(resource), undefined);
  t.same(validator.validate(resource).map((i) => [i.severity, i.code, i.expression]), [
    ['warning', 'not-supported', ['Patient.meta.profile[0]']],
  ]);
});

t.test('the default depth limit', async (t) => {
  let ext: Record<string, unknown> = { url: 'http://x', valueString: 'leaf' };
  for (let i = 0; i < 40; i++) ext = { url: 'http://x', extension: [ext] };
  t.equal(thrown({ resourceType: 'Patient', extension: [ext] })?.code, 'ERR_TOO_DEEP', '82 levels > 64');
  t.equal(thrown({ resourceType: 'Patient', extension: [ext] }, { maxDepth: 100 }), undefined, 'allowed with a higher limit');
});

t.test('meta: versionId and lastUpdated are the server’s, the rest is the client’s', async (t) => {
  // The repository overwrites both on every write, so whatever a client sends there is not its concern.
  t.same(validator.validate({ resourceType: 'Patient', meta: { versionId: 'not an id!', lastUpdated: 'yesterday' } }), []);
  t.same(validator.validate({ resourceType: 'Patient', meta: { _lastUpdated: { extension: [] } } }), [], 'even their extensions');
  const tag = validator.validate({ resourceType: 'Patient', meta: { versionId: 'x y', tag: [{ system: 'http://x', code: 'a b ' }] } });
  t.same(tag.map((i) => i.expression?.[0]), ['Patient.meta.tag[0].code'], 'tags are validated');
  const security = validator.validate({ resourceType: 'Patient', meta: { security: 'R' } });
  t.same(security.map((i) => i.expression?.[0]), ['Patient.meta.security'], 'security labels are validated');
  const unknown = validator.validate({ resourceType: 'Patient', meta: { owner: 'me' } });
  t.same(unknown.map((i) => i.diagnostics), ["Unknown element 'owner' in Patient.meta"]);
  // A contained resource is not stored on its own: its meta.versionId breaks dom-4, as the spec says.
  const contained = validator.validate({
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'x' },
    contained: [{ resourceType: 'Patient', id: 'p', meta: { lastUpdated: '2020-01-01T00:00:00Z' } }],
    subject: { reference: '#p' },
  });
  t.match(contained.map((i) => i.diagnostics), [/\(dom-4: /]);
});

t.test('the 146 R4 resource types', async (t) => {
  t.equal(RESOURCE_TYPES.length, 146);
  t.same([...RESOURCE_TYPES].sort(), RESOURCE_TYPES, 'sorted');
  for (const type of ['Patient', 'Observation', 'Bundle', 'Binary', 'Parameters', 'VerificationResult', 'MedicinalProduct']) {
    t.ok(isResourceType(type), type);
  }
  // Medplum's own types and R4B's SubscriptionStatus share the definition files but are not R4.
  for (const type of ['Project', 'User', 'Bot', 'SubscriptionStatus', 'Resource', 'DomainResource', 'Element']) {
    t.notOk(isResourceType(type), type);
  }
});

t.test('one validator serves concurrent callers: nothing leaks between calls', async (t) => {
  const bad = { resourceType: 'Observation', code: { text: 'x' } };
  const good = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
  t.equal(validator.validate(bad).length, 1);
  t.same(validator.validate(good), []);
  t.equal(validator.validate(bad).length, 1);
});

t.test('mutated official examples never make the validator throw', async (t) => {
  const fc = (await import('fast-check')).default;
  const fs = await import('node:fs');
  const path = await import('node:path');
  const dir = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');
  const examples = ['Patient-f001.json', 'Observation-f001.json', 'Questionnaire-gcs.json', 'MedicationRequest-medrx0302.json', 'Bundle-lri-example.json']
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>);
  // Every path to a value in a resource, so a mutation can land anywhere (in contained resources and entries too).
  const paths = (v: unknown, at: (string | number)[] = []): (string | number)[][] =>
    v !== null && typeof v === 'object'
      ? [at, ...Object.entries(v).flatMap(([k, c]) => paths(c, [...at, Array.isArray(v) ? Number(k) : k]))]
      : [at];
  const mutate = (resource: Record<string, unknown>, at: (string | number)[], value: unknown) => {
    const copy = structuredClone(resource) as Record<string | number, unknown>;
    let node = copy;
    for (const key of at.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
    if (at.length > 0) node[at.at(-1)!] = value;
    return copy;
  };
  fc.assert(
    fc.property(fc.nat(examples.length - 1), fc.nat(), fc.jsonValue({ maxDepth: 3 }), (which, where, value) => {
      const example = examples[which]!;
      const all = paths(example).filter((p) => p.length > 0);
      validator.validate(mutate(example, all[where % all.length]!, value));
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass('no exception');
});
