// FHIRPath invariants are skipped on an element that has none of the children they can read (invariants.ts,
// contextNames): their answer there is their answer on `{}`, computed once. These tests hold that shortcut to the
// full evaluation on every element of the official examples and the Synthea fixtures.
import fs from 'node:fs';
import path from 'node:path';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4/index.js';
import t from 'tap';
import { baseDefinitions } from '../../src/fhir/validation/definitions.ts';
import { compileInvariants, contextNames, NATIVE_INVARIANTS, type Invariant } from '../../src/fhir/validation/invariants.ts';
import { buildModel, type FieldModel, type TypeModel } from '../../src/fhir/validation/model.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');

/** The Synthea fixture Bundles (patients and `_shared`), by file name. */
function syntheaBundles(): Array<[string, { entry?: Array<{ resource: Record<string, unknown> }> }]> {
  const out: Array<[string, { entry?: Array<{ resource: Record<string, unknown> }> }]> = [];
  for (const dir of ['synthea', 'synthea/_shared']) {
    for (const file of fs.readdirSync(path.join(FIXTURES, dir)).filter((f) => f.endsWith('.json'))) {
      out.push([file, JSON.parse(fs.readFileSync(path.join(FIXTURES, dir, file), 'utf8'))]);
    }
  }
  return out;
}

t.test('contextNames: the identifiers that can name a child of the node', async (t) => {
  t.same(contextNames('contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()').sort(), ['and', 'contained'], 'members after a dot are reached through `contained`');
  t.same(contextNames('code.empty() or system.exists()').sort(), ['code', 'or', 'system']);
  t.same(contextNames("coding.where(system='http://loinc.org' and code = 'x.y').exists()").sort(), ['and', 'code', 'coding', 'system'], 'string literals hold no names; where() arguments are kept');
  t.same(contextNames('(start <= end) or start . hasValue().not()').sort(), ['end', 'or', 'start'], 'grouping and spaces around the dot');
  t.same(contextNames('(a | b).c.exists()').sort(), ['a', 'b']);
});

interface Counts {
  evaluated: number;
  shortcut: number;
  mismatches: string[];
}

t.test('the shortcut answers as the full evaluation on every element of real resources', async (t) => {
  const model = buildModel(baseDefinitions().structures);
  const compiled = new Map<FieldModel | TypeModel, readonly Invariant[]>();
  const invariantsOf = (owner: FieldModel | TypeModel) => {
    let list = compiled.get(owner);
    if (!list) compiled.set(owner, (list = compileInvariants('key' in owner ? owner.type : owner.name, owner.constraints, () => undefined)));
    return list;
  };
  const counts: Counts = { evaluated: 0, shortcut: 0, mismatches: [] };

  const check = (invariants: readonly Invariant[], node: Record<string, unknown>, type: TypeModel, where: string, vars: { resource: unknown; rootResource: unknown }) => {
    const names = new Set<string>();
    for (const key in node) {
      const k = key.charCodeAt(0) === 95 ? key.slice(1) : key;
      names.add(type.fields.get(k)?.name ?? k);
    }
    const present = (name: string) => names.has(name);
    for (const inv of invariants) {
      const full = inv.holds(node, vars);
      const fast = inv.holds(node, vars, present);
      counts.evaluated++;
      if (!contextNames(inv.expression).some(present)) counts.shortcut++;
      const same = full instanceof Error ? fast instanceof Error : fast === full;
      if (!same) counts.mismatches.push(`${where} ${inv.key}: full ${String(full)}, with the shortcut ${String(fast)}`);
    }
  };

  const visit = (node: Record<string, unknown>, type: TypeModel, where: string, vars: { resource: unknown; rootResource: unknown }) => {
    for (const key in node) {
      const field = type.fields.get(key.charCodeAt(0) === 95 ? key.slice(1) : key);
      if (!field || key.charCodeAt(0) === 95) continue;
      const value = node[key];
      for (const [i, item] of (Array.isArray(value) ? value : [value]).entries()) {
        if (item === null || typeof item !== 'object' || Array.isArray(item)) continue;
        const object = item as Record<string, unknown>;
        const childType = field.type === 'Resource' ? model.get(String(object.resourceType)) : model.get(field.type);
        if (!childType) continue;
        const at = `${where}.${key}[${i}]`;
        const childVars = field.type === 'Resource' ? { resource: object, rootResource: vars.rootResource } : vars;
        if (field.type === 'Resource') check(invariantsOf(childType), object, childType, at, childVars);
        check(invariantsOf(field), object, childType, at, childVars);
        visit(object, childType, at, childVars);
      }
    }
  };

  const resources: Array<[string, Record<string, unknown>]> = [];
  for (const file of fs.readdirSync(path.join(FIXTURES, 'fhir-r4-examples')).filter((f) => f.endsWith('.json'))) {
    resources.push([file, JSON.parse(fs.readFileSync(path.join(FIXTURES, 'fhir-r4-examples', file), 'utf8'))]);
  }
  for (const [file, bundle] of syntheaBundles()) {
    for (const [i, entry] of (bundle.entry ?? []).entries()) resources.push([`${file}#${i}`, entry.resource]);
  }
  for (const [name, resource] of resources) {
    const type = model.get(String(resource.resourceType));
    if (!type) continue;
    const vars = { resource, rootResource: resource };
    check(invariantsOf(type), resource, type, name, vars);
    visit(resource, type, name, vars);
  }
  t.same(counts.mismatches, [], 'no element where the shortcut changes the answer');
  t.ok(counts.evaluated > 30_000, `${counts.evaluated} invariant evaluations compared`);
  t.ok(counts.shortcut > 10_000, `${counts.shortcut} of them answered by the shortcut`);
});

