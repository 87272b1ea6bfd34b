/**
 * openapi.yaml against the code it describes: a well-formed OpenAPI 3.1 document (unique operationIds, every
 * $ref resolving inside it), every FHIR path and method a route that matchRoute accepts with the interaction the
 * document names, and every interaction matchRoute can return documented.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { DEV_ISSUER_JWKS_PATH } from '../../src/consent/dev-issuer.ts';
import { FhirError } from '../../src/errors.ts';
import { LEDGER_PATHS } from '../../src/ledger/http/routes.ts';
import { matchRoute } from '../../src/fhir/route.ts';
import { RESOURCE_TYPES } from '../../src/fhir/validate.ts';

type Json = any;

const ROOT = path.resolve(import.meta.dirname, '../..');
const doc: Json = parse(await fs.readFile(path.join(ROOT, 'openapi.yaml'), 'utf8'));

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'] as const;
/** The interactions of src/fhir/route.ts, as the brief of the FHIR core lists them. */
const INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'create', 'history-instance', 'history-type', 'history-system', 'capabilities', 'batch', 'operation'];
const PUBLIC = [
  'GET /fhir/metadata', 'GET /healthz', 'GET /readyz', 'GET /openapi.yaml', `GET ${DEV_ISSUER_JWKS_PATH}`,
  'GET /ledger/checkpoint', 'GET /ledger/key', 'GET /ledger/jwks.json',
];

interface Operation {
  key: string;
  path: string;
  method: string;
  op: Json;
  pathItem: Json;
}

function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [p, pathItem] of Object.entries<Json>(doc.paths)) {
    for (const method of METHODS) {
      if (pathItem[method]) out.push({ key: `${method.toUpperCase()} ${p}`, path: p, method, op: pathItem[method], pathItem });
    }
  }
  return out;
}

/** RFC 6901 pointer inside this document. */
function resolve(ref: string): Json {
  if (!ref.startsWith('#/')) return undefined;
  let node: Json = doc;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

const deref = (node: Json): Json => (node && typeof node.$ref === 'string' ? deref(resolve(node.$ref)) : node);

/** `/fhir/{type}/{id}` → `Patient/123`: the path below the base, as the HTTP adapter hands it to matchRoute. */
function concrete(template: string, values: Record<string, string>): string {
  return template.replace(/^\/fhir\/?/, '').replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? `<${name}>`);
}

const fhirOperations = () => operations().filter((o) => o.path === '/fhir' || o.path.startsWith('/fhir/'));

t.test('an OpenAPI 3.1 document with the local server and a bearer JWT scheme', async (t) => {
  t.match(doc.openapi, /^3\.1\.\d+$/);
  t.same(doc.servers.map((s: Json) => s.url), ['http://127.0.0.1:8080']);
  const schemes = Object.entries<Json>(doc.components.securitySchemes);
  t.equal(schemes.length, 1);
  const [name, scheme] = schemes[0]!;
  t.match(scheme, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  t.same(doc.security, [{ [name]: [] }], 'bearer JWT is the default for every operation');
  t.match(doc.info.description, /503/, 'the fail-closed audit is described');
});

t.test('the audit section calls unrecorded only what the server does not record', async (t) => {
  // test/fhir/crud.test.ts sends each of these refusals and finds its ledger entry (406, 415, bad JSON, too deep,
  // 413, 405), and finds none for a malformed percent-encoding or a 431.
  const audit = /## Audit \(fail-closed\)\n([^]*?)\n## /.exec(doc.info.description)?.[1] ?? '';
  const unrecorded = [...audit.matchAll(/not recorded:?([^]*?)\.\s+(?=[A-Z]|$)/gi)].map((m) => m[1]!).join(' ');
  t.ok(unrecorded.length > 0, 'it says what is not recorded');
  for (const recorded of [/\b404\b/, /\b405\b/, /\b406\b/, /\b413\b/, /\b415\b/, /bad JSON/i, /MAX_JSON_DEPTH/]) {
    t.notMatch(unrecorded, recorded, `${recorded} is recorded`);
    t.match(audit, recorded, `${recorded} is named among the recorded refusals`);
  }
  t.match(unrecorded, /percent-encoding/);
  t.match(unrecorded, /\b431\b/);
});

t.test('every operation has an operationId, and no two share one', async (t) => {
  const ids = operations().map((o) => o.op.operationId);
  t.ok(ids.length > 0);
  t.ok(ids.every((id) => typeof id === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(id)), 'all present and plain');
  t.equal(new Set(ids).size, ids.length, 'unique');
});

t.test('every $ref resolves within the document', async (t) => {
  const refs: string[] = [];
  const walk = (node: Json): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      if (typeof node.$ref === 'string') refs.push(node.$ref);
      Object.values(node).forEach(walk);
    }
  };
  walk(doc);
  t.ok(refs.length > 50, `${refs.length} references found`);
  const broken = refs.filter((ref) => resolve(ref) === undefined);
  t.same([...new Set(broken)], [], 'no local reference dangles, no reference leaves the document');
});

