// Search expressions that only walk properties run as a plain JSON walk (registry.ts, fast path). Over every
// official R4 example, every parameter of its type must give the same index values as fhirpath.js.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { compositeValues, extractEntries, typed as typedOf, valuesOf } from '../../src/fhir/search/extract.ts';
import { paramsOf } from '../../src/fhir/search/registry.ts';

const DIR = path.resolve(import.meta.dirname, '../fixtures/fhir-r4-examples');


const valuesBy = (param: ReturnType<typeof paramsOf> extends Map<string, infer P> ? P : never, nodes: unknown[]) =>
  [...new Set(nodes.flatMap((n) => valuesOf(param, typedOf(n), { baseUrl: 'http://example.org/fhir' }).map(([s, v]) => `${s} ${v}`)))].sort();

t.test('the fast path gives fhirpath.js values for every parameter of every official example', async (t) => {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));
  t.ok(files.length > 400, `${files.length} examples`);
  let compared = 0;
  let fast = 0;
  let nonEmpty = 0;
  let composites = 0;
  let nonEmptyComposites = 0;
  const mismatches: string[] = [];
  for (const file of files) {
    const resource = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
    if (typeof resource.resourceType !== 'string') continue;
    for (const param of paramsOf(resource.resourceType).values()) {
      if (param.evaluate === param.evaluateFhirpath) continue;
      fast++;
      let expected: string[];
      try {
        expected = valuesBy(param, param.evaluateFhirpath(resource));
      } catch {
        continue; // extraction skips what fhirpath.js cannot walk
      }
      if (param.type === 'composite') {
        // the outer walk and every component: combinations of the same values either way
        const combos = (nodes: unknown[], viaFhirpath: boolean) =>
          [...new Set(nodes.flatMap((n) => compositeValues(param, n, { baseUrl: 'http://example.org/fhir' }, viaFhirpath)))].sort();
        expected = combos(param.evaluateFhirpath(resource), true);
        const actual = combos(param.evaluate(resource), false);
        compared++;
        composites++;
        if (expected.length) nonEmptyComposites++;
        if (JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push(`${file} ${param.code} (composite ${param.expression}): ${JSON.stringify(actual).slice(0, 200)} vs ${JSON.stringify(expected).slice(0, 200)}`);
        continue;
      }
      const actual = valuesBy(param, param.evaluate(resource));
      compared++;
      if (expected.length) nonEmpty++;
      if (JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push(`${file} ${param.code} (${param.expression}): ${JSON.stringify(actual).slice(0, 200)} vs ${JSON.stringify(expected).slice(0, 200)}`);
    }
  }
  t.same(mismatches, [], 'no differences');
  t.ok(nonEmpty > 2000, `${compared} parameter evaluations compared on the fast path, ${nonEmpty} with values`);
  t.ok(fast > 0);
  t.ok(nonEmptyComposites > 50, `${composites} composite evaluations compared on the fast path, ${nonEmptyComposites} with values`);
});

t.test('most expressions take the fast path; where() conditions other than equality and other functions do not', async (t) => {
  let all = 0;
  let fast = 0;
  for (const type of ['Patient', 'Observation', 'Encounter', 'Condition', 'MedicationRequest']) {
    for (const param of paramsOf(type).values()) {
      all++;
      if (param.evaluate !== param.evaluateFhirpath) fast++;
    }
  }
  t.ok(fast / all > 0.8, `${fast} of ${all}`);
  t.not(paramsOf('Patient').get('phone')!.evaluate, paramsOf('Patient').get('phone')!.evaluateFhirpath, "where(system = 'phone') is walked as a filter");
  t.equal(paramsOf('Patient').get('deceased')!.evaluate, paramsOf('Patient').get('deceased')!.evaluateFhirpath, 'a boolean expression stays on fhirpath.js');
  const telecom = { resourceType: 'Patient', telecom: [{ system: 'phone', value: '1' }, { system: 'email', value: 'a@b' }, { value: '2' }, { system: ['phone'], value: '3' }, { system: ['phone', 'email'], value: '4' }] };
  for (const code of ['phone', 'email']) {
    const param = paramsOf('Patient').get(code)!;
    t.same(valuesBy(param, param.evaluate(telecom)), valuesBy(param, param.evaluateFhirpath(telecom)), `${code}: one-item and two-item collections compare as in FHIRPath`);
  }
  t.not(paramsOf('Observation').get('date')!.evaluate, paramsOf('Observation').get('date')!.evaluateFhirpath, 'a choice element is walked');
  // node types matter where extraction looks at them: a CodeableConcept with text only, a Period, a decimal
  const obs = {
    resourceType: 'Observation', status: 'final', code: { text: 'Blood pressure' }, effectivePeriod: { start: '2024-01-01' },
    valueQuantity: { value: 5.5, unit: 'mg' }, category: [{ text: 'vital' }], _status: { extension: [] },
  };
  for (const param of paramsOf('Observation').values()) {
    t.same(valuesBy(param, param.evaluate(obs)), valuesBy(param, param.evaluateFhirpath(obs)), param.code);
  }
  const entries = extractEntries(obs as never);
  t.ok(entries.some((e) => e.code === 'code:text' && e.value === 'blood pressure'), 'text of a CodeableConcept without codings');
  t.equal(entries.filter((e) => e.code === 'date').length, 1, 'one period');
});
