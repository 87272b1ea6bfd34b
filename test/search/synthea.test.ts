// Synthea records loaded, then search result counts checked against counts computed from the bundle files
// themselves (plain JSON walking here, not the server's extraction). References are resolved by this test
// (urn:uuid fullUrls and conditional `Type?identifier=` references), resources stored by PUT in batches.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { withReferences } from '../../src/fhir/references.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const DIR = path.join(import.meta.dirname, '../fixtures/synthea');
const SHARED = ['_shared/0-hospitalInformation1625911868739.json', '_shared/0-practitionerInformation1625911868739.json'];
const PATIENTS = ['8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json', 'e1dbcb04-9c64-e94c-2bd0-d7b199d369e5.json'];

type R = Record<string, any>;
const read = (file: string) => JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as { entry: Array<{ fullUrl?: string; resource: R }> };

async function putAll(server: TestServer, resources: R[]) {
  for (let i = 0; i < resources.length; i += 200) {
    const entry = resources.slice(i, i + 200).map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } }));
    const res = await server.fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'batch', entry } });
    if (res.status !== 200) throw new Error(`batch: ${res.status} ${res.text.slice(0, 300)}`);
    const failed = res.body.entry.filter((e: any) => !String(e.response.status).startsWith('20'));
    if (failed.length) throw new Error(`batch entries failed: ${JSON.stringify(failed[0]).slice(0, 500)}`);
  }
}

