/**
 * FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource whose `operation` parameters add,
 * insert, delete, replace or move elements named by FHIRPath expressions. Pure (no I/O; the only state is a cache of
 * compiled expressions): operations run in order on a clone, and the first failure rejects the whole patch.
 *
 * Elements are located through fhirpath.js's own result nodes (evaluated with resolveInternalTypes: false): each
 * node keeps the object it was read from (`parentResNode.data`, a reference into the document, not a copy), its
 * property name and its list index. That covers any filter (`[n]`, `where()`, `first()`, `ofType()`) without
 * re-implementing FHIRPath. Lists named for insert and move may be empty, so those paths are split instead: the
 * expression must end in `.element`, and the part before it must select exactly one element.
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { LRUCache } from 'lru-cache';
import { FhirError, type IssueType } from '../../errors.ts';
import { asResource, assertIdentityUnchanged, cloneInput, type JsonObject, type PatchedResource } from './json-patch.ts';

const OPERATION_PARTS = {
  add: ['path', 'name', 'value'],
  insert: ['path', 'value', 'index'],
  delete: ['path'],
  replace: ['path', 'value'],
  move: ['path', 'source', 'destination'],
} as const;
type OperationType = keyof typeof OPERATION_PARTS;

interface Operation {
  type: OperationType;
  path: string;
  parts: Map<string, JsonObject>;
  where: string;
}

/** The fields fhirpath.js keeps on each result node (ResourceNode). */
interface FpNode {
  data: unknown;
  path: string | null;
  propName: string | null;
  index: number | null;
  parentResNode: FpNode | null;
}

/** A value to write: the JSON value, the `_x` sibling of a primitive (id, extensions), and its value[x] type. */
interface PatchValue {
  value: unknown;
  extension?: unknown;
  type?: string;
}

/** What the R4 model says about an element: its path, whether it repeats, its choice types, its children's type. */
interface ElementInfo {
  path: string;
  repeating: boolean;
  choices?: string[];
  childType?: string;
}

/** Where an element lives: `parent[key]`, or `parent[key][index]` in a list. */
interface Slot {
  parent: JsonObject;
  /** The model path of the parent (e.g. `HumanName`, `Observation.component`) and the element's name in it. */
  parentPath: string | null;
  name: string;
  key: string;
  index: number | null;
}

export function applyFhirPathPatch(resource: object, parameters: unknown): PatchedResource {
  const original = asResource(resource);
  const operations = parseParameters(cloneInput(parameters, 'ERR_FHIRPATH_PATCH'));
  const doc = structuredClone(original);
  for (const operation of operations) {
    apply(doc, operation);
    // Checked per operation so the error names the operation that touched resourceType or id.
    assertIdentityUnchanged(original, doc, [operation.where]);
  }
  return doc;
}

function parseParameters(input: unknown): Operation[] {
  if (!isObject(input) || input.resourceType !== 'Parameters') {
    throw fail('Parameters', 400, 'A FHIRPath Patch body must be a Parameters resource');
  }
  const params = input.parameter ?? [];
  if (!Array.isArray(params)) throw fail('Parameters', 400, 'Parameters.parameter must be an array');
  return params.map((param: unknown, i): Operation => {
    const where = `Parameters.parameter[${i}]`;
    if (!isObject(param) || param.name !== 'operation') throw fail(where, 400, "Each parameter must be named 'operation'");
    if (!Array.isArray(param.part)) throw fail(where, 400, 'An operation needs its parts (type, path, ...)');
    const parts = new Map<string, JsonObject>();
    for (const part of param.part as unknown[]) {
      if (!isObject(part) || typeof part.name !== 'string') throw fail(where, 400, 'Each part needs a name');
      if (parts.has(part.name)) throw fail(where, 400, `The '${part.name}' part is given more than once`);
      parts.set(part.name, part);
    }
    const type = parts.get('type')?.valueCode;
    if (typeof type !== 'string' || !Object.hasOwn(OPERATION_PARTS, type)) {
      throw fail(where, 400, "The 'type' part must be a valueCode: add | insert | delete | replace | move");
    }
    const expected: readonly string[] = OPERATION_PARTS[type as OperationType];
    for (const name of parts.keys()) {
      if (name !== 'type' && !expected.includes(name)) throw fail(where, 400, `A ${type} operation takes no '${name}' part`);
    }
    for (const name of expected) {
      if (!parts.has(name)) throw fail(where, 400, `A ${type} operation needs a '${name}' part`);
    }
    const path = parts.get('path')!.valueString;
    if (typeof path !== 'string' || path.trim() === '') throw fail(where, 400, "The 'path' part needs a valueString");
    return { type: type as OperationType, path, parts, where };
  });
}

