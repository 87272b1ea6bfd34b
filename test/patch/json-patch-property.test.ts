import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { FhirError } from '../../src/errors.ts';
import { applyJsonPatch } from '../../src/fhir/patch/index.ts';

type Json = ReturnType<typeof JSON.parse>;

const resourceArb = fc
  .tuple(
    fc.record({ resourceType: fc.constantFrom('Patient', 'Observation'), id: fc.string({ minLength: 1, maxLength: 6 }) }),
    fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
  )
  .map(([head, rest]) => ({ ...rest, ...head }) as Record<string, Json>);

/** Every JSON Pointer that exists in a document, so generated operations often hit real members. */
function pointers(value: Json, prefix = ''): string[] {
  const out = [prefix];
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      out.push(...pointers(value[key], `${prefix}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`));
    }
  }
  return out;
}

function pointerArb(doc: Json): fc.Arbitrary<string> {
  const existing = fc.constantFrom(...pointers(doc));
  return fc.oneof(
    { weight: 4, arbitrary: existing },
    {
      weight: 2,
      arbitrary: fc
        .tuple(existing, fc.constantFrom('/-', '/0', '/01', '/', '/x', '/__proto__', '/constructor/prototype', '~2', '/99'))
        .map(([p, s]) => p + s),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
    { weight: 2, arbitrary: fc.constantFrom('', '/id', '/resourceType') },
  );
}

function operationArb(doc: Json): fc.Arbitrary<unknown> {
  const op = fc.record(
    {
      op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', '_get', 'merge'),
      path: fc.oneof(pointerArb(doc), fc.jsonValue({ maxDepth: 1 })),
      from: pointerArb(doc),
      value: fc.jsonValue({ maxDepth: 3 }),
    },
    { requiredKeys: ['op'] },
  );
  return fc.oneof({ weight: 9, arbitrary: op }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
}

const caseArb = resourceArb.chain((doc) =>
  fc.tuple(
    fc.constant(doc),
    fc.oneof({ weight: 9, arbitrary: fc.array(operationArb(doc), { maxLength: 5 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }),
  ),
);

t.test('random patches on random resources either apply or fail with a 4xx FhirError', async (t) => {
  let applied = 0;
  const rejected = new Map<string, number>();
  fc.assert(
    fc.property(caseArb, ([doc, patch]) => {
      const snapshot = structuredClone(doc);
      try {
        const result = applyJsonPatch(doc, patch);
        assert.equal(result.resourceType, doc.resourceType);
        assert.equal(result.id, doc.id);
        applied++;
      } catch (error) {
        assert.ok(error instanceof FhirError, `not a FhirError: ${String(error)}`);
        assert.ok(error.status === 400 || error.status === 422, `status ${error.status} (${error.code}: ${error.message})`);
        rejected.set(error.code, (rejected.get(error.code) ?? 0) + 1);
      }
      assert.deepEqual(doc, snapshot, 'input mutated');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }),
    { numRuns: 600 },
  );
  // The generator must exercise both outcomes, or the property above says little.
  t.ok(applied > 50, `applied ${applied}`);
  t.ok((rejected.get('ERR_PATCH_INVALID') ?? 0) > 50, `rejected ${JSON.stringify([...rejected])}`);
});

t.test('the diff between two resources, applied to the first, yields the second', async (t) => {
  const safe = (doc: Json) => !/"(__proto__|constructor|prototype)"/.test(JSON.stringify(doc));
  const pairArb = fc
    .tuple(resourceArb, resourceArb)
    .filter(([a, b]) => safe(a) && safe(b))
    .map(([a, b]) => [a, { ...b, resourceType: a.resourceType, id: a.id }] as const);
  fc.assert(
    fc.property(pairArb, ([a, b]) => {
      const patch = jsonpatch.compare(a, b);
      assert.deepEqual(JSON.parse(JSON.stringify(applyJsonPatch(a, patch))), JSON.parse(JSON.stringify(b)));
    }),
    { numRuns: 300 },
  );
  t.pass('300 random diffs round-trip');
});
