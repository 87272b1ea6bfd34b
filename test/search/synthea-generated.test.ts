// Hundreds of searches generated from the Synthea records, each one's answer computed here from the bundle files
// by hand-written rules (plain JSON walking, R4's date-range and string semantics written out below, nothing from
// the server's extraction), and compared as exact sets of ids. The records go in as their files are: the shared
// batches, then each patient's transaction with its urn:uuid and conditional references.
//
// The fixture records (two patients) always run (~20 s). Every patient bundle of ../shared/data/synthea (~2 min, too
// long for `npm test`) runs with `npm run test:synthea` (SYNTHEA_ALL=1); elsewhere that subtest says why it skipped.
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { startServer, type TestServer } from '../helpers/server.ts';

type R = Record<string, any>;
interface Token {
  system?: string;
  code: string;
}
/** [low, high] in ms, inclusive; ±Infinity for an open end. */
type Range = [number, number];

const FIXTURES = path.join(import.meta.dirname, '../fixtures/synthea');
const SHARED_DATA = path.join(import.meta.dirname, '../../../shared/data/synthea');
/** Values tried per parameter, the most frequent first. */
const PER_PARAM = 8;

// ---- what each parameter holds, written out from the R4 SearchParameter definitions for the elements Synthea fills

const concept = (cc: R | undefined): Token[] => (cc?.coding ?? []).filter((c: R) => c.code).map((c: R) => ({ system: c.system, code: c.code }));
const concepts = (list: R[] | undefined): Token[] => (list ?? []).flatMap(concept);
const codeOf = (value: unknown): Token[] => (typeof value === 'string' ? [{ code: value }] : []);
const identifiers = (list: R[] | undefined): Token[] => (list ?? []).filter((i) => i.value).map((i) => ({ system: i.system, code: i.value }));

const TOKENS: Record<string, Record<string, (r: R) => Token[]>> = {
  Observation: {
    code: (r) => concept(r.code),
    category: (r) => concepts(r.category),
    status: (r) => codeOf(r.status),
    'component-code': (r) => (r.component ?? []).flatMap((c: R) => concept(c.code)),
    'value-concept': (r) => concept(r.valueCodeableConcept),
  },
  Condition: {
    code: (r) => concept(r.code),
    'clinical-status': (r) => concept(r.clinicalStatus),
    'verification-status': (r) => concept(r.verificationStatus),
    category: (r) => concepts(r.category),
  },
  Encounter: {
    type: (r) => concepts(r.type),
    class: (r) => (r.class?.code ? [{ system: r.class.system, code: r.class.code }] : []),
    status: (r) => codeOf(r.status),
    'reason-code': (r) => concepts(r.reasonCode),
  },
  Procedure: { code: (r) => concept(r.code), status: (r) => codeOf(r.status) },
  Immunization: { 'vaccine-code': (r) => concept(r.vaccineCode), status: (r) => codeOf(r.status) },
  MedicationRequest: { status: (r) => codeOf(r.status), intent: (r) => codeOf(r.intent), code: (r) => concept(r.medicationCodeableConcept) },
  MedicationAdministration: { status: (r) => codeOf(r.status), code: (r) => concept(r.medicationCodeableConcept) },
  DiagnosticReport: { code: (r) => concept(r.code), category: (r) => concepts(r.category), status: (r) => codeOf(r.status) },
  DocumentReference: { type: (r) => concept(r.type), category: (r) => concepts(r.category), status: (r) => codeOf(r.status) },
  Claim: { status: (r) => codeOf(r.status), use: (r) => codeOf(r.use) },
  ExplanationOfBenefit: { status: (r) => codeOf(r.status) },
  CarePlan: { status: (r) => codeOf(r.status), intent: (r) => codeOf(r.intent), category: (r) => concepts(r.category) },
  CareTeam: { status: (r) => codeOf(r.status) },
  ImagingStudy: { status: (r) => codeOf(r.status) },
  Patient: { gender: (r) => codeOf(r.gender), identifier: (r) => identifiers(r.identifier) },
  Practitioner: { identifier: (r) => identifiers(r.identifier), gender: (r) => codeOf(r.gender) },
  Organization: { identifier: (r) => identifiers(r.identifier) },
};

