import t from 'tap';
import { FhirError } from '../../src/errors.ts';
import { applyFhirPathPatch } from '../../src/fhir/patch/index.ts';

type Json = Record<string, unknown>;

const SECRET = 'Zebediah-Secret-Family';

/** One `operation` parameter; parts are given as { name: { valueX: ... } } in the order the spec lists them. */
function op(type: string, parts: Record<string, Json>): Json {
  return { name: 'operation', part: [{ name: 'type', valueCode: type }, ...Object.entries(parts).map(([name, v]) => ({ name, ...v }))] };
}
const params = (...operations: Json[]): Json => ({ resourceType: 'Parameters', parameter: operations });
const path = (p: string) => ({ valueString: p });
const name = (n: string) => ({ valueString: n });
const int = (i: number) => ({ valueInteger: i });

function patient(): Json {
  return {
    resourceType: 'Patient',
    id: 'p1',
    identifier: [
      { system: 'urn:a', value: '1' },
      { system: 'urn:b', value: '2' },
    ],
    name: [
      { use: 'official', family: SECRET, given: ['Ann', 'Beth', 'Cleo'] },
      { use: 'nickname', given: ['Annie'] },
    ],
    birthDate: '1970-01-01',
  };
}

function observation(): Json {
  return {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }, { system: 'urn:local', code: 'w' }] },
    valueQuantity: { value: 72.5, unit: 'kg' },
  };
}

/** Builds the expected result by editing a fresh copy of the input. */
function edit<T extends Json>(base: T, change: (r: Json & Record<string, any>) => void): Json {
  const copy = structuredClone(base);
  change(copy);
  return copy;
}

interface Case {
  name: string;
  input: Json;
  patch: Json;
  expect: Json;
}