t.test('each FHIR path and method is a route matchRoute accepts, with the documented interaction', async (t) => {
  const ops = fhirOperations();
  t.ok(ops.length >= 15);
  for (const { key, path: template, method, op } of ops) {
    for (const type of ['Patient', 'Observation', RESOURCE_TYPES.at(-1)!]) {
      const sample = concrete(template, { type, id: '123', vid: '2', job: 'a1b2c3d4-0000-4000-8000-000000000001' });
      let match;
      try {
        match = matchRoute(method.toUpperCase(), sample);
      } catch (err) {
        t.fail(`${key}: matchRoute('${method.toUpperCase()}', '${sample}') threw ${(err as FhirError).code ?? err}`);
        continue;
      }
      t.equal(match.interaction, op['x-fhir-interaction'], `${key} (${sample}) is ${match.interaction}`);
      if (template.includes('{type}')) t.equal(match.resourceType, type);
      if (template.includes('{id}')) t.equal(match.id, '123');
      if (template.includes('{vid}')) t.equal(match.versionId, '2');
      const operation = /\/(\$[a-z-]+)$/i.exec(template)?.[1];
      if (operation) t.equal(match.operation, operation);
    }
  }
});

t.test('every interaction matchRoute can return is documented', async (t) => {
  // Read from the source, so a new interaction in the router fails here until the document describes it.
  const source = await fs.readFile(path.join(ROOT, 'src/fhir/route.ts'), 'utf8');
  const returned = new Set([...source.matchAll(/interaction: '([a-z-]+)'/g)].map((m) => m[1]!));
  for (const interaction of INTERACTIONS) t.ok(returned.has(interaction), `route.ts returns ${interaction}`);
  const documented = new Set(fhirOperations().map((o) => o.op['x-fhir-interaction']));
  for (const interaction of returned) t.ok(documented.has(interaction), `${interaction} is documented`);
  t.same([...documented].filter((i) => !returned.has(i)), [], 'the document names no interaction the router lacks');
});

t.test('path parameters agree with what matchRoute accepts', async (t) => {
  for (const { key, path: template, op, pathItem } of fhirOperations()) {
    const params = [...(pathItem.parameters ?? []), ...(op.parameters ?? [])].map(deref).filter((p: Json) => p.in === 'path');
    const names = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    t.same(params.map((p: Json) => p.name).sort(), [...names].sort(), `${key} declares its path parameters`);
    t.ok(params.every((p: Json) => p.required === true), `${key}: path parameters are required`);
  }
  const param = (name: string) => new RegExp(deref(doc.components.parameters[name]).schema.pattern, 'u');

  t.equal(RESOURCE_TYPES.length, 146, 'the document speaks of 146 R4 resource types');
  const typePattern = param('type');
  t.same(RESOURCE_TYPES.filter((type) => !typePattern.test(type)), [], 'the type pattern admits every R4 type');
  for (const type of ['patient', 'Patient1', 'P', 'Pat_ient']) {
    t.notOk(typePattern.test(type), `'${type}' is outside the type pattern`);
    t.throws(() => matchRoute('GET', `${type}/1`), { code: 'ERR_UNKNOWN_TYPE' });
  }

  // The id pattern must draw the line exactly where matchRoute does (400 ERR_INVALID_ID on one side).
  const samples = ['1', 'a.b-C', 'x'.repeat(64), 'x'.repeat(65), 'a_b', 'a b', 'é', 'a:b', '-'];
  for (const [name, at] of [['id', (v: string) => `Patient/${v}`], ['vid', (v: string) => `Patient/1/_history/${v}`]] as const) {
    const pattern = param(name);
    for (const value of samples) {
      let accepted = true;
      try {
        matchRoute('GET', at(encodeURIComponent(value)));
      } catch (err) {
        t.equal((err as FhirError).code, 'ERR_INVALID_ID', `${name} '${value}' is refused as an invalid id`);
        accepted = false;
      }
      t.equal(pattern.test(value), accepted, `${name} pattern and matchRoute agree on '${value}'`);
    }
  }
});