function apply(doc: JsonObject, op: Operation): void {
  switch (op.type) {
    case 'add': {
      const node = single(doc, op, op.path);
      const target = node.data;
      if (!isObject(target)) {
        throw fail(op.where, 422, `'${op.path}' is not a complex element (extensions on primitives are not supported)`);
      }
      const name = op.parts.get('name')!.valueString;
      if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) {
        throw fail(op.where, 400, "The 'name' part needs an element name as valueString");
      }
      const info = known(op, node.path, name);
      const value = buildValue(op.parts.get('value')!, info, op.where);
      if (info.repeating) {
        if (target[name] !== undefined && !Array.isArray(target[name])) {
          throw fail(op.where, 422, `'${name}' at '${op.path}' is not a list`);
        }
        insertAt(target, name, Array.isArray(target[name]) ? (target[name] as unknown[]).length : 0, value);
      } else {
        // The spec allows add on a single element only while it is absent; replace changes it.
        const taken = info.choices ? info.choices.some((t) => has(target, name + t)) : has(target, name);
        if (taken) throw fail(op.where, 422, `'${name}' already exists at '${op.path}': use replace`);
        setSingle(target, keyFor(info, name, value), value);
      }
      return;
    }
    case 'insert': {
      const { parent, key, info } = namedList(doc, op);
      const index = integerPart(op, 'index');
      const length = Array.isArray(parent[key]) ? (parent[key] as unknown[]).length : 0;
      if (index > length) throw fail(op.where, 422, `Index ${index} is past the end of '${op.path}' (${length} elements)`);
      insertAt(parent, key, index, buildValue(op.parts.get('value')!, info, op.where));
      return;
    }
    case 'move': {
      const { parent, key } = namedList(doc, op);
      const source = integerPart(op, 'source');
      const destination = integerPart(op, 'destination');
      const length = Array.isArray(parent[key]) ? (parent[key] as unknown[]).length : 0;
      if (source >= length || destination >= length) {
        throw fail(op.where, 422, `source and destination must be below the length of '${op.path}' (${length} elements)`);
      }
      for (const k of [key, `_${key}`]) {
        const items = parent[k];
        if (Array.isArray(items)) items.splice(destination, 0, items.splice(source, 1)[0]);
      }
      return;
    }
    case 'delete': {
      const nodes = select(doc, op, op.path);
      if (nodes.length === 0) return; // deleting nothing is allowed by the spec
      if (nodes.length > 1) throw fail(op.where, 422, `'${op.path}' matches ${nodes.length} elements; delete removes one`);
      removeSlot(slotOf(nodes[0]!, op));
      // FHIR elements must have a value or children: drop parents the delete left empty (not the resource itself).
      let parent = nodes[0]!.parentResNode;
      while (parent?.parentResNode && isObject(parent.data) && Object.keys(parent.data).length === 0) {
        removeSlot(slotOf(parent, op));
        parent = parent.parentResNode;
      }
      return;
    }
    case 'replace': {
      const node = single(doc, op, op.path);
      const slot = slotOf(node, op);
      const info = known(op, slot.parentPath, slot.name);
      const value = buildValue(op.parts.get('value')!, info, op.where);
      if (slot.index !== null) {
        (slot.parent[slot.key] as unknown[])[slot.index] = value.value;
        alignExtension(slot.parent, slot.key, slot.index, value);
        return;
      }
      const key = info.choices ? keyFor(info, slot.name, value) : slot.key;
      if (key !== slot.key) removeSlot(slot); // a choice changing type, e.g. valueQuantity → valueString
      setSingle(slot.parent, key, value);
      return;
    }
  }
}