const cases: Case[] = [
  // The examples of http://hl7.org/fhir/R4/fhirpatch.html
  {
    name: 'spec: add birthDate',
    input: edit(patient(), (r) => delete r.birthDate),
    patch: params(op('add', { path: path('Patient'), name: name('birthDate'), value: { valueDate: '1930-01-01' } })),
    expect: edit(patient(), (r) => {
      delete r.birthDate;
      r.birthDate = '1930-01-01';
    }),
  },
  {
    name: 'spec: add a contact given as parts',
    input: patient(),
    patch: params(
      op('add', { path: path('Patient'), name: name('contact'), value: { part: [{ name: 'name', valueHumanName: { text: 'a name' } }] } }),
    ),
    expect: edit(patient(), (r) => (r.contact = [{ name: { text: 'a name' } }])),
  },
  {
    name: 'spec: insert an identifier at index 1',
    input: patient(),
    patch: params(op('insert', { path: path('Patient.identifier'), index: int(1), value: { valueIdentifier: { system: 'urn:c', value: '3' } } })),
    expect: edit(patient(), (r) => r.identifier.splice(1, 0, { system: 'urn:c', value: '3' })),
  },
  {
    name: 'spec: delete a given name',
    input: patient(),
    patch: params(op('delete', { path: path('Patient.name[0].given[1]') })),
    expect: edit(patient(), (r) => r.name[0].given.splice(1, 1)),
  },
  {
    name: 'spec: replace birthDate',
    input: patient(),
    patch: params(op('replace', { path: path('Patient.birthDate'), value: { valueDate: '1930-01-01' } })),
    expect: edit(patient(), (r) => (r.birthDate = '1930-01-01')),
  },
  {
    name: 'spec: move an identifier',
    input: patient(),
    patch: params(op('move', { path: path('Patient.identifier'), source: int(0), destination: int(1) })),
    expect: edit(patient(), (r) => r.identifier.reverse()),
  },
  // add
  {
    name: 'add appends to a list',
    input: patient(),
    patch: params(op('add', { path: path('Patient'), name: name('name'), value: { valueHumanName: { family: 'New' } } })),
    expect: edit(patient(), (r) => r.name.push({ family: 'New' })),
  },
  {
    name: 'add a given name to the official name',
    input: patient(),
    patch: params(op('add', { path: path("Patient.name.where(use = 'official')"), name: name('given'), value: { valueString: 'Dora' } })),
    expect: edit(patient(), (r) => r.name[0].given.push('Dora')),
  },
  {
    name: 'add a complex value from nested parts (lists made by repeated names)',
    input: patient(),
    patch: params(
      op('add', {
        path: path('Patient'),
        name: name('contact'),
        value: {
          part: [
            { name: 'name', part: [{ name: 'family', valueString: 'Roe' }, { name: 'given', valueString: 'Jo' }, { name: 'given', valueString: 'Al' }] },
            { name: 'telecom', valueContactPoint: { system: 'phone', value: '555' } },
            { name: 'relationship', valueCodeableConcept: { text: 'friend' } },
            { name: 'gender', valueCode: 'other' },
          ],
        },
      }),
    ),
    expect: edit(patient(), (r) => {
      r.contact = [
        { name: { family: 'Roe', given: ['Jo', 'Al'] }, telecom: [{ system: 'phone', value: '555' }], relationship: [{ text: 'friend' }], gender: 'other' },
      ];
    }),
  },
  {
    name: 'add an extension from parts (choice child typed by its value[x])',
    input: patient(),
    patch: params(
      op('add', {
        path: path('Patient'),
        name: name('extension'),
        value: { part: [{ name: 'url', valueUri: 'urn:ext' }, { name: 'value', valueBoolean: true }] },
      }),
    ),
    expect: edit(patient(), (r) => (r.extension = [{ url: 'urn:ext', valueBoolean: true }])),
  },
  {
    name: 'add an Observation component with a choice value',
    input: observation(),
    patch: params(
      op('add', {
        path: path('Observation'),
        name: name('component'),
        value: { part: [{ name: 'code', valueCodeableConcept: { text: 'sys' } }, { name: 'value', valueQuantity: { value: 120 } }] },
      }),
    ),
    expect: edit(observation(), (r) => (r.component = [{ code: { text: 'sys' }, valueQuantity: { value: 120 } }])),
  },
  {
    name: 'add a choice element under its typed name',
    input: edit(observation(), (r) => delete r.valueQuantity),
    patch: params(op('add', { path: path('Observation'), name: name('effective'), value: { valueDateTime: '2024-05-01' } })),
    expect: edit(observation(), (r) => {
      delete r.valueQuantity;
      r.effectiveDateTime = '2024-05-01';
    }),
  },
  {
    name: 'add a nested Questionnaire item (Questionnaire.item.item is defined by Questionnaire.item)',
    input: { resourceType: 'Questionnaire', id: 'q', status: 'draft', item: [{ linkId: 'a', type: 'group' }] },
    patch: params(
      op('add', { path: path('Questionnaire.item[0]'), name: name('item'), value: { part: [{ name: 'linkId', valueString: 'b' }, { name: 'type', valueCode: 'string' }] } }),
    ),
    expect: { resourceType: 'Questionnaire', id: 'q', status: 'draft', item: [{ linkId: 'a', type: 'group', item: [{ linkId: 'b', type: 'string' }] }] },
  },
  // insert
  {
    name: 'insert into a missing list creates it',
    input: edit(patient(), (r) => delete r.identifier),
    patch: params(op('insert', { path: path('Patient.identifier'), index: int(0), value: { valueIdentifier: { value: 'x' } } })),
    expect: edit(patient(), (r) => {
      delete r.identifier;
      r.identifier = [{ value: 'x' }];
    }),
  },
  {
    name: 'insert at the end of a list',
    input: patient(),
    patch: params(op('insert', { path: path("Patient.name.where(use = 'official').given"), index: int(3), value: { valueString: 'Dora' } })),
    expect: edit(patient(), (r) => r.name[0].given.push('Dora')),
  },
  {
    name: 'insert a complex value built from parts',
    input: patient(),
    patch: params(
      op('insert', { path: path('Patient.identifier'), index: int(0), value: { part: [{ name: 'system', valueUri: 'urn:z' }, { name: 'value', valueString: '0' }] } }),
    ),
    expect: edit(patient(), (r) => r.identifier.unshift({ system: 'urn:z', value: '0' })),
  },
  {
    name: 'insert into a list named by a bare element name',
    input: patient(),
    patch: params(op('insert', { path: path('identifier'), index: int(2), value: { valueIdentifier: { value: '3' } } })),
    expect: edit(patient(), (r) => r.identifier.push({ value: '3' })),
  },
  // delete
  {
    name: 'delete an identifier chosen by where()',
    input: patient(),
    patch: params(op('delete', { path: path("Patient.identifier.where(system = 'urn:b')") })),
    expect: edit(patient(), (r) => r.identifier.pop()),
  },
  {
    name: 'delete the only item of a list removes the list',
    input: patient(),
    patch: params(op('delete', { path: path('Patient.name[1].given') })),
    expect: edit(patient(), (r) => delete r.name[1].given),
  },
  {
    name: 'delete that empties its parent removes the parent too',
    input: edit(observation(), (r) => (r.valueQuantity = { value: 1 })),
    patch: params(op('delete', { path: path('Observation.value.value') })),
    expect: edit(observation(), (r) => delete r.valueQuantity),
  },
  {
    name: 'delete of nothing is not an error',
    input: patient(),
    patch: params(op('delete', { path: path('Patient.gender') }), op('delete', { path: path("Patient.identifier.where(system = 'nope')") })),
    expect: patient(),
  },
  {
    name: 'delete a choice element through its base name',
    input: observation(),
    patch: params(op('delete', { path: path('Observation.value') })),
    expect: edit(observation(), (r) => delete r.valueQuantity),
  },
  // replace
  {
    name: 'replace a list item selected by first()',
    input: observation(),
    patch: params(op('replace', { path: path('Observation.code.coding.first()'), value: { valueCoding: { system: 'urn:x', code: 'y' } } })),
    expect: edit(observation(), (r) => (r.code.coding[0] = { system: 'urn:x', code: 'y' })),
  },
  {
    name: 'replace a choice value with another type',
    input: observation(),
    patch: params(op('replace', { path: path('Observation.value'), value: { valueString: 'heavy' } })),
    expect: edit(observation(), (r) => {
      delete r.valueQuantity;
      r.valueString = 'heavy';
    }),
  },
  {
    name: 'replace a decimal inside a choice value',
    input: observation(),
    patch: params(op('replace', { path: path('Observation.value.value'), value: { valueDecimal: 80.25 } })),
    expect: edit(observation(), (r) => (r.valueQuantity.value = 80.25)),
  },
  {
    name: 'replace an element with parts',
    input: patient(),
    patch: params(op('replace', { path: path('Patient.identifier[1]'), value: { part: [{ name: 'value', valueString: '22' }] } })),
    expect: edit(patient(), (r) => (r.identifier[1] = { value: '22' })),
  },
  {
    name: 'replace inside a contained resource',
    input: edit(patient(), (r) => (r.contained = [{ resourceType: 'Organization', id: 'o', name: 'Old' }])),
    patch: params(op('replace', { path: path('Patient.contained[0].name'), value: { valueString: 'New' } })),
    expect: edit(patient(), (r) => (r.contained = [{ resourceType: 'Organization', id: 'o', name: 'New' }])),
  },
  // move
  {
    name: 'move a given name to the front',
    input: patient(),
    patch: params(op('move', { path: path('Patient.name[0].given'), source: int(2), destination: int(0) })),
    expect: edit(patient(), (r) => (r.name[0].given = ['Cleo', 'Ann', 'Beth'])),
  },
  // sequences, and primitive extensions (`_given`) kept parallel to their values
  {
    name: 'operations apply in order, each on the result of the last',
    input: patient(),
    patch: params(
      op('insert', { path: path('Patient.identifier'), index: int(0), value: { valueIdentifier: { value: 'first' } } }),
      op('delete', { path: path('Patient.identifier[1]') }),
      op('replace', { path: path("Patient.identifier.where(value = 'first').value"), value: { valueString: 'renamed' } }),
    ),
    expect: edit(patient(), (r) => (r.identifier = [{ value: 'renamed' }, { system: 'urn:b', value: '2' }])),
  },
  {
    name: 'delete, insert and move keep _given aligned',
    input: edit(patient(), (r) => (r.name[0]._given = [null, { id: 'b' }, { id: 'c' }])),
    patch: params(
      op('delete', { path: path('Patient.name[0].given[0]') }),
      op('insert', { path: path('Patient.name[0].given'), index: int(0), value: { valueString: 'Zed', _valueString: { id: 'z' } } }),
      op('move', { path: path('Patient.name[0].given'), source: int(0), destination: int(2) }),
    ),
    expect: edit(patient(), (r) => {
      r.name[0].given = ['Beth', 'Cleo', 'Zed'];
      r.name[0]._given = [{ id: 'b' }, { id: 'c' }, { id: 'z' }];
    }),
  },
  {
    name: 'replace drops the old primitive extension and sets the new one',
    input: edit(patient(), (r) => (r._birthDate = { id: 'old' })),
    patch: params(op('replace', { path: path('Patient.birthDate'), value: { valueDate: '1999-09-09', _valueDate: { id: 'new' } } })),
    expect: edit(patient(), (r) => {
      r.birthDate = '1999-09-09';
      r._birthDate = { id: 'new' };
    }),
  },
  {
    name: 'id and resourceType may be rewritten to the same value',
    input: patient(),
    patch: params(op('replace', { path: path('Patient.id'), value: { valueId: 'p1' } })),
    expect: patient(),
  },
  { name: 'no operations', input: patient(), patch: { resourceType: 'Parameters' }, expect: patient() },
];

