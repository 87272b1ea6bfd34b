/**
 * Fuzzing request bodies over real HTTP (fixtures/http.ts has the invariants): broken JSON, mutated official
 * examples, FHIR-shaped nonsense, bodies over BODY_LIMIT and nested deeper than MAX_JSON_DEPTH, bad ids and
 * references, every kind of Content-Type, aimed at create, update, patch, $validate and odd methods.
 */
import t from 'tap';
import fc from 'fast-check';
import { badId, badReference, brokenJsonText, CONTENT_TYPES, deepBody, fhirish, mutatedExample, unrepresentableJsonText } from './fixtures/arbitraries.ts';
import { BODY_LIMIT, MAX_JSON_DEPTH, SEEDED, startFuzzServer, type FuzzRequest } from './fixtures/http.ts';
import { fhirPathPatch } from './fixtures/patch.ts';
import { holds } from './fixtures/runs.ts';
import { withoutBom } from '../../src/fhir/http/json-body.ts';

const JSON_TYPE = { 'content-type': 'application/fhir+json' };
const is4xx = (s: number) => s >= 400 && s < 500;

t.test('hostile bodies over HTTP', async (t) => {
  const fz = await startFuzzServer(t);

  await t.test('malformed JSON is a 400 on every write endpoint', async (t) => {
    const target = fc.constantFrom(
      { method: 'POST', path: 'Patient' },
      { method: 'PUT', path: 'Patient/fz-pat-1' },
      { method: 'PUT', path: 'Patient?identifier=urn:fuzz|p1' },
      { method: 'POST', path: '' },
      { method: 'POST', path: 'Patient/$validate' },
      { method: 'POST', path: 'Patient/_search' },
    );
    await holds(
      t,
      fc.asyncProperty(target, brokenJsonText, async (tgt, text) => {
        // An empty body is no body (a search, or a 400 for a missing resource), not broken JSON.
        let valid = true;
        try {
          // A leading byte order mark is ignored, as RFC 8259 allows (json-body.ts).
          if (text.trim() !== '') JSON.parse(withoutBom(text));
        } catch {
          valid = false;
        }
        // Only texts JSON.parse refuses must be refused as JSON; the rest may fail later, as any 4xx.
        await fz.check({ ...tgt, headers: JSON_TYPE, body: text }, { status: (s) => (valid ? s < 500 : s === 400) });
      }),
      25,
      0.2,
    );
    await fz.settle(t, 'malformed JSON');
  });

  await t.test('valid JSON that no FHIR value can be (1e400, a lone surrogate) is a 4xx that stores nothing', async (t) => {
    await holds(
      t,
      fc.asyncProperty(unrepresentableJsonText, async ({ type, text }) => {
        await fz.check({ method: 'POST', path: type, headers: JSON_TYPE, body: text }, { status: is4xx });
      }),
      20,
      0.2,
    );
    await fz.settle(t, 'unrepresentable JSON');
  });

  await t.test('mutated official examples: accepted as valid, or refused with a 4xx that stores nothing', async (t) => {
    await holds(
      t,
      fc.asyncProperty(mutatedExample, fc.constantFrom('POST', 'PUT', 'validate'), async ({ original, mutated }, how) => {
        const type = String(original.resourceType);
        const id = typeof (mutated as any)?.id === 'string' ? (mutated as any).id : original.id;
        const request: FuzzRequest =
          how === 'POST'
            ? { method: 'POST', path: type, headers: JSON_TYPE, body: JSON.stringify(mutated) }
            : how === 'PUT'
              ? { method: 'PUT', path: `${type}/${encodeURIComponent(String(id ?? 'fz-x'))}`, headers: JSON_TYPE, body: JSON.stringify(mutated) }
              : { method: 'POST', path: `${type}/$validate`, headers: JSON_TYPE, body: JSON.stringify(mutated) };
        await fz.check(request);
      }),
      30,
      0.3,
    );
    await fz.settle(t, 'mutated examples');
  });

  await t.test('FHIR-shaped nonsense built with fc.letrec', async (t) => {
    await holds(
      t,
      fc.asyncProperty(fhirish, fc.constantFrom('POST Patient', 'POST Observation', 'PUT', 'POST base', 'PATCH'), async (resource, how) => {
        const body = JSON.stringify(resource);
        const type = typeof resource.resourceType === 'string' && resource.resourceType !== '' ? resource.resourceType : 'Patient';
        const id = typeof resource.id === 'string' ? resource.id : 'fz-pat-2';
        const request: FuzzRequest =
          how === 'PUT'
            ? { method: 'PUT', path: `${encodeURIComponent(type)}/${encodeURIComponent(id)}`, headers: JSON_TYPE, body }
            : how === 'POST base'
              ? { method: 'POST', path: '', headers: JSON_TYPE, body }
              : how === 'PATCH'
                ? { method: 'PATCH', path: 'Patient/fz-pat-2', headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'replace', path: '/name', value: resource }]) }
                : { method: 'POST', path: how.slice(5), headers: JSON_TYPE, body };
        await fz.check(request);
      }),
      30,
      0.3,
    );
    await fz.settle(t, 'fc.letrec nonsense');
  });

  await t.test('bodies over BODY_LIMIT are a 413; nesting over MAX_JSON_DEPTH a 400', async (t) => {
    const huge = fc.tuple(fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT * 3 }), fc.constantFrom('string', 'array', 'whitespace')).map(([size, kind]) => {
      const head = '{"resourceType":"Patient","name":[{"family":"';
      if (kind === 'string') return `${head}${'x'.repeat(size - head.length - 4)}"}]}`;
      if (kind === 'array') return `{"resourceType":"Patient","extension":[${Array.from({ length: Math.ceil(size / 3) }, () => '{},').join('')}{}]}`;
      return `${' '.repeat(size)}{}`;
    });
    const deep = fc.tuple(fc.integer({ min: MAX_JSON_DEPTH, max: MAX_JSON_DEPTH * 40 }), fc.constantFrom('array' as const, 'object' as const, 'mixed' as const, 'string-brackets' as const));
    await holds(
      t,
      fc.asyncProperty(fc.oneof(huge.map((body) => ({ body, kind: 'huge' as const })), deep.map(([d, style]) => ({ body: deepBody(d, style), kind: style === 'string-brackets' ? ('brackets' as const) : ('deep' as const) }))), fc.constantFrom('POST Patient', 'PUT Patient/fz-pat-1', 'POST ', 'POST Patient/_search', 'PATCH Patient/fz-pat-1'), async ({ body, kind }, target) => {
        const [method, path] = target.split(' ') as [string, string];
        const headers = method === 'PATCH' ? { 'content-type': 'application/json-patch+json' } : JSON_TYPE;
        await fz.check({ method, path, headers, body }, { status: (s) => (kind === 'huge' ? s === 413 : kind === 'deep' ? s === 400 : is4xx(s) || s < 300) });
      }),
      12,
      0.05,
    );
    await fz.settle(t, 'huge and deep');
  });

  await t.test('bad ids in the URL and in the body, bad references', async (t) => {
    const seeded = SEEDED[0];
    await holds(
      t,
      fc.asyncProperty(badId, badReference, fc.constantFrom('url', 'body-id', 'reference', 'vread', 'history', 'delete', 'compartment'), async (id, reference, where) => {
        const enc = encodeURIComponent(id);
        let request: FuzzRequest;
        switch (where) {
          case 'url':
            request = { method: 'PUT', path: `Patient/${enc}`, headers: JSON_TYPE, body: JSON.stringify({ ...seeded, id }) };
            break;
          case 'body-id':
            request = { method: 'POST', path: 'Patient', headers: JSON_TYPE, body: JSON.stringify({ ...seeded, id }) };
            break;
          case 'reference':
            request = { method: 'POST', path: 'Observation', headers: JSON_TYPE, body: JSON.stringify({ ...SEEDED[5], id: undefined, subject: { reference } }) };
            break;
          case 'vread':
            request = { method: 'GET', path: `Patient/fz-pat-1/_history/${enc}` };
            break;
          case 'history':
            request = { method: 'GET', path: `Patient/${enc}/_history` };
            break;
          case 'delete':
            request = { method: 'DELETE', path: `Patient/${enc}` };
            break;
          case 'compartment':
            request = { method: 'GET', path: `Patient/${enc}/Observation` };
            break;
        }
        await fz.check(request);
      }),
      30,
      0.3,
    );
    await fz.settle(t, 'ids and references');
  });

  await t.test('every Content-Type, and none, on every method', async (t) => {
    const body = fc.oneof(fc.constant(JSON.stringify({ ...SEEDED[1], name: [{ family: 'Changed?' }] })), brokenJsonText, fc.constant(''), fc.constant('<Patient xmlns="http://hl7.org/fhir"/>'), fc.constant('a=1&b=2'));
    await holds(
      t,
      fc.asyncProperty(fc.option(fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s))), { nil: undefined }), fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'GET', 'OPTIONS'), fc.constantFrom('Patient', 'Patient/fz-pat-2', 'Patient/_search', '', 'metadata', 'Patient/$validate', 'Nope'), body, async (contentType, method, path, text) => {
        const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType };
        await fz.check({ method, path, headers, body: method === 'GET' ? undefined : text });
      }),
      40,
      0.3,
    );
    await fz.settle(t, 'content types');
  });

  await t.test('FHIRPath Patch Parameters with odd paths, names, values and indexes', async (t) => {
    // Earlier properties may have deleted the targets (a DELETE is a fine write): put them back first.
    for (const r of [SEEDED[1], SEEDED[5]]) await fz.check({ method: 'PUT', path: `${r.resourceType}/${r.id}`, headers: JSON_TYPE, body: JSON.stringify(r) });
    const body = fc.oneof({ weight: 8, arbitrary: fhirPathPatch }, fhirish);
    await holds(
      t,
      fc.asyncProperty(body, fc.constantFrom('Patient/fz-pat-2', 'Patient/fz-pat-1', 'Patient?identifier=urn:fuzz|p2', 'Observation/fz-obs'), async (parameters, target) => {
        await fz.check({ method: 'PATCH', path: target, headers: JSON_TYPE, body: JSON.stringify(parameters) });
      }),
      40,
      0.3,
    );
    await fz.settle(t, 'FHIRPath Patch');
  });
});