const refs = (...values: Array<R | R[] | undefined>): string[] =>
  values.flatMap((v) => (Array.isArray(v) ? v : v ? [v] : [])).flatMap((x: R) => (typeof x.reference === 'string' ? [x.reference] : []));
const ofType = (type: string, list: string[]) => list.filter((ref) => ref.startsWith(`${type}/`));

const REFERENCES: Record<string, Record<string, (r: R) => string[]>> = {
  Observation: { patient: (r) => ofType('Patient', refs(r.subject)), subject: (r) => refs(r.subject), encounter: (r) => refs(r.encounter) },
  Condition: { patient: (r) => ofType('Patient', refs(r.subject)), encounter: (r) => refs(r.encounter) },
  Encounter: {
    patient: (r) => ofType('Patient', refs(r.subject)),
    practitioner: (r) => ofType('Practitioner', refs((r.participant ?? []).map((p: R) => p.individual).filter(Boolean))),
    'service-provider': (r) => refs(r.serviceProvider),
  },
  Procedure: { patient: (r) => ofType('Patient', refs(r.subject)), encounter: (r) => refs(r.encounter) },
  Immunization: { patient: (r) => refs(r.patient) },
  MedicationRequest: {
    patient: (r) => ofType('Patient', refs(r.subject)),
    encounter: (r) => refs(r.encounter),
    requester: (r) => refs(r.requester),
    medication: (r) => refs(r.medicationReference),
  },
  DiagnosticReport: { patient: (r) => ofType('Patient', refs(r.subject)), encounter: (r) => refs(r.encounter), result: (r) => refs(r.result) },
  DocumentReference: { patient: (r) => ofType('Patient', refs(r.subject)) },
  Claim: { patient: (r) => refs(r.patient), provider: (r) => refs(r.provider) },
  ExplanationOfBenefit: { patient: (r) => refs(r.patient), provider: (r) => refs(r.provider) },
  CarePlan: { patient: (r) => ofType('Patient', refs(r.subject)), encounter: (r) => refs(r.encounter) },
  CareTeam: { patient: (r) => ofType('Patient', refs(r.subject)), encounter: (r) => refs(r.encounter) },
};

/** The range a FHIR date, dateTime or instant stands for, from its precision (R4 search.html#date). */
function rangeOf(value: string): Range {
  const tz = /(Z|[+-]\d\d:\d\d)$/.exec(value)?.[0];
  if (/^\d{4}$/.test(value)) return [Date.parse(`${value}-01-01T00:00:00Z`), Date.parse(`${Number(value) + 1}-01-01T00:00:00Z`) - 1];
  if (/^\d{4}-\d{2}$/.test(value)) {
    const [y, m] = value.split('-').map(Number) as [number, number];
    return [Date.UTC(y, m - 1, 1), Date.UTC(y, m, 1) - 1];
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const low = Date.parse(`${value}T00:00:00Z`);
    return [low, low + 86_400_000 - 1];
  }
  const low = Date.parse(value);
  const fraction = /\.(\d+)/.exec(value.slice(0, value.length - (tz?.length ?? 0)))?.[1];
  const step = fraction ? 10 ** (3 - Math.min(3, fraction.length)) : /T\d\d:\d\d$/.test(value.replace(tz ?? '', '')) ? 60_000 : 1000;
  return [low, low + step - 1];
}
const periodRange = (p: R | undefined): Range[] =>
  p && (p.start || p.end) ? [[p.start ? rangeOf(p.start)[0] : -Infinity, p.end ? rangeOf(p.end)[1] : Infinity]] : [];
const dateRange = (value: unknown): Range[] => (typeof value === 'string' ? [rangeOf(value)] : []);

