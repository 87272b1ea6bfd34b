import t from 'tap';
import { FhirError } from '../../src/errors.ts';
import { applyJsonPatch, isJsonPatchContentType } from '../../src/fhir/patch/index.ts';

const SECRET = 'Zebediah-Secret-Family';

function patient(): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id: 'p1',
    meta: { versionId: '3', lastUpdated: '2024-01-01T00:00:00Z' },
    name: [{ family: SECRET, given: ['Ann', 'Beth'] }],
    identifier: [{ system: 'urn:a', value: '1' }],
    birthDate: '1970-01-01',
    active: true,
  };
}

t.test('isJsonPatchContentType', async (t) => {
  const cases: [string | undefined | null, boolean][] = [
    ['application/json-patch+json', true],
    ['Application/JSON-Patch+JSON', true],
    ['application/json-patch+json; charset=utf-8', true],
    [' application/json-patch+json ;charset=UTF-8', true],
    ['application/fhir+json', false],
    ['application/json', false],
    ['application/json-patch+json-seq', false],
    ['', false],
    [undefined, false],
    [null, false],
  ];
  for (const [ct, expected] of cases) t.equal(isJsonPatchContentType(ct), expected, String(ct));
});

t.test('applies each RFC 6902 operation', async (t) => {
  const cases: { name: string; patch: unknown[]; expect: (r: Record<string, unknown>) => Record<string, unknown> }[] = [
    { name: 'add a member', patch: [{ op: 'add', path: '/gender', value: 'female' }], expect: (r) => ({ ...r, gender: 'female' }) },
    {
      name: 'add into a list at an index',
      patch: [{ op: 'add', path: '/name/0/given/1', value: 'Cleo' }],
      expect: (r) => ({ ...r, name: [{ family: SECRET, given: ['Ann', 'Cleo', 'Beth'] }] }),
    },
    {
      name: 'add at the end of a list with -',
      patch: [{ op: 'add', path: '/identifier/-', value: { system: 'urn:b', value: '2' } }],
      expect: (r) => ({ ...r, identifier: [{ system: 'urn:a', value: '1' }, { system: 'urn:b', value: '2' }] }),
    },
    { name: 'add replaces an existing member', patch: [{ op: 'add', path: '/active', value: false }], expect: (r) => ({ ...r, active: false }) },
    {
      name: 'remove a member',
      patch: [{ op: 'remove', path: '/birthDate' }],
      expect: ({ birthDate: _, ...rest }) => rest,
    },
    {
      name: 'remove a list item',
      patch: [{ op: 'remove', path: '/name/0/given/0' }],
      expect: (r) => ({ ...r, name: [{ family: SECRET, given: ['Beth'] }] }),
    },
    { name: 'replace a value', patch: [{ op: 'replace', path: '/birthDate', value: '1980-02-02' }], expect: (r) => ({ ...r, birthDate: '1980-02-02' }) },
    {
      name: 'move within a list',
      patch: [{ op: 'move', from: '/name/0/given/0', path: '/name/0/given/1' }],
      expect: (r) => ({ ...r, name: [{ family: SECRET, given: ['Beth', 'Ann'] }] }),
    },
    {
      name: 'move a member to another name',
      patch: [{ op: 'move', from: '/birthDate', path: '/deceasedDateTime' }],
      expect: ({ birthDate, ...rest }) => ({ ...rest, deceasedDateTime: birthDate }),
    },
    {
      name: 'copy a value',
      patch: [{ op: 'copy', from: '/name/0', path: '/name/-' }],
      expect: (r) => ({ ...r, name: [{ family: SECRET, given: ['Ann', 'Beth'] }, { family: SECRET, given: ['Ann', 'Beth'] }] }),
    },
    {
      name: 'test that passes, then replace',
      patch: [
        { op: 'test', path: '/name/0/given', value: ['Ann', 'Beth'] },
        { op: 'replace', path: '/active', value: false },
      ],
      expect: (r) => ({ ...r, active: false }),
    },
    {
      name: 'meta.versionId and lastUpdated may be patched (the server overwrites them)',
      patch: [{ op: 'replace', path: '/meta/versionId', value: '99' }, { op: 'remove', path: '/meta/lastUpdated' }],
      expect: (r) => ({ ...r, meta: { versionId: '99' } }),
    },
    {
      name: 'id rewritten to the same value and tested',
      patch: [{ op: 'test', path: '/id', value: 'p1' }, { op: 'replace', path: '/id', value: 'p1' }],
      expect: (r) => r,
    },
    {
      name: 'replacing the whole document keeping resourceType and id',
      patch: [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'p1', active: false } }],
      expect: () => ({ resourceType: 'Patient', id: 'p1', active: false }),
    },
    {
      name: 'pointer escapes ~0 and ~1',
      patch: [{ op: 'add', path: '/extension', value: [{ url: 'a/b~c', valueString: 'x' }] }, { op: 'test', path: '/extension/0/url', value: 'a/b~c' }],
      expect: (r) => ({ ...r, extension: [{ url: 'a/b~c', valueString: 'x' }] }),
    },
    { name: 'an empty patch', patch: [], expect: (r) => r },
  ];
  for (const c of cases) {
    const input = patient();
    const snapshot = structuredClone(input);
    const patch = structuredClone(c.patch);
    t.strictSame(applyJsonPatch(input, c.patch), c.expect(patient()), c.name);
    t.strictSame(input, snapshot, `${c.name}: input untouched`);
    t.strictSame(c.patch, patch, `${c.name}: patch untouched`);
  }
});

