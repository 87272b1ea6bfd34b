/**
 * The foundation's benchmarks (issue 2): durable create, audited read of one patient and of many, and the bare
 * fastify route serving the same bytes as the read. Data comes from an official R4 example Patient; each
 * created patient gets its own identifier so every body is a distinct, valid resource.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchContext, Check, Scenario } from './scenario.ts';
import { PROJECT_ROOT } from './servers.ts';

export const PATIENT_FIXTURE = path.join(PROJECT_ROOT, 'test/fixtures/fhir-r4-examples/Patient-f001.json');
const FHIR_JSON = 'application/fhir+json';
const SEQ = '\u0000seq\u0000';
const PRECREATE_CONCURRENCY = 32;

export interface FhirContext extends BenchContext {
  /** Path of the FHIR base on the server, e.g. `/fhir`. */
  fhirPath: string;
  /** The patient read by `read` and served by `bare`. */
  readId: string;
  /** The same patient body, created on the unaudited comparison server and read by `read-unaudited`. */
  unauditedReadId: string;
  /** Pre-created patients that `read-mix` cycles through. */
  mixIds: string[];
  nextPatientBody(): string;
}

/** A generator of valid Patient bodies (the fixture without its id), each with a unique identifier. */
export function patientBodies(runId: string): () => string {
  const { id: _id, ...patient } = JSON.parse(readFileSync(PATIENT_FIXTURE, 'utf8')) as { id?: string; identifier?: unknown[] };
  const withSeq = { ...patient, identifier: [...(patient.identifier ?? []), { system: 'urn:sealed-fhir:bench', value: SEQ }] };
  // Split once around the placeholder so each body is two concatenations, not a JSON.stringify per request.
  const [head, tail] = JSON.stringify(withSeq).split(JSON.stringify(SEQ).slice(1, -1));
  let seq = 0;
  return () => `${head}${runId}-${(seq += 1)}${tail}`;
}

export function fhirHeaders(token: string, withBody: boolean): Record<string, string> {
  const headers: Record<string, string> = { accept: FHIR_JSON, authorization: `Bearer ${token}` };
  if (withBody) headers['content-type'] = FHIR_JSON;
  return headers;
}

/** Creates one patient over HTTP and returns its id; throws on anything but 201. */
export async function createPatient(origin: string, fhirPath: string, token: string, body: string): Promise<string> {
  const response = await fetch(`${origin}${fhirPath}/Patient`, { method: 'POST', headers: fhirHeaders(token, true), body });
  const text = await response.text();
  const id = /\/Patient\/([A-Za-z0-9.-]{1,64})\/_history\//.exec(response.headers.get('location') ?? '')?.[1];
  if (response.status !== 201 || !id) throw new Error(`create Patient answered ${response.status}: ${text.slice(0, 300)}`);
  return id;
}

/** Creates `count` patients, PRECREATE_CONCURRENCY at a time; ids in creation order. */
export async function createPatients(origin: string, fhirPath: string, token: string, next: () => string, count: number): Promise<string[]> {
  const ids: string[] = new Array(count);
  let claimed = 0;
  const worker = async () => {
    while (claimed < count) {
      const index = claimed++;
      ids[index] = await createPatient(origin, fhirPath, token, next());
    }
  };
  await Promise.all(Array.from({ length: Math.min(PRECREATE_CONCURRENCY, count) }, worker));
  return ids;
}

/** What the bare server must serve for one URL (path and query): the exact bytes and representation headers. */
export async function captureGet(origin: string, url: string, token: string): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const response = await fetch(`${origin}${url}`, { headers: fhirHeaders(token, false) });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}: ${body.toString('utf8', 0, 300)}`);
  const headers: Record<string, string> = {};
  for (const name of ['content-type', 'etag', 'last-modified']) {
    const value = response.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return { body, headers };
}

export const fhirScenarios: Scenario<FhirContext>[] = [
  {
    name: 'read',
    description: 'GET /fhir/Patient/<id>, one patient; the audit entry is durable before the response',
    server: 'sealed',
    request: (ctx) => ({ method: 'GET', path: `${ctx.fhirPath}/Patient/${ctx.readId}`, headers: fhirHeaders(ctx.token, false) }),
  },
  {
    name: 'read-unaudited',
    description: 'the same read on the same build with no ledger entry for reads (bench/unaudited-server.ts)',
    server: 'unaudited',
    request: (ctx) => ({ method: 'GET', path: `${ctx.fhirPath}/Patient/${ctx.unauditedReadId}`, headers: fhirHeaders(ctx.token, false) }),
  },
  {
    name: 'read-mix',
    description: 'GET /fhir/Patient/<id>, cycling through the pre-created patients (no single hot key)',
    server: 'sealed',
    request: (ctx) => {
      let next = 0;
      return {
        method: 'GET',
        path: `${ctx.fhirPath}/Patient/${ctx.mixIds[0]}`,
        headers: fhirHeaders(ctx.token, false),
        setupRequest: (request) => {
          request.path = `${ctx.fhirPath}/Patient/${ctx.mixIds[next]}`;
          next = (next + 1) % ctx.mixIds.length;
          return request;
        },
      };
    },
  },
  {
    name: 'bare',
    description: 'bare fastify route answering with the same bytes and headers as `read`',
    server: 'bare',
    request: (ctx) => ({ method: 'GET', path: `${ctx.fhirPath}/Patient/${ctx.readId}`, headers: fhirHeaders(ctx.token, false) }),
  },
  // After the reads: a write burst leaves LevelDB compacting for tens of seconds, and the reads it is compared
  // on must find both sealed servers in the same state (the unaudited one never takes this load).
  {
    name: 'create',
    description: 'POST /fhir/Patient, a distinct valid Patient each time; 201 only after the synced commit',
    server: 'sealed',
    request: (ctx) => ({
      method: 'POST',
      path: `${ctx.fhirPath}/Patient`,
      headers: fhirHeaders(ctx.token, true),
      body: ctx.nextPatientBody(),
      setupRequest: (request) => {
        request.body = ctx.nextPatientBody();
        return request;
      },
    }),
  },
];

/** The foundation's targets (issue 2), on a 2-core machine. */
export const fhirChecks: Check[] = [
  { kind: 'rate', label: 'durable creates ≥ 1,500/s', scenario: 'create', min: 1500 },
  { kind: 'ratio', label: 'read / bare ≥ 0.60', numerator: 'read', denominator: 'bare', min: 0.6 },
  { kind: 'ratio', label: 'read-mix / bare ≥ 0.60', numerator: 'read-mix', denominator: 'bare', min: 0.6 },
  // issue 4: what the audit entry (made durable before the answer) costs a read
  { kind: 'ratio', label: 'read / read-unaudited ≥ 0.85', numerator: 'read', denominator: 'read-unaudited', min: 0.85 },
];