/** Evaluates a path on the document. Engine messages can quote resource data, so only parse errors are echoed. */
function select(doc: JsonObject, op: Operation, path: string): FpNode[] {
  const { run } = compiled(op, path);
  let result: unknown[];
  try {
    result = run(doc);
  } catch {
    throw fail(op.where, 400, `'${path}' cannot be evaluated against this resource (unsupported function or type error)`);
  }
  for (const node of result) {
    if (node === null || typeof node !== 'object' || !('parentResNode' in node) || !('propName' in node)) {
      throw fail(op.where, 400, `'${path}' must select elements of the resource, not computed values`);
    }
  }
  // fhirpath.js reads members as JavaScript properties, so `toString` or `constructor` finds what every object
  // inherits. No FHIR element has such a name: those are not elements of the resource, so they match nothing.
  return (result as unknown as FpNode[]).filter((node) => !(typeof node.propName === 'string' && node.propName in Object.prototype));
}

interface Compiled {
  ast: AstNode;
  run: (doc: JsonObject) => unknown[];
}

// Parsing dominates the cost of a patch (~0.2 ms an expression against ~0.02 ms to evaluate a compiled one), and
// clients send the same few paths again and again. Least recently used out keeps the cache bounded.
const CACHE_LIMIT = 1000;
const cache = new LRUCache<string, Compiled>({ max: CACHE_LIMIT });
// traceFn: trace() would otherwise print resource data to the console. Async functions (resolve(), memberOf())
// stay disabled, so evaluation can never reach the network.
const OPTIONS = { resolveInternalTypes: false, traceFn: () => {} };

/** Parser messages only quote the expression, so unlike evaluation errors they are passed on. */
function compiled(op: Operation, path: string): Compiled {
  let entry = cache.get(path);
  if (entry) return entry;
  try {
    const ast = fhirpath.parse(path) as AstNode;
    const run = fhirpath.compile(path, r4, OPTIONS) as (doc: JsonObject) => unknown[];
    entry = { ast, run };
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n', 1)[0] : '';
    throw fail(op.where, 400, `'${path}' is not a valid FHIRPath expression: ${detail}`);
  }
  cache.set(path, entry);
  return entry;
}

function single(doc: JsonObject, op: Operation, path: string): FpNode {
  const nodes = select(doc, op, path);
  if (nodes.length !== 1) throw fail(op.where, 422, `'${path}' must match exactly one element, it matches ${nodes.length}`);
  return nodes[0]!;
}

/** The list named by an insert or move path: the parent expression selects one element, the last step names the list. */
function namedList(doc: JsonObject, op: Operation): { parent: JsonObject; key: string; info: ElementInfo } {
  const split = splitLastStep(op.path, compiled(op, op.path).ast);
  if (!split) throw fail(op.where, 400, `'${op.path}' must end with the name of a list element (e.g. Patient.identifier)`);
  const parent = single(doc, op, split.parent);
  if (!isObject(parent.data)) throw fail(op.where, 422, `'${split.parent}' is not a complex element`);
  const info = known(op, parent.path, split.name);
  if (!info.repeating || (parent.data[split.name] !== undefined && !Array.isArray(parent.data[split.name]))) {
    throw fail(op.where, 422, `'${op.path}' is not a list`);
  }
  return { parent: parent.data, key: split.name, info };
}

interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

/** Uses the parsed expression to confirm it ends in a member step, then cuts that step off the source text. */
function splitLastStep(path: string, ast: AstNode): { parent: string; name: string } | undefined {
  let node: AstNode | undefined = ast;
  while (node?.type === 'EntireExpression') node = node.children?.[0];
  let member: AstNode | undefined;
  if (node?.type === 'InvocationExpression') member = node.children?.[1];
  else if (node?.type === 'TermExpression') member = node.children?.[0]?.children?.[0];
  if (member?.type !== 'MemberInvocation' || !member.text) return undefined;
  const text = path.trim();
  if (!text.endsWith(member.text)) return undefined;
  const name = member.text.replace(/^`|`$/g, '');
  const before = text.slice(0, -member.text.length).trimEnd();
  if (before === '') return { parent: '$this', name };
  return before.endsWith('.') ? { parent: before.slice(0, -1), name } : undefined;
}