const DATES: Record<string, Record<string, (r: R) => Range[]>> = {
  Observation: { date: (r) => [...dateRange(r.effectiveDateTime), ...dateRange(r.effectiveInstant), ...periodRange(r.effectivePeriod)] },
  Condition: { 'onset-date': (r) => [...dateRange(r.onsetDateTime), ...periodRange(r.onsetPeriod)], 'abatement-date': (r) => [...dateRange(r.abatementDateTime), ...periodRange(r.abatementPeriod)], 'recorded-date': (r) => dateRange(r.recordedDate) },
  Encounter: { date: (r) => periodRange(r.period) },
  Procedure: { date: (r) => [...dateRange(r.performedDateTime), ...periodRange(r.performedPeriod)] },
  Immunization: { date: (r) => dateRange(r.occurrenceDateTime) },
  MedicationRequest: { authoredon: (r) => dateRange(r.authoredOn) },
  DiagnosticReport: { date: (r) => [...dateRange(r.effectiveDateTime), ...periodRange(r.effectivePeriod)] },
  DocumentReference: { date: (r) => dateRange(r.date) },
  Claim: { created: (r) => dateRange(r.created) },
  ExplanationOfBenefit: { created: (r) => dateRange(r.created) },
  CarePlan: { date: (r) => periodRange(r.period) },
  CareTeam: { date: (r) => periodRange(r.period) },
  Patient: { birthdate: (r) => dateRange(r.birthDate) },
  ImagingStudy: { started: (r) => dateRange(r.started) },
};

/** R4's prefixes on ranges: the search value's range `s` against the target's `v`. */
const PREFIX: Record<string, (v: Range, s: Range) => boolean> = {
  eq: (v, s) => v[0] >= s[0] && v[1] <= s[1],
  ne: (v, s) => !(v[0] >= s[0] && v[1] <= s[1]),
  gt: (v, s) => v[1] > s[1],
  lt: (v, s) => v[0] < s[0],
  ge: (v, s) => v[1] > s[1] || (v[0] >= s[0] && v[1] <= s[1]),
  le: (v, s) => v[0] < s[0] || (v[0] >= s[0] && v[1] <= s[1]),
  sa: (v, s) => v[0] > s[1],
  eb: (v, s) => v[1] < s[0],
};

const names = (list: R[] | undefined): string[] => (list ?? []).flatMap((n) => [n.text, n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? [])]).filter((s) => typeof s === 'string');
const addressParts = (list: R[] | undefined, part?: string): string[] =>
  (list ?? []).flatMap((a) => (part ? [a[part]] : [a.text, ...(a.line ?? []), a.city, a.district, a.state, a.postalCode, a.country])).filter((s) => typeof s === 'string');

const STRINGS: Record<string, Record<string, (r: R) => string[]>> = {
  Patient: {
    family: (r) => (r.name ?? []).map((n: R) => n.family).filter(Boolean),
    given: (r) => (r.name ?? []).flatMap((n: R) => n.given ?? []),
    name: (r) => names(r.name),
    'address-city': (r) => addressParts(r.address, 'city'),
    'address-state': (r) => addressParts(r.address, 'state'),
    'address-postalcode': (r) => addressParts(r.address, 'postalCode'),
    address: (r) => addressParts(r.address),
  },
  Practitioner: { family: (r) => (r.name ?? []).map((n: R) => n.family).filter(Boolean), name: (r) => names(r.name) },
  Organization: { name: (r) => [r.name, ...(r.alias ?? [])].filter(Boolean), 'address-city': (r) => addressParts(r.address, 'city') },
  Location: { name: (r) => [r.name, ...(r.alias ?? [])].filter(Boolean), 'address-city': (r) => [r.address?.city].filter(Boolean) },
};

/** A value as a search parameter carries it: `\`, `,`, `$` and `|` escaped (R4 search.html#escaping), then URL-encoded. */
const escaped = (value: string) => encodeURIComponent(value.replace(/[\\,$|]/g, (c) => `\\${c}`));

/** R4 string matching: case- and accent-insensitive. */
const fold = (s: string) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();

// ---- loading and reference resolution

function readBundle(dir: string, file: string): R {
  return JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
}

