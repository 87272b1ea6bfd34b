/**
 * Fuzzing searches and Bundles over real HTTP (fixtures/http.ts has the invariants). Searches: generated queries
 * (modifiers, prefixes, dates, quantities, chains, _has, _include, _count, _sort …) by GET, by POST _search as a
 * form, at type, system and compartment level, with raw (mis-encoded) query strings too. Bundles: batches and
 * transactions mixing good entries with broken ones (no request, odd methods and URLs, invalid resources,
 * duplicate fullUrls, dangling urn:uuid and unresolvable conditional references, bad If-Match); a transaction
 * with a broken entry must fail as a whole with a 4xx and store nothing.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import fc from 'fast-check';
import { badReference } from './fixtures/arbitraries.ts';
import { startFuzzServer, type FuzzRequest } from './fixtures/http.ts';
import { holds } from './fixtures/runs.ts';
import { queryOf } from './fixtures/search.ts';

const JSON_TYPE = { 'content-type': 'application/fhir+json' };

t.test('searches and bundles over HTTP', async (t) => {
  const fz = await startFuzzServer(t);

  await t.test('generated searches: a searchset or a 4xx, at every level and by GET or POST', async (t) => {
    const level = fc.constantFrom('type', 'post', 'system', 'compartment', 'everything', 'history', 'raw');
    await holds(
      t,
      // Two parameters at most: with more, nearly every query holds one bad value and the 200 paths go untested.
      fc.asyncProperty(queryOf(2), level, async ([type, q, lenient], how) => {
        const params = new URLSearchParams();
        for (const [name, values] of Object.entries(q)) for (const v of values) params.append(name, v);
        const qs = params.toString();
        const headers: Record<string, string> = lenient ? { prefer: 'handling=lenient' } : {};
        let request: FuzzRequest;
        switch (how) {
          case 'type':
            request = { method: 'GET', path: `${type}?${qs}`, headers };
            break;
          case 'post':
            request = { method: 'POST', path: `${type}/_search`, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: qs };
            break;
          case 'system':
            request = { method: 'GET', path: `?_type=${type}&${qs}`, headers };
            break;
          case 'compartment':
            request = { method: 'GET', path: `Patient/fz-pat-1/${type}?${qs}`, headers };
            break;
          case 'everything':
            request = { method: 'GET', path: `Patient/fz-pat-1/$everything?${qs}`, headers };
            break;
          case 'history':
            request = { method: 'GET', path: `${type}/_history?${qs}`, headers };
            break;
          case 'raw': {
            // Names and values as typed, not encoded: stray %, #, spaces and non-ASCII reach the server's own decoding.
            const raw = Object.entries(q).flatMap(([n, vs]) => vs.map((v) => `${n}=${v}`)).join('&').replace(/#/g, '%23');
            request = { method: 'GET', path: `${type}?${raw}`, headers };
            break;
          }
        }
        const res = await fz.check(request);
        if (res.status === 200 && !(res.body?.resourceType === 'Bundle')) throw new Error(`200 without a Bundle for ${request.path}`);
      }),
      60,
      0.4,
    );
    await fz.settle(t, 'searches');
  });

  await t.test('batches and transactions with broken entries', async (t) => {
    type Entry = { entry: unknown; bad: boolean };
    const patient = (family: string) => ({ resourceType: 'Patient', name: [{ family }], identifier: [{ system: 'urn:fuzz:new', value: randomUUID() }] });
    const good = fc.constantFrom<() => Entry>(
      () => ({ bad: false, entry: { fullUrl: `urn:uuid:${randomUUID()}`, resource: patient('Good'), request: { method: 'POST', url: 'Patient' } } }),
      () => ({ bad: false, entry: { resource: { resourceType: 'Organization', id: 'fz-org-b', name: 'Other' }, request: { method: 'PUT', url: 'Organization/fz-org-b' } } }),
      () => ({ bad: false, entry: { resource: patient('Maybe'), request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:fuzz|p1' } } }),
      () => ({ bad: false, entry: { request: { method: 'GET', url: 'Patient/fz-pat-1' } } }),
      () => ({ bad: false, entry: { request: { method: 'GET', url: 'Observation?subject=Patient/fz-pat-1' } } }),
    );
    // Entries a transaction must refuse whatever else it holds.
    const bad = fc.constantFrom<unknown>(
      null, 1, 'x', [], {},
      { resource: patient('NoRequest') },
      { request: { method: 'FETCH', url: 'Patient' }, resource: patient('Odd') },
      { request: { method: 'POST' }, resource: patient('NoUrl') },
      { request: { method: 7, url: 'Patient' } },
      { request: { method: 'POST', url: 'http://other.example/fhir/Patient' }, resource: patient('Foreign') },
      { request: { method: 'POST', url: 'Nope' }, resource: { resourceType: 'Nope' } },
      { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', gender: 5 } },
      { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } },
      { request: { method: 'POST', url: 'Patient' } },
      { request: { method: 'PUT', url: 'Organization/fz-org', ifMatch: 'W/"999"' }, resource: { resourceType: 'Organization', id: 'fz-org', name: 'Renamed' } },
      { request: { method: 'PUT', url: 'Organization/fz-org', ifMatch: 5 }, resource: { resourceType: 'Organization', id: 'fz-org', name: 'Renamed' } },
      { request: { method: 'PUT', url: 'Organization/fz-org', ifMatch: { a: 1 } }, resource: { resourceType: 'Organization', id: 'fz-org', name: 'Renamed' } },
      { request: { method: 'POST', url: 'Patient', ifNoneExist: 7 }, resource: patient('IfNoneExist') },
      { request: { method: 'POST', url: 'Patient', ifNoneExist: 'bogus=1' }, resource: patient('IfNoneExist') },
      { request: { method: 'POST', url: 'Patient', ifNoneExist: 'gender=male' }, resource: patient('IfNoneExist') },
      { request: { method: 'PUT', url: 'Patient?gender=male' }, resource: patient('Cond') },
      { request: { method: 'DELETE', url: 'Patient?bogus=1' } },
      { request: { method: 'POST', url: '' }, resource: { resourceType: 'Bundle', type: 'batch', entry: [] } },
      { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient?identifier=urn:fuzz|nobody' } } },
      { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient?gender=male' } } },
      { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient?bogus=1' } } },
      { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Nope?x=1' } } },
      { request: { method: 'GET', url: 'Patient/fz-pat-1', ifNoneMatch: 3 } },
      { request: { method: 'GET', url: 'Patient/fz-pat-1', ifModifiedSince: { x: 1 } } },
      { request: { method: 'PATCH', url: 'Patient/fz-pat-1' }, resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: 'bm90IGpzb24=' } },
      { fullUrl: 7, request: { method: 'POST', url: 'Patient' }, resource: patient('FullUrl') },
    );
    // Odd references: some resolve (Patient?identifier=urn:fuzz|p1 is one patient), some are refused, some stored
    // as they are; none may cause a 5xx, but none is certainly bad either.
    const oddReference = badReference.map((reference): Entry => ({ bad: false, entry: { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference } } } }));
    const entries = fc.array(
      fc.oneof(
        good.map((make) => make()),
        bad.map((entry): Entry => ({ entry, bad: true })),
        oddReference,
        fc.nat({ max: 5 }).map((i): Entry => ({ bad: true, entry: { fullUrl: 'urn:uuid:duplicate-is-fine-once', request: { method: 'POST', url: 'Patient' }, resource: patient(`dup${i}`) } })),
      ),
      { maxLength: 6 },
    );
    const bundleType = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('transaction', 'batch') }, fc.constantFrom<unknown>('document', 'collection', 'history', '', 7, null, 'TRANSACTION'));
    await holds(
      t,
      fc.asyncProperty(bundleType, entries, fc.option(fc.constantFrom('return=minimal', 'return=OperationOutcome', 'handling=lenient'), { nil: undefined }), async (type, list, prefer) => {
        // One urn:uuid fullUrl repeated is only bad when it appears twice; a lone one is a fine create.
        const dups = list.filter((e) => (e.entry as any)?.fullUrl === 'urn:uuid:duplicate-is-fine-once').length;
        const broken = list.some((e) => e.bad && (e.entry as any)?.fullUrl !== 'urn:uuid:duplicate-is-fine-once') || dups > 1;
        const bundle = { resourceType: 'Bundle', type, entry: list.map((e) => e.entry) };
        const headers: Record<string, string> = { ...JSON_TYPE, ...(prefer ? { prefer } : {}) };
        const isTransaction = type === 'transaction';
        const isBundleType = type === 'transaction' || type === 'batch';
        await fz.check({ method: 'POST', path: '', headers, body: JSON.stringify(bundle) }, {
          status: (s) => (!isBundleType ? s === 400 : isTransaction && broken ? s >= 400 && s < 500 : s < 500),
        });
      }),
      40,
      0.3,
    );
    await fz.settle(t, 'bundles');
  });
});