const total = async (server: TestServer, query: string) => {
  const res = await server.fhir(`${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  if (res.status !== 200) throw new Error(`${query}: ${res.status} ${res.text.slice(0, 300)}`);
  return res.body.total as number;
};

const codings = (cc: R | undefined): R[] => cc?.coding ?? [];
const refOf = (r: R | undefined) => r?.reference as string | undefined;

t.test('Synthea: search counts agree with the bundle files', async (t) => {
  const server = await startServer(t);
  const conditional = new Map<string, string>();
  const shared: R[] = [];
  for (const file of SHARED) {
    for (const { resource } of read(file).entry) {
      shared.push(resource);
      for (const id of resource.identifier ?? []) conditional.set(`${resource.resourceType}?identifier=${id.system}|${id.value}`, `${resource.resourceType}/${resource.id}`);
    }
  }
  await putAll(server, shared);
  const bundles = PATIENTS.map((file) => {
    const entries = read(file).entry;
    const byUrl = new Map(entries.map((e) => [e.fullUrl!, `${e.resource.resourceType}/${e.resource.id}`]));
    const resolve = (ref: string) => {
      const found = byUrl.get(ref) ?? conditional.get(ref);
      if (ref.startsWith('urn:uuid:') || ref.includes('?')) {
        if (!found) throw new Error(`unresolved reference ${ref}`);
        return found;
      }
      return ref;
    };
    return entries.map((e) => withReferences(e.resource, resolve));
  });
  for (const resources of bundles) await putAll(server, resources);
  const all = [...shared, ...bundles.flat()];

  // counts per type
  const byType = new Map<string, number>();
  for (const r of all) byType.set(r.resourceType, (byType.get(r.resourceType) ?? 0) + 1);
  for (const [type, n] of byType) t.equal(await total(server, type), n, `${type}: ${n}`);

  for (const resources of bundles) {
    const patient = resources.find((r) => r.resourceType === 'Patient')!;
    const pid = patient.id as string;
    const mine = (r: R) => [refOf(r.subject), refOf(r.patient)].includes(`Patient/${pid}`);
    const obs = resources.filter((r) => r.resourceType === 'Observation' && mine(r));
    t.equal(await total(server, `Observation?patient=${pid}`), obs.length, `Observation?patient: ${obs.length}`);
    t.equal(await total(server, `Patient/${pid}/Observation`), obs.length, 'compartment search');

    // the most frequent LOINC code, and code+patient
    const freq = new Map<string, number>();
    for (const o of obs) for (const c of codings(o.code)) if (c.system === 'http://loinc.org') freq.set(c.code, (freq.get(c.code) ?? 0) + 1);
    const [code, n] = [...freq].sort((a, b) => b[1] - a[1])[0]!;
    t.equal(await total(server, `Observation?patient=${pid}&code=http://loinc.org|${code}`), n, `code ${code}: ${n}`);

    // date prefixes on second-precision dateTimes: ge day D ⇔ instant ≥ D 00:00Z; lt ⇔ instant < D 00:00Z
    const instants = obs.map((o) => Date.parse(o.effectiveDateTime)).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    const mid = new Date(instants[Math.floor(instants.length / 2)]!).toISOString().slice(0, 10);
    const cut = Date.parse(`${mid}T00:00:00Z`);
    t.equal(await total(server, `Observation?patient=${pid}&date=ge${mid}`), instants.filter((x) => x >= cut).length, `date=ge${mid}`);
    t.equal(await total(server, `Observation?patient=${pid}&date=lt${mid}`), instants.filter((x) => x < cut).length, `date=lt${mid}`);
    const year = mid.slice(0, 4);
    t.equal(await total(server, `Observation?patient=${pid}&date=${year}`), obs.filter((o) => String(o.effectiveDateTime).startsWith(year)).length, `date=${year}`);

    // quantities
    const values = obs.map((o) => o.valueQuantity?.value).filter((v): v is number => typeof v === 'number');
    t.equal(await total(server, `Observation?patient=${pid}&value-quantity=gt100`), values.filter((v) => v > 100).length, 'value-quantity=gt100');
    t.equal(await total(server, `Observation?patient=${pid}&value-quantity=le20`), values.filter((v) => v <= 20).length, 'value-quantity=le20');

    // other types and parameters
    const encounters = resources.filter((r) => r.resourceType === 'Encounter');
    t.equal(await total(server, `Encounter?patient=${pid}`), encounters.length, 'Encounter?patient');
    const practitioners = new Set(encounters.flatMap((e) => (e.participant ?? []).map((p: R) => refOf(p.individual))).filter((r) => r?.startsWith('Practitioner/')));
    const inc = await server.fhir(`Encounter?patient=${pid}&_include=Encounter:practitioner&_count=1000`);
    t.same(
      inc.body.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => `Practitioner/${e.resource.id}`).sort(),
      [...practitioners].sort(),
      '_include=Encounter:practitioner',
    );
    const active = resources.filter((r) => r.resourceType === 'Condition' && codings(r.clinicalStatus).some((c) => c.code === 'active'));
    t.equal(await total(server, `Condition?patient=${pid}&clinical-status=active`), active.length, 'Condition clinical-status=active');
    const family = patient.name[0].family as string;
    const sameFamily = all.filter((r) => r.resourceType === 'Patient' && r.name.some((n: R) => String(n.family).toLowerCase().startsWith(family.toLowerCase())));
    t.equal(await total(server, `Patient?family=${encodeURIComponent(family)}`), sameFamily.length, 'Patient?family');
    t.equal(await total(server, `Patient?birthdate=${patient.birthDate}`), all.filter((r) => r.resourceType === 'Patient' && r.birthDate === patient.birthDate).length, 'Patient?birthdate');

    // $everything: every resource of the patient's bundle, matched (compartment) or included (referenced, such as
    // Medication, which is outside the Patient compartment); anything else it adds is a shared resource referred to
    const seen = new Set<string>();
    const matched = new Set<string>();
    const includedMembers = new Set<string>();
    // Small pages: a compartment member that other pages refer to must still come once, as a match, not as an
    // include on every page that refers to it.
    let url: string | undefined = `Patient/${pid}/$everything?_count=37`;
    while (url) {
      const page = await server.fhir(url);
      t.equal(page.status, 200);
      for (const e of page.body.entry ?? []) {
        seen.add(`${e.resource.resourceType}/${e.resource.id}`);
        if (e.search.mode === 'match') matched.add(`${e.resource.resourceType}/${e.resource.id}`);
        else includedMembers.add(`${e.resource.resourceType}/${e.resource.id}`);
      }
      const next = page.body.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      url = next?.slice(server.baseUrl.length + 1);
    }
    const own = resources.map((r) => `${r.resourceType}/${r.id}`);
    t.same(own.filter((ref) => !seen.has(ref)), [], `$everything returns all ${resources.length} resources of the bundle`);
    t.same(own.filter((ref) => !matched.has(ref) && !ref.startsWith('Medication/')), [], 'all but Medication as compartment matches');
    t.same([...includedMembers].filter((ref) => matched.has(ref)), [], 'no compartment match is also included');
    const sharedRefs = new Set(shared.map((r) => `${r.resourceType}/${r.id}`));
    t.same([...seen].filter((ref) => !own.includes(ref) && !sharedRefs.has(ref)), [], 'nothing of the other patient');
  }
  const npi = shared.find((r) => r.resourceType === 'Practitioner')!.identifier[0].value;
  t.equal(await total(server, `Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|${npi}`), 1, 'Practitioner by NPI');
  t.equal(await total(server, 'Organization?_has:Encounter:service-provider:status=finished'), new Set(bundles.flat().filter((r) => r.resourceType === 'Encounter' && r.status === 'finished').map((r) => refOf(r.serviceProvider))).size, '_has');
});