/** The server's id of each urn:uuid fullUrl and of each conditional reference the records use. */
class Resolver {
  readonly #targets = new Map<string, string>();
  learn(request: R, resource: R, location: string) {
    const ref = /\/([A-Za-z]+\/[^/]+)\/_history\//.exec(location)![1]!;
    if (request.fullUrl) this.#targets.set(request.fullUrl, ref);
    for (const id of resource.identifier ?? []) this.#targets.set(`${resource.resourceType}?identifier=${id.system}|${id.value}`, ref);
    return ref;
  }
  /** A copy of the resource as stored: its id and every reference the server rewrote. */
  resolve(resource: R, ref: string): R {
    const walk = (v: any): any => {
      if (Array.isArray(v)) return v.map(walk);
      if (v === null || typeof v !== 'object') return v;
      const out: R = {};
      for (const [k, x] of Object.entries(v)) out[k] = k === 'reference' && typeof x === 'string' ? (this.#targets.get(x) ?? x) : walk(x);
      return out;
    };
    return { ...walk(resource), id: ref.split('/')[1] };
  }
}

async function load(server: TestServer, dir: string, files: string[]): Promise<R[]> {
  const resolver = new Resolver();
  const stored: R[] = [];
  for (const file of files) {
    const bundle = readBundle(dir, file);
    const res = await server.fhir('', { method: 'POST', body: bundle });
    if (res.status !== 200) throw new Error(`${file}: ${res.status} ${res.text.slice(0, 300)}`);
    const refsOf = bundle.entry.map((e: R, i: number) => resolver.learn(e, e.resource, res.body.entry[i].response.location));
    bundle.entry.forEach((e: R, i: number) => stored.push(resolver.resolve(e.resource, refsOf[i])));
  }
  return stored;
}

// ---- the searches

interface Search {
  query: string;
  expected: R[];
  /** For `_sort`: each match's sort key (R4: the lowest value ascending, the highest descending; none sorts last). */
  sortKey?: (r: R) => number | undefined;
  descending?: boolean;
}

/** The values most often held first, then the rest in a fixed order: `PER_PARAM` of them. */
function pick<V>(values: V[], key: (v: V) => string): V[] {
  const counts = new Map<string, { value: V; n: number }>();
  for (const v of values) {
    const k = key(v);
    const c = counts.get(k);
    if (c) c.n++;
    else counts.set(k, { value: v, n: 1 });
  }
  const sorted = [...counts.entries()].sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : 1));
  return sorted.slice(0, PER_PARAM).map(([, c]) => c.value);
}

/** Each parameter of a table (TOKENS, REFERENCES, DATES, STRINGS) with its type's resources and its values' reader. */
function* parametersOf<V>(table: Record<string, Record<string, (r: R) => V[]>>, byType: Map<string, R[]>): Generator<{ type: string; all: R[]; param: string; held: (r: R) => V[] }> {
  for (const [type, params] of Object.entries(table)) {
    const all = byType.get(type) ?? [];
    for (const [param, held] of Object.entries(params)) yield { type, all, param, held };
  }
}

function tokenSearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  for (const { type, all, param, held: tokens } of parametersOf(TOKENS, byType)) {
    const held = all.flatMap(tokens);
    if (held.length === 0) continue;
    for (const tok of pick(held, (x) => `${x.system}|${x.code}`)) {
      const code = escaped(tok.code);
      out.push({ query: `${type}?${param}=${code}`, expected: all.filter((r) => tokens(r).some((x) => x.code === tok.code)) });
      if (tok.system) {
        const sys = escaped(tok.system);
        out.push({ query: `${type}?${param}=${sys}|${code}`, expected: all.filter((r) => tokens(r).some((x) => x.code === tok.code && x.system === tok.system)) });
        out.push({ query: `${type}?${param}=${sys}|`, expected: all.filter((r) => tokens(r).some((x) => x.system === tok.system)) });
      } else {
        out.push({ query: `${type}?${param}=|${code}`, expected: all.filter((r) => tokens(r).some((x) => x.code === tok.code && x.system === undefined)) });
      }
      out.push({ query: `${type}?${param}:not=${code}`, expected: all.filter((r) => !tokens(r).some((x) => x.code === tok.code)) });
    }
    out.push({ query: `${type}?${param}:missing=true`, expected: all.filter((r) => tokens(r).length === 0) });
    out.push({ query: `${type}?${param}:missing=false`, expected: all.filter((r) => tokens(r).length > 0) });
    // OR within one parameter, AND across two of its values
    const [a, b] = pick(held, (x) => x.code);
    if (a && b) {
      out.push({ query: `${type}?${param}=${escaped(a.code)},${escaped(b.code)}`, expected: all.filter((r) => tokens(r).some((x) => x.code === a.code || x.code === b.code)) });
      out.push({ query: `${type}?${param}=${escaped(a.code)}&${param}=${escaped(b.code)}`, expected: all.filter((r) => tokens(r).some((x) => x.code === a.code) && tokens(r).some((x) => x.code === b.code)) });
    }
  }
  return out;
}

function referenceSearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  for (const { type, all, param, held } of parametersOf(REFERENCES, byType)) {
    for (const ref of pick(all.flatMap(held), (x) => x)) {
      out.push({ query: `${type}?${param}=${ref}`, expected: all.filter((r) => held(r).includes(ref)) });
    }
  }
  return out;
}

function dateSearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  for (const { type, all, param, held } of parametersOf(DATES, byType)) {
    const starts = all.flatMap(held).map((v) => v[0]).filter(Number.isFinite).sort((a, b) => a - b);
    if (starts.length === 0) continue;
    const days = [...new Set([0.1, 0.5, 0.9].map((q) => new Date(starts[Math.floor(q * (starts.length - 1))]!).toISOString().slice(0, 10)))];
    for (const day of days) {
      for (const [prefix, holds] of Object.entries(PREFIX)) {
        const s = rangeOf(day);
        out.push({ query: `${type}?${param}=${prefix}${day}`, expected: all.filter((r) => held(r).some((v) => holds(v, s))) });
      }
      const year = day.slice(0, 4);
      out.push({ query: `${type}?${param}=${year}`, expected: all.filter((r) => held(r).some((v) => PREFIX.eq!(v, rangeOf(year)))) });
      const month = day.slice(0, 7);
      out.push({ query: `${type}?${param}=ge${month}&${param}=lt${Number(year) + 2}`, expected: all.filter((r) => held(r).some((v) => PREFIX.ge!(v, rangeOf(month))) && held(r).some((v) => PREFIX.lt!(v, rangeOf(String(Number(year) + 2))))) });
    }
  }
  return out;
}

function quantitySearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  const observations = byType.get('Observation') ?? [];
  const valued = observations.filter((o) => typeof o.valueQuantity?.value === 'number');
  const values = [...new Set(valued.map((o) => o.valueQuantity.value as number))].sort((a, b) => a - b);
  for (const q of [0.1, 0.3, 0.5, 0.7, 0.9]) {
    const i = Math.floor(q * (values.length - 2));
    // Halfway between two held values, to 4 decimals: no held value lies within the threshold's implicit precision.
    const threshold = Number(((values[i]! + values[i + 1]!) / 2).toFixed(4));
    for (const [prefix, holds] of [['gt', (v: number) => v > threshold], ['lt', (v: number) => v < threshold], ['ge', (v: number) => v >= threshold], ['le', (v: number) => v <= threshold]] as const) {
      out.push({ query: `Observation?value-quantity=${prefix}${threshold}`, expected: valued.filter((o) => holds(o.valueQuantity.value)) });
    }
    const unit = valued.find((o) => o.valueQuantity.value > threshold)?.valueQuantity;
    if (unit?.system && unit.code) {
      out.push({
        query: `Observation?value-quantity=gt${threshold}|${escaped(unit.system)}|${escaped(unit.code)}`,
        expected: valued.filter((o) => o.valueQuantity.value > threshold && o.valueQuantity.system === unit.system && o.valueQuantity.code === unit.code),
      });
    }
  }
  out.push({ query: 'Observation?value-quantity:missing=true', expected: observations.filter((o) => o.valueQuantity === undefined) });
  return out;
}

function stringSearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  for (const { type, all, param, held } of parametersOf(STRINGS, byType)) {
    for (const value of pick(all.flatMap(held), (x) => x)) {
      const prefix = value.slice(0, Math.min(value.length, 3 + (value.length % 4)));
      out.push({ query: `${type}?${param}=${escaped(prefix)}`, expected: all.filter((r) => held(r).some((v) => fold(v).startsWith(fold(prefix)))) });
      out.push({ query: `${type}?${param}=${escaped(fold(value).toUpperCase())}`, expected: all.filter((r) => held(r).some((v) => fold(v).startsWith(fold(value)))) });
      out.push({ query: `${type}?${param}:exact=${escaped(value)}`, expected: all.filter((r) => held(r).includes(value)) });
      if (value.length > 4) {
        const inner = value.slice(1, 4);
        out.push({ query: `${type}?${param}:contains=${escaped(inner)}`, expected: all.filter((r) => held(r).some((v) => fold(v).includes(fold(inner)))) });
      }
    }
  }
  return out;
}

