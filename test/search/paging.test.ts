// Paging walked to the end while resources are written, updated and deleted between pages; previous links;
// the ledger entry of a search (query without plaintext values, the patients touched).
import t from 'tap';
import { startServer, type TestServer } from '../helpers/server.ts';

const observation = (id: string, day: number, patient = 'pp') => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
  subject: { reference: `Patient/${patient}` },
  effectiveDateTime: `2024-01-${String(day).padStart(2, '0')}T12:00:00Z`,
});

async function put(server: TestServer, resource: Record<string, unknown>) {
  const res = await server.fhir(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: resource });
  if (res.status >= 300) throw new Error(`${res.status} ${res.text}`);
}

const relative = (server: TestServer, url: string) => url.slice(server.baseUrl.length + 1);
const link = (bundle: any, relation: string) => bundle.link.find((l: any) => l.relation === relation)?.url as string | undefined;

t.test('paging by cursor stays correct while resources are written', async (t) => {
  const server = await startServer(t);
  await put(server, { resourceType: 'Patient', id: 'pp' });
  const original = Array.from({ length: 25 }, (_, i) => `obs-${String(i + 1).padStart(2, '0')}`);
  const batch = await server.fhir('', {
    method: 'POST',
    body: { resourceType: 'Bundle', type: 'batch', entry: original.map((id, i) => ({ resource: observation(id, i + 1), request: { method: 'PUT', url: `Observation/${id}` } })) },
  });
  t.equal(batch.status, 200);
  const seen: string[] = [];
  const pages: any[] = [];
  let url: string | undefined = 'Observation?patient=pp&_sort=-date&_count=7';
  let round = 0;
  while (url) {
    const res = await server.fhir(url);
    t.equal(res.status, 200);
    pages.push(res.body);
    seen.push(...res.body.entry.map((e: any) => e.resource.id));
    // writes between pages: new resources sorting before, inside and after the cursor; an update; a deletion
    round++;
    await Promise.all([put(server, observation(`new-${round}-a`, 1)), put(server, observation(`new-${round}-b`, 28)), put(server, observation(`new-${round}-c`, 15))]);
    if (round === 1) {
      await put(server, { ...observation('obs-25', 25), status: 'amended' }); // already seen: updated
      t.equal((await server.fhir('Observation/obs-03', { method: 'DELETE' })).status, 200); // not yet seen: deleted
    }
    const next = link(res.body, 'next');
    url = next && relative(server, next);
  }
  const expected = original.filter((id) => id !== 'obs-03').reverse();
  t.same(seen, expected, 'every resource of the first page\'s point in time, in order, once; none created later');
  t.equal(pages.length, 4);
  t.equal(pages[0].total, 25);

  // previous from the second page gives the first page again (minus what changed since)
  const back = await server.fhir(relative(server, link(pages[1], 'previous')!));
  t.same(back.body.entry.map((e: any) => e.resource.id), pages[0].entry.map((e: any) => e.resource.id));
  t.notOk(link(pages[0], 'previous'), 'the first page has no previous link');
  // a self link repeats its page
  const self = await server.fhir(relative(server, link(pages[2], 'self')!));
  t.same(self.body.entry.map((e: any) => e.resource.id), pages[2].entry.map((e: any) => e.resource.id));
  // a new search sees the new resources
  const fresh = await server.fhir('Observation?patient=pp&_count=1000');
  t.equal(fresh.body.total, 24 + 3 * 4);
});

t.test('a search is one ledger entry: parameter names in clear, values only as keyed hashes, the patients touched', async (t) => {
  const server = await startServer(t);
  await put(server, { resourceType: 'Patient', id: 'pa', name: [{ family: 'Zebedee' }] });
  await put(server, { resourceType: 'Patient', id: 'pb', name: [{ family: 'Zebedeus' }] });
  await put(server, observation('oa', 2, 'pa'));
  const before = server.app.ledger.size();
  const res = await server.fhir('Patient?name=Zebede&_revinclude=Observation:subject&_count=5');
  t.equal(res.status, 200);
  t.equal(server.app.ledger.size(), before + 1, 'exactly one entry');
  const [entry] = await server.app.ledger.getEntries(before, before + 1);
  const text = new TextDecoder().decode(entry!.bytes);
  const json = JSON.parse(text);
  t.equal(json.interaction, 'search-type');
  t.notMatch(text, /Zebede/, 'no plaintext search value');
  t.match(json.query, /^_count=5&_revinclude=Observation%3Asubject&name=h%3A[A-Za-z0-9_-]{43}$/);
  t.same(json.patients, ['Patient/pa', 'Patient/pb']);
  t.notOk(json.entity?.some((e: any) => e.reference !== 'Patient'), 'no result resource is listed as entity');
  // the same value hashes the same way (the node can tell which query was run), another value differently
  await server.fhir('Patient?name=Zebede');
  await server.fhir('Patient?name=Other');
  const [again, other] = await server.app.ledger.getEntries(before + 1, before + 3);
  const q = (e: any) => JSON.parse(new TextDecoder().decode(e.bytes)).query as string;
  t.equal(q(again), json.query.replace(/^_count=5&_revinclude=Observation%3Asubject&/, ''));
  t.not(q(other), q(again));
  // a failed search is audited by the router, with its error code
  await server.fhir('Patient?name:nope=x');
  const [failed] = await server.app.ledger.getEntries(before + 3, before + 4);
  const f = JSON.parse(new TextDecoder().decode(failed!.bytes));
  t.equal(f.status, 400);
  t.equal(f.error, 'ERR_UNKNOWN_MODIFIER');
});
