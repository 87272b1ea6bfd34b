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

t.test('a page in id order read straight off the index (a whole type, one exact value): as the general way gives it', async (t) => {
  const server = await startServer(t);
  const patient = (id: string) => ({ resourceType: 'Patient', id, active: true });
  const ids = Array.from({ length: 23 }, (_, i) => `p-${String(i + 1).padStart(2, '0')}`);
  const batch = await server.fhir('', {
    method: 'POST',
    body: { resourceType: 'Bundle', type: 'batch', entry: ids.map((id) => ({ resource: patient(id), request: { method: 'PUT', url: `Patient/${id}` } })) },
  });
  t.equal(batch.status, 200);
  // `_lastUpdated=ge2000` matches every Patient but adds a filter, so it takes the general way (all matches, sorted, sliced)
  const general = (query: string) => `${query}&_lastUpdated=ge2000-01-01`;
  const pageToken = (url: string | undefined) => url && new URL(url).searchParams.get('_page');
  const ofPage = (body: any) => ({
    ids: (body.entry ?? []).map((e: any) => e.resource.id),
    total: body.total,
    next: pageToken(link(body, 'next')),
    previous: pageToken(link(body, 'previous')),
  });
  let walk = 0;
  for (const base of ['Patient?_count=5', 'Patient?active=true&_count=5']) {
    for (const order of ['', '&_sort=_id', '&_sort=-_id']) {
      const name = `${base}${order}`;
      const descending = order === '&_sort=-_id';
      let query = name;
      let round = 0;
      const walked: string[] = [];
      let last: any;
      walk++;
      for (;;) {
        const [fast, slow] = await Promise.all([server.fhir(query), server.fhir(general(query))]);
        t.equal(fast.status, 200);
        t.same(ofPage(fast.body), ofPage(slow.body), `${name}: page ${round} as the general way gives it`);
        walked.push(...ofPage(fast.body).ids);
        last = fast.body;
        // writes between pages: ids before, inside and after the cursor; a seen one made inactive, an unseen one deleted
        round++;
        await Promise.all([
          put(server, patient(`p-00-${walk}-${round}`)),
          put(server, patient(`p-12-${walk}-${round}`)),
          put(server, patient(`p-99-${walk}-${round}`)),
          put(server, { ...patient(`p-50-${walk}-${round}`), active: false }), // created later, without the searched value
        ]);
        if (round === 1) {
          await put(server, { ...patient(walked[0]!), active: false });
          const unseen = descending ? `p-0${2 + walk}` : `p-${22 - walk}`;
          t.equal((await server.fhir(`Patient/${unseen}`, { method: 'DELETE' })).status, 200);
        }
        const next = ofPage(fast.body).next;
        if (!next) break;
        query = `${name}&_page=${next}`;
      }
      t.ok(walked.length >= 10, `${name}: walked ${walked.length} patients`);
      t.same(walked, [...walked].sort((a, b) => (descending ? (a < b ? 1 : -1) : a < b ? -1 : 1)), `${name}: in id order`);
      t.equal(new Set(walked).size, walked.length, `${name}: each once`);
      // and back again by the previous links
      let previous = ofPage(last).previous;
      while (previous) {
        const q = `${name}&_page=${previous}`;
        const [fast, slow] = await Promise.all([server.fhir(q), server.fhir(general(q))]);
        t.same(ofPage(fast.body), ofPage(slow.body), `${name}: a previous page as the general way gives it`);
        previous = ofPage(fast.body).previous;
      }
    }
  }
  const inactive = await server.fhir('Patient?active=false&_count=50');
  t.same(ofPage(inactive.body), ofPage((await server.fhir(general('Patient?active=false&_count=50'))).body), 'the other value');
  t.ok(inactive.body.total >= 3);
  // _total=none skips the count; _summary=count is the count alone
  const none = await server.fhir('Patient?_total=none&_count=3');
  t.equal(none.body.total, undefined);
  t.equal(none.body.entry.length, 3);
  for (const q of ['Patient?_summary=count', 'Patient?active=true&_summary=count']) {
    t.equal((await server.fhir(q)).body.total, (await server.fhir(general(q))).body.total, q);
  }
});