/** Chains, reverse chains and searches across two parameters of different kinds. */
function combinedSearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  const patients = byType.get('Patient') ?? [];
  const observations = byType.get('Observation') ?? [];
  const encounters = byType.get('Encounter') ?? [];
  const byRef = new Map([...byType.values()].flat().map((r) => [`${r.resourceType}/${r.id}`, r]));
  const subjectOf = (o: R) => byRef.get(o.subject?.reference ?? '');
  for (const gender of ['male', 'female']) {
    out.push({ query: `Observation?subject:Patient.gender=${gender}`, expected: observations.filter((o) => subjectOf(o)?.gender === gender) });
  }
  for (const p of patients) {
    const family = p.name[0].family as string;
    out.push({ query: `Observation?patient.family=${escaped(family)}`, expected: observations.filter((o) => subjectOf(o)?.name?.some((n: R) => fold(n.family ?? '').startsWith(fold(family)))) });
    const mine = observations.filter((o) => o.subject?.reference === `Patient/${p.id}`);
    for (const tok of pick(mine.flatMap((o) => concept(o.code)), (x) => x.code).slice(0, 3)) {
      out.push({ query: `Patient?_has:Observation:patient:code=${escaped(tok.code)}`, expected: patients.filter((q) => observations.some((o) => o.subject?.reference === `Patient/${q.id}` && concept(o.code).some((x) => x.code === tok.code))) });
      const cut = mine.map((o) => o.effectiveDateTime).filter(Boolean).sort()[Math.floor(mine.length / 2)]?.slice(0, 10);
      if (cut) {
        out.push({
          query: `Observation?patient=Patient/${p.id}&code=${escaped(tok.code)}&date=ge${cut}`,
          expected: mine.filter((o) => concept(o.code).some((x) => x.code === tok.code) && DATES.Observation!.date!(o).some((v) => PREFIX.ge!(v, rangeOf(cut)))),
        });
      }
    }
    const practitioners = new Set(encounters.filter((e) => e.subject?.reference === `Patient/${p.id}`).flatMap((e) => REFERENCES.Encounter!.practitioner!(e)));
    for (const ref of [...practitioners].slice(0, 2)) {
      const npi = byRef.get(ref)?.identifier?.[0]?.value;
      if (npi) out.push({ query: `Encounter?practitioner.identifier=${npi}&patient=Patient/${p.id}`, expected: encounters.filter((e) => e.subject?.reference === `Patient/${p.id}` && REFERENCES.Encounter!.practitioner!(e).some((r) => byRef.get(r)?.identifier?.some((i: R) => i.value === npi))) });
    }
  }
  return out;
}

/** `_sort` by a date parameter, ascending and descending, over each patient's records of a type. */
function sortedSearches(byType: Map<string, R[]>): Search[] {
  const out: Search[] = [];
  const sorts: Array<[string, string]> = [['Observation', 'date'], ['Encounter', 'date'], ['Condition', 'onset-date'], ['Procedure', 'date'], ['Immunization', 'date'], ['MedicationRequest', 'authoredon'], ['DiagnosticReport', 'date'], ['Claim', 'created'], ['CarePlan', 'date']];
  for (const p of byType.get('Patient') ?? []) {
    for (const [type, param] of sorts) {
      const held = DATES[type]![param]!;
      const patientOf = REFERENCES[type]!.patient!;
      const mine = (byType.get(type) ?? []).filter((r) => patientOf(r).includes(`Patient/${p.id}`));
      if (mine.length < 2) continue;
      const low = (r: R) => (held(r).length ? Math.min(...held(r).map((v) => v[0])) : undefined);
      const high = (r: R) => (held(r).length ? Math.max(...held(r).map((v) => v[1])) : undefined);
      out.push({ query: `${type}?patient=Patient/${p.id}&_sort=${param}`, expected: mine, sortKey: low });
      out.push({ query: `${type}?patient=Patient/${p.id}&_sort=-${param}`, expected: mine, sortKey: high, descending: true });
    }
  }
  const patients = byType.get('Patient') ?? [];
  const birth = (r: R) => (r.birthDate ? rangeOf(r.birthDate)[0] : undefined);
  out.push({ query: 'Patient?_sort=birthdate', expected: patients, sortKey: birth }, { query: 'Patient?_sort=-birthdate', expected: patients, sortKey: birth, descending: true });
  return out;
}