t.test('applies FHIRPath Patch operations', async (t) => {
  for (const c of cases) {
    const input = structuredClone(c.input);
    const patch = structuredClone(c.patch);
    let result: Json | undefined;
    try {
      result = applyFhirPathPatch(input, patch);
    } catch (error) {
      t.fail(`${c.name}: threw ${(error as FhirError).code}: ${(error as Error).message}`);
      continue;
    }
    t.strictSame(result, c.expect, c.name);
    // Members keep their place (a replaced element is not moved to the end of its parent).
    t.equal(JSON.stringify(result), JSON.stringify(c.expect), `${c.name}: member order`);
    t.strictSame(input, c.input, `${c.name}: input untouched`);
    t.strictSame(patch, c.patch, `${c.name}: parameters untouched`);
  }
});

interface ErrorCase {
  name: string;
  patch: unknown;
  status: number;
  code?: string;
  expression: string;
  input?: Json;
}

const P0 = 'Parameters.parameter[0]';
const errorCases: ErrorCase[] = [
  { name: 'not a Parameters resource', patch: { resourceType: 'Bundle' }, status: 400, expression: 'Parameters' },
  { name: 'no body', patch: null, status: 400, expression: 'Parameters' },
  { name: 'parameter not a list', patch: { resourceType: 'Parameters', parameter: {} }, status: 400, expression: 'Parameters' },
  { name: 'parameter not named operation', patch: params({ name: 'op', part: [] }), status: 400, expression: P0 },
  { name: 'operation without parts', patch: params({ name: 'operation' }), status: 400, expression: P0 },
  { name: 'part without a name', patch: params({ name: 'operation', part: [{ valueCode: 'add' }] }), status: 400, expression: P0 },
  { name: 'part given twice', patch: params(op('delete', { path: path('Patient.birthDate') , type: { valueCode: 'delete' } })), status: 400, expression: P0 },
  { name: 'unknown operation type', patch: params(op('merge', { path: path('Patient') })), status: 400, expression: P0 },
  { name: 'type not a code', patch: params({ name: 'operation', part: [{ name: 'type', valueInteger: 1 }] }), status: 400, expression: P0 },
  { name: 'missing path', patch: params(op('delete', {})), status: 400, expression: P0 },
  { name: 'path not a string', patch: params(op('delete', { path: int(1) })), status: 400, expression: P0 },
  { name: 'missing value', patch: params(op('replace', { path: path('Patient.birthDate') })), status: 400, expression: P0 },
  { name: 'missing name', patch: params(op('add', { path: path('Patient'), value: { valueCode: 'male' } })), status: 400, expression: P0 },
  { name: 'missing index', patch: params(op('insert', { path: path('Patient.identifier'), value: { valueIdentifier: {} } })), status: 400, expression: P0 },
  { name: 'part the type does not take', patch: params(op('delete', { path: path('Patient.birthDate'), index: int(0) })), status: 400, expression: P0 },
  { name: 'unknown part', patch: params(op('delete', { path: path('Patient.birthDate'), where: path('x') })), status: 400, expression: P0 },
  { name: 'FHIRPath syntax error', patch: params(op('delete', { path: path('Patient.name[') })), status: 400, expression: P0 },
  { name: 'FHIRPath syntax error in an insert path', patch: params(op('insert', { path: path('Patient.(('), index: int(0), value: { valueString: 'x' } })), status: 400, expression: P0 },
  { name: 'unknown FHIRPath function', patch: params(op('delete', { path: path('Patient.name.frobnicate()') })), status: 400, expression: P0 },
  { name: 'evaluation error', patch: params(op('delete', { path: path('Patient.name.family + 1') })), status: 400, expression: P0 },
  { name: 'resolve() is not allowed', patch: params(op('delete', { path: path('Patient.managingOrganization.resolve()') })), status: 400, expression: P0 },
  { name: 'path selecting a computed value', patch: params(op('replace', { path: path('Patient.name.count()'), value: { valueInteger: 1 } })), status: 400, expression: P0 },
  { name: 'replace the resource itself', patch: params(op('replace', { path: path('Patient'), value: { valueString: 'x' } })), status: 400, expression: P0 },
  { name: 'replace matching nothing', patch: params(op('replace', { path: path('Patient.gender'), value: { valueCode: 'male' } })), status: 422, expression: P0 },
  { name: 'replace matching many', patch: params(op('replace', { path: path('Patient.name.given'), value: { valueString: 'x' } })), status: 422, expression: P0 },
  { name: 'delete matching many', patch: params(op('delete', { path: path('Patient.identifier') })), status: 422, expression: P0 },
  { name: 'add at a path matching nothing', patch: params(op('add', { path: path('Patient.contact'), name: name('gender'), value: { valueCode: 'male' } })), status: 422, expression: P0 },
  { name: 'add at a path matching many', patch: params(op('add', { path: path('Patient.name'), name: name('text'), value: { valueString: 'x' } })), status: 422, expression: P0 },
  { name: 'add a single element that exists', patch: params(op('add', { path: path('Patient'), name: name('birthDate'), value: { valueDate: '2000-01-01' } })), status: 422, expression: P0 },
  { name: 'add under a primitive', patch: params(op('add', { path: path('Patient.birthDate'), name: name('extension'), value: { valueString: 'x' } })), status: 422, expression: P0 },
  { name: 'add an unknown element', patch: params(op('add', { path: path('Patient'), name: name('shoeSize'), value: { valueInteger: 42 } })), status: 400, expression: P0 },
  { name: 'add with a malformed name', patch: params(op('add', { path: path('Patient'), name: name('a.b'), value: { valueInteger: 42 } })), status: 400, expression: P0 },
  { name: 'insert past the end', patch: params(op('insert', { path: path('Patient.identifier'), index: int(3), value: { valueIdentifier: {} } })), status: 422, expression: P0 },
  { name: 'insert with a negative index', patch: params(op('insert', { path: path('Patient.identifier'), index: int(-1), value: { valueIdentifier: {} } })), status: 400, expression: P0 },
  { name: 'insert with a fractional index', patch: params(op('insert', { path: path('Patient.identifier'), index: { valueInteger: 0.5 }, value: { valueIdentifier: {} } })), status: 400, expression: P0 },
  { name: 'insert into a path not ending in an element', patch: params(op('insert', { path: path('Patient.identifier.first()'), index: int(0), value: { valueIdentifier: {} } })), status: 400, expression: P0 },
  { name: 'insert into a single element', patch: params(op('insert', { path: path('Patient.birthDate'), index: int(0), value: { valueDate: '2000-01-01' } })), status: 422, expression: P0 },
  { name: 'insert where the parent matches many', patch: params(op('insert', { path: path('Patient.name.given'), index: int(0), value: { valueString: 'x' } })), status: 422, expression: P0 },
  { name: 'move source out of range', patch: params(op('move', { path: path('Patient.identifier'), source: int(2), destination: int(0) })), status: 422, expression: P0 },
  { name: 'move destination out of range', patch: params(op('move', { path: path('Patient.identifier'), source: int(0), destination: int(2) })), status: 422, expression: P0 },
  { name: 'move in a missing list', patch: params(op('move', { path: path('Patient.telecom'), source: int(0), destination: int(0) })), status: 422, expression: P0 },
  { name: 'value with two value[x]', patch: params(op('replace', { path: path('Patient.birthDate'), value: { valueDate: '2000-01-01', valueString: 'x' } })), status: 400, expression: P0 },
  { name: 'value with nothing', patch: params(op('replace', { path: path('Patient.birthDate'), value: {} })), status: 400, expression: P0 },
  { name: 'value of a type the choice does not allow', patch: params(op('add', { path: path('Patient'), name: name('deceased'), value: { valueString: 'x' } })), status: 400, expression: P0 },
  { name: 'choice value built from parts', patch: params(op('add', { path: path('Patient'), name: name('deceased'), value: { part: [{ name: 'x', valueString: 'y' }] } })), status: 400, expression: P0 },
  {
    name: 'choice value given as a resource',
    input: observation(),
    patch: params(op('replace', { path: path('Observation.value'), value: { resource: { resourceType: 'Basic' } } })),
    status: 400,
    expression: P0,
  },
  { name: 'primitive built from parts', patch: params(op('replace', { path: path('Patient.birthDate'), value: { part: [{ name: 'x', valueString: 'y' }] } })), status: 400, expression: P0 },
  { name: 'parts naming an unknown child', patch: params(op('add', { path: path('Patient'), name: name('contact'), value: { part: [{ name: 'shoe', valueString: 'x' }] } })), status: 400, expression: P0 },
  { name: 'a single child given twice', patch: params(op('add', { path: path('Patient'), name: name('contact'), value: { part: [{ name: 'gender', valueCode: 'male' }, { name: 'gender', valueCode: 'female' }] } })), status: 400, expression: P0 },
  { name: 'primitive extension beside a complex value', patch: params(op('replace', { path: path('Patient.identifier[0]'), value: { valueIdentifier: {}, _valueIdentifier: {} } })), status: 400, expression: P0 },
  { name: 'resource value without resourceType', patch: params(op('insert', { path: path('Patient.contained'), index: int(0), value: { resource: { id: 'x' } } })), status: 400, expression: P0 },
  { name: 'replace id', patch: params(op('replace', { path: path('Patient.id'), value: { valueId: 'p2' } })), status: 400, code: 'ERR_PATCH_IMMUTABLE', expression: P0 },
  { name: 'delete id', patch: params(op('delete', { path: path('Patient.id') })), status: 400, code: 'ERR_PATCH_IMMUTABLE', expression: P0 },
  {
    name: 'the failing operation is named',
    patch: params(
      op('delete', { path: path('Patient.gender') }),
      op('replace', { path: path('Patient.birthDate'), value: { valueDate: '2001-01-01' } }),
      op('replace', { path: path('Patient.gender'), value: { valueCode: 'male' } }),
    ),
    status: 422,
    expression: 'Parameters.parameter[2]',
  },
];

