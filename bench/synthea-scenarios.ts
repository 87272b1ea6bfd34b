/**
 * Search and transaction import over real patient records (the Synthea bundles in test/fixtures/synthea):
 * the two searches issue 3 names, each beside the bare route serving the same bytes, and the patient's
 * transaction Bundle posted again and again (every post creates its 66 resources anew, with conditional
 * references resolved against the shared Practitioners and Organizations loaded first).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fhirHeaders, type FhirContext } from './fhir-scenarios.ts';
import type { Check, Scenario } from './scenario.ts';
import { PROJECT_ROOT } from './servers.ts';

const SYNTHEA = path.join(PROJECT_ROOT, 'test/fixtures/synthea');
export const SHARED_BUNDLES = ['_shared/0-hospitalInformation1625911868739.json', '_shared/0-practitionerInformation1625911868739.json'];
/** The larger patient (241 resources): the records searched. */
export const SEARCHED_BUNDLE = 'e1dbcb04-9c64-e94c-2bd0-d7b199d369e5.json';
/** The smaller patient (66 resources): the transaction posted under load. */
export const POSTED_BUNDLE = '8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json';

type Resource = { resourceType: string; [key: string]: any };
interface BundleFile {
  entry: Array<{ fullUrl?: string; resource: Resource }>;
}

export function readSyntheaBundle(file: string): BundleFile {
  return JSON.parse(readFileSync(path.join(SYNTHEA, file), 'utf8')) as BundleFile;
}

/**
 * What the searches ask of one patient's records: the LOINC code most of its Observations carry (so
 * `patient=&code=` has several results) and the median Observation date (so `date=ge…` returns about half).
 */
export function searchTargets(resources: Resource[]): { code: string; since: string } {
  const observations = resources.filter((r) => r.resourceType === 'Observation');
  if (observations.length === 0) throw new Error('the records have no Observation to search for');
  const frequency = new Map<string, number>();
  for (const o of observations) for (const c of o.code?.coding ?? []) if (c.system === 'http://loinc.org') frequency.set(c.code, (frequency.get(c.code) ?? 0) + 1);
  // Ties broken by code, so the same records always give the same query.
  const [code] = [...frequency].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
  const dates = observations.map((o) => String(o.effectiveDateTime ?? o.issued ?? '')).filter(Boolean).sort();
  return { code, since: dates[Math.floor(dates.length / 2)]!.slice(0, 10) };
}

export interface SyntheaContext {
  /** Server id of the searched patient. */
  searchPatientId: string;
  code: string;
  since: string;
  /** The transaction Bundle posted by `transaction`, and how many resources each post creates. */
  transactionBody: string;
  transactionResources: number;
}

export function searchUrls(fhirPath: string, s: Pick<SyntheaContext, 'searchPatientId' | 'code' | 'since'>): { code: string; date: string } {
  const patient = encodeURIComponent(s.searchPatientId);
  return {
    code: `${fhirPath}/Observation?patient=${patient}&code=${encodeURIComponent(`http://loinc.org|${s.code}`)}`,
    date: `${fhirPath}/Observation?patient=${patient}&date=ge${s.since}&_sort=-date`,
  };
}

async function postBundle(origin: string, fhirPath: string, token: string, body: string): Promise<Array<{ response?: { status?: string; location?: string } }>> {
  const response = await fetch(`${origin}${fhirPath}`, { method: 'POST', headers: fhirHeaders(token, true), body });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST Bundle answered ${response.status}: ${text.slice(0, 300)}`);
  const entries = (JSON.parse(text) as { entry?: Array<{ response?: { status?: string; location?: string } }> }).entry ?? [];
  const failed = entries.find((e) => !/^2\d\d/.test(e.response?.status ?? ''));
  if (failed) throw new Error(`a Bundle entry answered ${failed.response?.status}`);
  return entries;
}

/** Loads the shared records and the searched patient over HTTP, as an EHR would; returns what the scenarios need. */
export async function loadSynthea(origin: string, fhirPath: string, token: string): Promise<SyntheaContext> {
  for (const file of SHARED_BUNDLES) await postBundle(origin, fhirPath, token, readFileSync(path.join(SYNTHEA, file), 'utf8'));
  const searched = readSyntheaBundle(SEARCHED_BUNDLE);
  const answers = await postBundle(origin, fhirPath, token, JSON.stringify(searched));
  const patientIndex = searched.entry.findIndex((e) => e.resource.resourceType === 'Patient');
  const searchPatientId = /Patient\/([^/]+)/.exec(answers[patientIndex]?.response?.location ?? '')?.[1];
  if (!searchPatientId) throw new Error('the searched patient has no location in the transaction response');
  const transactionBody = readFileSync(path.join(SYNTHEA, POSTED_BUNDLE), 'utf8');
  return {
    searchPatientId,
    ...searchTargets(searched.entry.map((e) => e.resource)),
    transactionBody,
    transactionResources: (JSON.parse(transactionBody) as BundleFile).entry.length,
  };
}

export type SuiteContext = FhirContext & SyntheaContext;

const searchScenario = (name: string, which: 'code' | 'date', server: 'sealed' | 'bare', description: string): Scenario<SuiteContext> => ({
  name,
  description,
  server,
  request: (ctx) => ({ method: 'GET', path: searchUrls(ctx.fhirPath, ctx)[which], headers: fhirHeaders(ctx.token, false) }),
});

export const syntheaScenarios: Scenario<SuiteContext>[] = [
  searchScenario('search-code', 'code', 'sealed', 'GET Observation?patient=<id>&code=http://loinc.org|<code> over one Synthea patient; one audit entry per search'),
  searchScenario('search-date', 'date', 'sealed', 'GET Observation?patient=<id>&date=ge<median date>&_sort=-date; one audit entry per search'),
  searchScenario('bare-search-code', 'code', 'bare', 'bare fastify route answering with the bytes of `search-code`'),
  searchScenario('bare-search-date', 'date', 'bare', 'bare fastify route answering with the bytes of `search-date`'),
  {
    name: 'transaction',
    description: 'POST a Synthea patient transaction Bundle (conditional references; every post creates all its resources anew), all-or-nothing in one synced commit',
    server: 'sealed',
    connections: 4,
    resourcesPerRequest: (ctx) => ctx.transactionResources,
    request: (ctx) => ({ method: 'POST', path: ctx.fhirPath, headers: fhirHeaders(ctx.token, true), body: ctx.transactionBody }),
  },
];

export const syntheaChecks: Check[] = [
  // issue 3's import target, here through plain POST /fhir transactions (npm run import goes the same path in-process)
  { kind: 'resources', label: 'transaction import ≥ 2,500 resources/s', scenario: 'transaction', min: 2500 },
  { kind: 'ratio', label: 'search-code / bare-search-code', numerator: 'search-code', denominator: 'bare-search-code' },
  { kind: 'ratio', label: 'search-date / bare-search-date', numerator: 'search-date', denominator: 'bare-search-date' },
];