/** Whether fhirpath.js holds an invariant on a node, as the validator reads its result (only an explicit false fails). */
function fhirpathHolds(base: string, expression: string): (node: unknown) => boolean {
  const evaluate = fhirpath.compile({ base, expression }, r4Model as never, { resolveInternalTypes: false } as never) as (n: unknown) => unknown[];
  return (node) => {
    const r = evaluate(node);
    return !(r.length === 1 && r[0] === false);
  };
}

t.test('per-1 decided natively gives fhirpath.js answers', async (t) => {
  const { expression, decide } = NATIVE_INVARIANTS['per-1']!;
  const answer = fhirpathHolds('Period', expression);
  const periods: unknown[] = [
    { start: '2020-01-01T10:00:00Z', end: '2020-01-01T10:00:00.000Z' },
    { start: '2020-01-01T10:00:00.001Z', end: '2020-01-01T10:00:00Z' },
    { start: '2020-01-01T12:00:00+02:00', end: '2020-01-01T10:30:00Z' },
    { start: '2020-01-01T10:30:00Z', end: '2020-01-01T12:00:00+02:00' },
    { start: '2020-01-01T23:59:59-05:00', end: '2020-01-02T00:00:00Z' },
    { start: '2021-06-01T00:00:00Z', end: '2020-06-01T00:00:00Z' },
    { start: '2020-01-01', end: '2019-12-31T00:00:00Z' },
    { start: '2020-01-01T10:00:00', end: '2020-01-01T09:00:00Z' },
    { start: '2020', end: '2019' },
    { start: '2020-01-01T10:00:00Z' },
    { end: '2020-01-01T10:00:00Z', _start: { extension: [{ url: 'x', valueString: 'y' }] } },
  ];
  const collect = (value: unknown, key?: string): void => {
    if (Array.isArray(value)) for (const v of value) collect(v, key);
    else if (value && typeof value === 'object') {
      if (/period$/i.test(key ?? '') && !Array.isArray(value)) periods.push(value);
      for (const [k, v] of Object.entries(value)) collect(v, k);
    }
  };
  for (const [, bundle] of syntheaBundles()) collect(bundle);
  let decided = 0;
  const wrong: string[] = [];
  for (const period of periods) {
    const native = decide(period);
    if (native === undefined) continue;
    decided++;
    if (native !== answer(period)) wrong.push(JSON.stringify(period));
  }
  t.same(wrong, []);
  t.ok(decided > 150, `${decided} of ${periods.length} Periods decided natively`);
  t.equal(decide(periods[5]), false, 'a start after its end breaks per-1');
  t.equal(decide(periods[6]), undefined, 'a date without a time is left to fhirpath.js');
});

t.test('que-7 decided natively: the HL7 validator reads `answer is Boolean` true for answerBoolean', async (t) => {
  const { expression, decide } = NATIVE_INVARIANTS['que-7']!;
  const holds = fhirpathHolds('Questionnaire.item.enableWhen', expression);
  const exists = { question: 'q', operator: 'exists', answerBoolean: true };
  t.equal(decide(exists), true, 'exists with a boolean answer holds (official example Questionnaire-bb)');
  t.equal(holds(exists), false, 'where fhirpath.js types the answer FHIR.boolean, not System.Boolean: why it is decided natively');
  for (const node of [
    { question: 'q', operator: 'exists', answerString: 'yes' },
    { question: 'q', operator: 'exists', answerCoding: { code: 'x' } },
    { question: 'q', operator: '=', answerString: 'yes' },
    { question: 'q', operator: '=', answerBoolean: false },
    { question: 'q', operator: 'exists' },
    { question: 'q', answerInteger: 1 },
  ]) {
    t.equal(decide(node), holds(node), `${JSON.stringify(node)}: as fhirpath.js`);
  }
  t.equal(decide({ question: 'q', operator: 'exists', answerString: 'yes' }), false, 'exists with a string answer breaks que-7');
});