/** Where the keys of the ids, in the order answered, break the sort: the first offending position, or -1. */
function outOfOrder(ids: string[], byRef: Map<string, R>, key: (r: R) => number | undefined, descending: boolean): number {
  const keys = ids.map((id) => key(byRef.get(id)!));
  for (let i = 1; i < keys.length; i++) {
    const [a, b] = [keys[i - 1], keys[i]];
    if (a === undefined ? b !== undefined : b !== undefined && (descending ? b > a : b < a)) return i;
  }
  return -1;
}

async function idsOf(server: TestServer, query: string): Promise<{ status: number; ids: string[]; total?: number; text: string }> {
  const ids: string[] = [];
  let url: string | undefined = `${query}&_count=1000&_elements=id`;
  let total: number | undefined;
  let status = 200;
  let text = '';
  while (url) {
    const page = await server.fhir(url);
    status = page.status;
    text = page.text;
    if (page.status !== 200) break;
    total ??= page.body.total;
    for (const e of page.body.entry ?? []) if (e.search.mode === 'match') ids.push(`${e.resource.resourceType}/${e.resource.id}`);
    const next = page.body.link.find((l: R) => l.relation === 'next')?.url as string | undefined;
    url = next?.slice(server.baseUrl.length + 1);
  }
  return { status, ids, ...(total === undefined ? {} : { total }), text };
}

async function run(t: Test, dir: string, patientFiles: string[]) {
  const server = await startServer(t);
  const shared = fs.readdirSync(path.join(dir, '_shared')).filter((f) => f.endsWith('.json')).sort().map((f) => `_shared/${f}`);
  const stored = await load(server, dir, [...shared, ...patientFiles]);
  const byType = new Map<string, R[]>();
  for (const r of stored) byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r]);
  const byRef = new Map(stored.map((r) => [`${r.resourceType}/${r.id}`, r]));
  const searches = [...tokenSearches(byType), ...referenceSearches(byType), ...dateSearches(byType), ...quantitySearches(byType), ...stringSearches(byType), ...combinedSearches(byType), ...sortedSearches(byType)];
  t.ok(searches.length >= 300, `${searches.length} searches generated`);
  let wrong = 0;
  for (const { query, expected, sortKey, descending = false } of searches) {
    const answer = await idsOf(server, query);
    const want = expected.map((r) => `${r.resourceType}/${r.id}`).sort();
    const got = [...answer.ids].sort();
    const same = answer.status === 200 && got.length === want.length && got.every((id, i) => id === want[i]) && answer.total === want.length;
    const misplaced = same && sortKey ? outOfOrder(answer.ids, byRef, sortKey, descending) : -1;
    if (!same || misplaced >= 0) {
      wrong++;
      t.fail(query, { status: answer.status, total: answer.total, expected: want.length, got: got.length, missing: want.filter((id) => !got.includes(id)).slice(0, 5), extra: got.filter((id) => !want.includes(id)).slice(0, 5), misplaced, body: answer.status === 200 ? undefined : answer.text.slice(0, 300) });
    }
  }
  t.equal(wrong, 0, `all ${searches.length} searches answered exactly the ids computed from the files`);
}

t.test('generated searches over the fixture Synthea records', (t) => run(t, FIXTURES, ['8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json', 'e1dbcb04-9c64-e94c-2bd0-d7b199d369e5.json']));

const skipAll = !fs.existsSync(SHARED_DATA) ? `${SHARED_DATA} is absent` : process.env.SYNTHEA_ALL !== '1' ? 'over all of ../shared/data/synthea: npm run test:synthea' : false;
t.test('generated searches over every Synthea bundle in ../shared/data', { skip: skipAll }, (t) =>
  run(t, SHARED_DATA, fs.readdirSync(SHARED_DATA).filter((f) => f.endsWith('.json')).sort()),
);