/** Finds the node's place in its parent. A choice element (`value`) is stored under its typed key (`valueQuantity`). */
function slotOf(node: FpNode, op: Operation): Slot {
  const parent = node.parentResNode;
  if (!parent || node.propName === null || !isObject(parent.data)) {
    throw fail(op.where, 400, `'${op.path}' selects the resource itself, not an element in it`);
  }
  const container = parent.data;
  const name = node.propName;
  const choices = r4.choiceTypePaths[`${parent.path}.${name}`];
  const key = has(container, name) ? name : choices?.map((t) => name + t).find((k) => has(container, k));
  const items = key === undefined ? undefined : (container[key] ?? container[`_${key}`]);
  const present = key !== undefined && (node.index === null || (Array.isArray(items) && node.index < items.length));
  const held = node.index === null ? items : (items as unknown[] | undefined)?.[node.index];
  // Objects are matched by identity (primitives come back wrapped): a mismatch means fhirpath.js changed how it
  // reports nodes, and patching a guessed place would corrupt the resource.
  if (!present || (isObject(held) && held !== node.data)) {
    throw new FhirError('FHIRPath result node does not match the document', {
      status: 500,
      code: 'ERR_INTERNAL',
      issueType: 'exception',
    });
  }
  return { parent: container, parentPath: parent.path, name, key: key!, index: node.index };
}

function removeSlot({ parent, key, index }: Slot): void {
  if (index === null) {
    delete parent[key];
    delete parent[`_${key}`];
    return;
  }
  for (const k of [key, `_${key}`]) {
    const items = parent[k];
    if (Array.isArray(items)) items.splice(index, 1);
  }
  tidy(parent, key);
}

function setSingle(parent: JsonObject, key: string, value: PatchValue): void {
  parent[key] = value.value;
  if (value.extension !== undefined) parent[`_${key}`] = value.extension;
  else delete parent[`_${key}`];
}

function insertAt(parent: JsonObject, key: string, index: number, value: PatchValue): void {
  const items = Array.isArray(parent[key]) ? (parent[key] as unknown[]) : (parent[key] = []);
  items.splice(index, 0, value.value);
  const extensions = parent[`_${key}`];
  if (Array.isArray(extensions)) extensions.splice(index, 0, null);
  alignExtension(parent, key, index, value);
}

/** Keeps the `_key` list (ids and extensions of primitive list items) parallel to `key`. */
function alignExtension(parent: JsonObject, key: string, index: number, value: PatchValue): void {
  const length = (parent[key] as unknown[]).length;
  let extensions = parent[`_${key}`] as unknown[] | undefined;
  if (!Array.isArray(extensions)) {
    if (value.extension === undefined) return;
    extensions = parent[`_${key}`] = new Array<unknown>(length).fill(null);
  }
  extensions[index] = value.extension ?? null;
  tidy(parent, key);
}

/** FHIR JSON has no empty arrays, and a `_key` list of nulls carries nothing. */
function tidy(parent: JsonObject, key: string): void {
  const extensions = parent[`_${key}`];
  if (Array.isArray(extensions) && extensions.every((e) => e === null)) delete parent[`_${key}`];
  if (Array.isArray(parent[key]) && (parent[key] as unknown[]).length === 0) delete parent[key];
}

function known(op: Operation, typePath: string | null, name: string): ElementInfo {
  const info = typePath ? elementInfo(typePath, name) : undefined;
  if (!info) throw fail(op.where, 400, `${typePath ?? 'The element'} has no element '${name}'`);
  return info;
}

function integerPart(op: Operation, name: string): number {
  const value = op.parts.get(name)!.valueInteger;
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw fail(op.where, 400, `The '${name}' part needs a non-negative valueInteger`);
  }
  return value as number;
}