t.test('rejects bad patches with stable codes', async (t) => {
  const cases: { name: string; patch: unknown; status: number; code: string }[] = [
    { name: 'not an array', patch: { op: 'add', path: '/a', value: 1 }, status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'null document', patch: null, status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'operation not an object', patch: ['add'], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'unknown op', patch: [{ op: 'merge', path: '/a', value: 1 }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'internal _get op', patch: [{ op: '_get', path: '/id', value: 1 }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'missing path', patch: [{ op: 'remove' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'path without leading slash', patch: [{ op: 'remove', path: 'birthDate' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'bad escape in pointer', patch: [{ op: 'add', path: '/a~2b', value: 1 }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'leading zero array index', patch: [{ op: 'remove', path: '/name/0/given/01' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'empty array index', patch: [{ op: 'replace', path: '/name/', value: {} }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'non-numeric array index', patch: [{ op: 'remove', path: '/name/first' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'missing value', patch: [{ op: 'add', path: '/gender' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'missing from', patch: [{ op: 'copy', path: '/gender' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'replace a missing path', patch: [{ op: 'replace', path: '/gender', value: 'x' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'remove a missing path', patch: [{ op: 'remove', path: '/name/3' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'add under a missing parent', patch: [{ op: 'add', path: '/contact/0/name', value: {} }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'add past the end of a list', patch: [{ op: 'add', path: '/name/0/given/5', value: 'x' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'path through a primitive', patch: [{ op: 'add', path: '/birthDate/x', value: 1 }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'move from a missing path', patch: [{ op: 'move', from: '/gender', path: '/x' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'move into its own child', patch: [{ op: 'move', from: '/name', path: '/name/0/x' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: '__proto__ pointer', patch: [{ op: 'add', path: '/__proto__/polluted', value: 1 }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'remove the document', patch: [{ op: 'remove', path: '' }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'replace the document by a list', patch: [{ op: 'replace', path: '', value: [1] }], status: 400, code: 'ERR_PATCH_INVALID' },
    { name: 'failing test', patch: [{ op: 'test', path: '/birthDate', value: '1999-01-01' }], status: 422, code: 'ERR_PATCH_TEST_FAILED' },
    { name: 'test of an absent member', patch: [{ op: 'test', path: '/gender', value: 'female' }], status: 422, code: 'ERR_PATCH_TEST_FAILED' },
    { name: 'replace id', patch: [{ op: 'replace', path: '/id', value: 'other' }], status: 400, code: 'ERR_PATCH_IMMUTABLE' },
    { name: 'remove id', patch: [{ op: 'remove', path: '/id' }], status: 400, code: 'ERR_PATCH_IMMUTABLE' },
    { name: 'move id away', patch: [{ op: 'move', from: '/id', path: '/language' }], status: 400, code: 'ERR_PATCH_IMMUTABLE' },
    { name: 'copy over id', patch: [{ op: 'copy', from: '/birthDate', path: '/id' }], status: 400, code: 'ERR_PATCH_IMMUTABLE' },
    { name: 'replace resourceType', patch: [{ op: 'replace', path: '/resourceType', value: 'Group' }], status: 400, code: 'ERR_PATCH_IMMUTABLE' },
    {
      name: 'replace the document with another id',
      patch: [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'p2' } }],
      status: 400,
      code: 'ERR_PATCH_IMMUTABLE',
    },
  ];
  for (const c of cases) {
    const input = patient();
    const snapshot = structuredClone(input);
    try {
      applyJsonPatch(input, c.patch);
      t.fail(`${c.name}: expected ${c.code}`);
    } catch (error) {
      t.ok(error instanceof FhirError, `${c.name}: a FhirError`);
      const e = error as FhirError;
      t.equal(e.code, c.code, `${c.name}: code`);
      t.equal(e.status, c.status, `${c.name}: status`);
      // fast-json-patch's own messages embed the whole document: none of it may reach the client.
      t.notMatch(JSON.stringify(e.issues), SECRET, `${c.name}: no resource data in the outcome`);
    }
    t.strictSame(input, snapshot, `${c.name}: input untouched`);
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
});

t.test('is all or nothing', async (t) => {
  const input = patient();
  const snapshot = structuredClone(input);
  t.throws(
    () =>
      applyJsonPatch(input, [
        { op: 'replace', path: '/birthDate', value: '2000-01-01' },
        { op: 'remove', path: '/gender' },
      ]),
    { code: 'ERR_PATCH_INVALID' },
  );
  t.strictSame(input, snapshot);
});

t.test('the result shares no objects with the input or the patch', async (t) => {
  const input = patient();
  const value = { system: 'urn:b', value: '2' };
  const result = applyJsonPatch(input, [{ op: 'add', path: '/identifier/-', value }]);
  (result.identifier as Record<string, unknown>[])[1]!.value = 'changed';
  (result.name as Record<string, unknown>[])[0]!.family = 'changed';
  t.equal(value.value, '2');
  t.equal((input.name as Record<string, unknown>[])[0]!.family, SECRET);
});

t.test('a target that is not a resource is our own bug (500)', async (t) => {
  t.throws(() => applyJsonPatch([] as unknown as object, []), { code: 'ERR_PATCH_TARGET', status: 500 });
  t.throws(() => applyJsonPatch({ id: 'x' }, []), { code: 'ERR_PATCH_TARGET', status: 500 });
});