t.test('rejects bad FHIRPath Patches with OperationOutcome-ready errors', async (t) => {
  for (const c of errorCases) {
    const input = c.input ?? patient();
    const snapshot = structuredClone(input);
    try {
      applyFhirPathPatch(input, c.patch);
      t.fail(`${c.name}: expected an error`);
    } catch (error) {
      if (!(error instanceof FhirError)) {
        t.fail(`${c.name}: not a FhirError: ${String(error)}`);
        continue;
      }
      t.equal(error.code, c.code ?? 'ERR_FHIRPATH_PATCH', `${c.name}: code (${error.message})`);
      t.equal(error.status, c.status, `${c.name}: status (${error.message})`);
      t.strictSame(error.issues[0]?.expression, [c.expression], `${c.name}: expression`);
      // The engine's messages may quote resource data; only the caller's own input may come back.
      t.notMatch(JSON.stringify(error.issues), SECRET, `${c.name}: no resource data in the outcome`);
    }
    t.strictSame(input, snapshot, `${c.name}: input untouched`);
  }
});

t.test("trace() in a path prints nothing (no PHI in the server's output)", async (t) => {
  const original = console.log;
  const printed: unknown[] = [];
  console.log = (...args: unknown[]) => printed.push(args);
  try {
    applyFhirPathPatch(patient(), params(op('delete', { path: path("Patient.name.trace('leak').where(use = 'nickname')") })));
  } finally {
    console.log = original;
  }
  t.strictSame(printed, []);
});

