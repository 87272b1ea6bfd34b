/**
 * The FHIRPath Patch engine (src/fhir/patch/fhirpath-patch.ts) under generated Parameters applied to official
 * examples: a patched resource, or a 4xx FhirError. Its one deliberate 500 (a FHIRPath result that does not map
 * back onto the document) must stay unreachable from client input.
 */
import t from 'tap';
import fc from 'fast-check';
import { FhirError } from '../../src/errors.ts';
import { applyFhirPathPatch } from '../../src/fhir/patch/index.ts';
import { EXAMPLES } from './fixtures/http.ts';
import { fhirPathPatch } from './fixtures/patch.ts';
import { holds } from './fixtures/runs.ts';

const patients = EXAMPLES.filter((r) => r.resourceType === 'Patient');

t.test('FHIRPath Patch: a patched resource or a 4xx, never another error', async (t) => {
  await holds(
    t,
    fc.property(fc.nat({ max: patients.length - 1 }), fhirPathPatch, (i, parameters) => {
      const original = structuredClone(patients[i]!);
      try {
        applyFhirPathPatch(original, parameters);
      } catch (err) {
        if (!(err instanceof FhirError) || err.status < 400 || err.status >= 500) throw err;
      }
      return true;
    }),
    1000,
  );
});