t.test('public operations are exactly the open ones; every other one documents 401 with WWW-Authenticate', async (t) => {
  const ops = operations();
  t.same(ops.filter((o) => Array.isArray(o.op.security) && o.op.security.length === 0).map((o) => o.key).sort(), [...PUBLIC].sort());
  for (const { key, op } of ops) {
    if (PUBLIC.includes(key)) {
      t.notOk(op.responses['401'], `${key} never answers 401`);
      continue;
    }
    const unauthorized = deref(op.responses['401']);
    t.ok(unauthorized?.headers?.['WWW-Authenticate'], `${key} documents 401 with WWW-Authenticate`);
  }
  const publicFhir = fhirOperations().filter((o) => PUBLIC.includes(o.key));
  t.same(publicFhir.map((o) => o.op['x-fhir-interaction']), ['capabilities'], 'only the CapabilityStatement is public under /fhir');
});

t.test('FHIR errors are OperationOutcomes; audited interactions document the 503 of a ledger that cannot record', async (t) => {
  const outcome = '#/components/schemas/OperationOutcome';
  for (const { key, op } of fhirOperations()) {
    for (const [status, ref] of Object.entries<Json>(op.responses)) {
      const response = deref(ref);
      t.ok(typeof response?.description === 'string', `${key} ${status} is described`);
      if (Number(status) < 400) continue;
      // Errors are always fhir+json.
      const content = Object.entries<Json>(response.content ?? {});
      t.ok(content.some(([type]) => type === 'application/fhir+json'), `${key} ${status} comes as application/fhir+json`);
      t.same(content.filter(([, media]) => media.schema?.$ref !== outcome).map(([type]) => type), [], `${key} ${status} is an OperationOutcome`);
    }
    if (op['x-fhir-interaction'] === 'capabilities') continue;
    t.ok(deref(op.responses['503'])?.headers?.['Retry-After'], `${key} documents 503 with Retry-After`);
  }
});

t.test('the node paths are the ones app.ts serves', async (t) => {
  const nodePaths = Object.keys(doc.paths).filter((p) => p !== '/fhir' && !p.startsWith('/fhir/') && !p.startsWith('/ledger/'));
  t.same(nodePaths.sort(), ['/healthz', '/readyz', '/openapi.yaml', DEV_ISSUER_JWKS_PATH].sort());
  const app = await fs.readFile(path.join(ROOT, 'src/app.ts'), 'utf8');
  for (const p of ['/healthz', '/readyz', '/openapi.yaml']) t.ok(app.includes(`http.get('${p}'`), `app.ts serves ${p}`);
  t.ok(app.includes('http.get(DEV_ISSUER_JWKS_PATH'), 'app.ts serves the dev issuer JWKS');
});

t.test('the ledger paths are exactly the auditor API the plugin serves, with its parameters and errors', async (t) => {
  const documented = Object.keys(doc.paths).filter((p) => p.startsWith('/ledger/'));
  t.same([...documented].sort(), [...LEDGER_PATHS].sort());
  const source = await fs.readFile(path.join(ROOT, 'src/ledger/http/routes.ts'), 'utf8');
  for (const p of LEDGER_PATHS) {
    const pathItem = doc.paths[p];
    t.same(Object.keys(pathItem), ['get'], `${p} is GET only`);
    const op = pathItem.get;
    t.equal(op.tags?.[0], 'Ledger');
    if (PUBLIC.includes(`GET ${p}`)) continue;
    // The parameters the handler accepts (onlyParams) are the ones documented.
    const handler = source.slice(source.indexOf(`audited('${p}'`));
    const accepted = /onlyParams\(query, \[([^\]]*)\]\)/.exec(handler)?.[1]?.match(/'([a-z]+)'/g)?.map((q) => q.slice(1, -1)) ?? [];
    t.same((op.parameters ?? []).map((q: Json) => deref(q).name).sort(), accepted.sort(), `${p} documents the parameters it accepts`);
    for (const status of ['400', '401', '403', '503']) {
      const response = deref(op.responses[status]);
      t.equal(response?.content?.['application/fhir+json']?.schema?.$ref, '#/components/schemas/OperationOutcome', `${p} ${status} is an OperationOutcome`);
    }
  }
});