t.test('the result shares no objects with the parameters', async (t) => {
  const value = { system: 'urn:z', value: '9' };
  const patch = params(op('insert', { path: path('Patient.identifier'), index: int(0), value: { valueIdentifier: value } }));
  const result = applyFhirPathPatch(patient(), patch);
  (result.identifier as Json[])[0]!.value = 'changed';
  t.equal(value.value, '9');
});

t.test('a target that is not a resource is our own bug (500)', async (t) => {
  t.throws(() => applyFhirPathPatch({ id: 'x' }, params()), { code: 'ERR_PATCH_TARGET', status: 500 });
});

t.test('names every JavaScript object inherits (toString, constructor) are no elements (found by fuzzing)', async (t) => {
  const op = (type: string, path: string, extra: object[] = []) => ({
    resourceType: 'Parameters',
    parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...extra] }],
  });
  for (const path of ['toString', 'constructor', 'Patient.valueOf', 'Patient.name.hasOwnProperty']) {
    const input = patient();
    const snapshot = structuredClone(input);
    t.strictSame(applyFhirPathPatch(input, op('delete', path) as never), snapshot, `delete ${path}: nothing to delete`);
    try {
      applyFhirPathPatch(patient(), op('replace', path, [{ name: 'value', valueString: 'x' }]) as never);
      t.fail(`replace ${path}: expected an error`);
    } catch (error) {
      t.match(error, { status: 422 }, `replace ${path}: matches no element (422)`);
    }
  }
});