/** Builds the value of a `value` part: a value[x], a resource, or nested parts naming the element's children. */
function buildValue(part: JsonObject, info: ElementInfo, where: string): PatchValue {
  const keys = Object.keys(part).filter((k) => /^value[A-Z]/.test(k));
  if (keys.length + (part.resource === undefined ? 0 : 1) + (part.part === undefined ? 0 : 1) !== 1) {
    throw fail(where, 400, `The '${String(part.name)}' part needs exactly one of value[x], resource or part`);
  }
  const key = keys[0];
  if (info.choices && key === undefined) {
    throw fail(where, 400, `${info.path} is a choice element: give it as value[x] so its type is known`);
  }
  if (key !== undefined) {
    const type = key.slice('value'.length);
    if (info.choices && !info.choices.includes(type)) throw fail(where, 400, `${info.path} cannot hold a ${type}`);
    const extension = part[`_${key}`];
    const strayExtension = Object.keys(part).some((k) => k.startsWith('_value') && k !== `_${key}`);
    if (strayExtension || (extension !== undefined && (!isObject(extension) || isObject(part[key])))) {
      throw fail(where, 400, `_${key} must be an object beside a primitive ${key}`);
    }
    return { value: part[key], extension, type };
  }
  if (part.resource !== undefined) {
    if (!isObject(part.resource) || typeof part.resource.resourceType !== 'string') {
      throw fail(where, 400, 'A resource value needs a resourceType');
    }
    return { value: part.resource };
  }
  if (!info.childType) throw fail(where, 400, `${info.path} cannot be built from parts: give it as value[x] or resource`);
  if (!Array.isArray(part.part) || part.part.length === 0) throw fail(where, 400, `The parts building ${info.path} are empty`);
  const children = new Map<string, { info: ElementInfo; values: PatchValue[] }>();
  for (const sub of part.part as unknown[]) {
    if (!isObject(sub) || typeof sub.name !== 'string') throw fail(where, 400, `Each part building ${info.path} needs a name`);
    const child = children.get(sub.name) ?? { info: elementInfo(info.childType, sub.name)!, values: [] };
    if (!child.info) throw fail(where, 400, `${info.childType} has no element '${sub.name}'`);
    child.values.push(buildValue(sub, child.info, where));
    children.set(sub.name, child);
  }
  const value: JsonObject = {};
  for (const [name, { info: child, values }] of children) {
    if (!child.repeating && values.length > 1) {
      throw fail(where, 400, `${child.path} is not repeating but is given ${values.length} times`);
    }
    const k = keyFor(child, name, values[0]!);
    value[k] = child.repeating ? values.map((v) => v.value) : values[0]!.value;
    if (values.some((v) => v.extension !== undefined)) {
      value[`_${k}`] = child.repeating ? values.map((v) => v.extension ?? null) : values[0]!.extension;
    }
  }
  return { value };
}

/** Looks an element up in the R4 model, following the type's ancestors (Patient → DomainResource → Resource). */
function elementInfo(typePath: string, name: string): ElementInfo | undefined {
  for (let type: string | undefined = typePath; type; type = r4.type2Parent[type]) {
    const path = `${type}.${name}`;
    const choices = r4.choiceTypePaths[path];
    if (choices) return { path, repeating: false, choices };
    const home = r4.pathsDefinedElsewhere[path] ?? path; // Questionnaire.item.item is defined by Questionnaire.item
    const code = r4.path2Type[home];
    if (code === undefined) continue;
    const repeating = Boolean(r4.path2Repeating[path] ?? r4.path2Repeating[home]);
    // Anonymous elements (BackboneElement, Element) name their children by path; named types by type name.
    const anonymous = code === 'BackboneElement' || code === 'Element';
    const childType = anonymous ? home : /^[a-z]|^System\.|^Resource$/.test(code) ? undefined : code;
    return { path, repeating, ...(childType ? { childType } : {}) };
  }
  return undefined;
}

/** A choice element is stored under its typed key (`value` + `Quantity`); buildValue always types a choice value. */
function keyFor(info: ElementInfo, name: string, value: PatchValue): string {
  return info.choices ? `${name}${value.type}` : name;
}

function fail(where: string, status: 400 | 422, message: string): FhirError {
  const issueType: IssueType = status === 400 ? 'invalid' : 'processing';
  return new FhirError(message, { status, code: 'ERR_FHIRPATH_PATCH', issueType, expression: [where] });
}

function has(obj: JsonObject, key: string): boolean {
  return Object.hasOwn(obj, key) || Object.hasOwn(obj, `_${key}`);
}

/** Plain JSON objects only: fhirpath.js wraps decimals in objects of its own, which must never be patched into. */
function isObject(value: unknown): value is JsonObject {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
