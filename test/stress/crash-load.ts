/**
 * The write-heavy load of the crash test: workers that create, update (some with If-Match) and send transaction
 * Bundles whose entries reference each other by `urn:uuid:`, against a real server, until it dies. Every write
 * carries unique identifiers (`urn:crash|<tag>`), so that what landed can be found afterwards whether or not its
 * response arrived; every acknowledged write is recorded with the content it was acknowledged for.
 */
import { randomUUID } from 'node:crypto';

export const TAG_SYSTEM = 'urn:crash';

export interface AckedVersion {
  type: string;
  id: string;
  version: number;
  /** The resource as sent, with its id and resolved references: what the stored version must hold apart from meta. */
  content: Record<string, unknown>;
}

export interface Attempt {
  kind: 'create' | 'update' | 'transaction';
  /** Identifier values of the resources this write carries. */
  tags: string[];
  /** The versions the server acknowledged (a 2xx response arrived); undefined when it did not. */
  acked?: AckedVersion[];
  /** A definite refusal (4xx, e.g. If-Match lost a race): nothing of it may be stored. */
  refused?: number;
  /** A 5xx answer: never expected, reported as a violation. */
  serverError?: number;
}

export interface LoadState {
  attempts: Attempt[];
  /** Acknowledged resources by `Type/id`, newest acknowledged content last: what updates pick from. */
  known: Map<string, AckedVersion>;
}

export interface LoadOptions {
  baseUrl: string;
  token: string;
  workers: number;
  /** Prefix of every tag of this run (round number), so rounds never collide. */
  prefix: string;
  state: LoadState;
  /** Set to stop issuing new requests. */
  stopped: () => boolean;
  /** Called on every acknowledged write (the crash rounds time their kill from the first). */
  onAcknowledged?: () => void;
  random?: () => number;
}

const LOCATION = /([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/(\d+)$/;

function parseLocation(location: string | null | undefined): { type: string; id: string; version: number } | undefined {
  const match = location ? LOCATION.exec(location) : null;
  return match ? { type: match[1]!, id: match[2]!, version: Number(match[3]) } : undefined;
}

function patient(tag: string, n: number): Record<string, unknown> {
  return { resourceType: 'Patient', identifier: [{ system: TAG_SYSTEM, value: tag }], name: [{ family: `Crash${n % 97}`, given: [tag] }], birthDate: `19${10 + (n % 89)}-01-01` };
}

function observation(tag: string, n: number, subject: string): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    identifier: [{ system: TAG_SYSTEM, value: tag }],
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
    subject: { reference: subject },
    valueQuantity: { value: n % 200, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
  };
}

/** Runs the workers until `stopped()` or the server is gone; attempts are recorded into `options.state`. */
export async function runLoad(options: LoadOptions): Promise<void> {
  const random = options.random ?? Math.random;
  const { state } = options;
  let n = 0;
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${options.token}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...extra });
  const pickKnown = (type?: string): AckedVersion | undefined => {
    const all = [...state.known.values()].filter((k) => !type || k.type === type);
    return all.length ? all[Math.floor(random() * all.length)] : undefined;
  };
  const acknowledge = (versions: AckedVersion[]) => {
    options.onAcknowledged?.();
    for (const v of versions) {
      const key = `${v.type}/${v.id}`;
      if ((state.known.get(key)?.version ?? 0) < v.version) state.known.set(key, v);
    }
  };

  const create = async (): Promise<void> => {
    const tag = `${options.prefix}-c${n++}`;
    const subject = pickKnown('Patient');
    const body = subject && random() < 0.5 ? observation(tag, n, `Patient/${subject.id}`) : patient(tag, n);
    const attempt: Attempt = { kind: 'create', tags: [tag] };
    state.attempts.push(attempt);
    const res = await fetch(`${options.baseUrl}/${body.resourceType}`, { method: 'POST', headers: headers(), body: JSON.stringify(body) });
    await res.arrayBuffer();
    const at = parseLocation(res.headers.get('location'));
    if (res.status === 201 && at) {
      attempt.acked = [{ ...at, content: { ...body, id: at.id } }];
      acknowledge(attempt.acked);
    } else if (res.status < 500) attempt.refused = res.status;
    else attempt.serverError = res.status;
  };

  const update = async (): Promise<void> => {
    const target = pickKnown();
    if (!target) return create();
    const tag = `${options.prefix}-u${n++}`;
    const body = target.type === 'Patient' ? patient(tag, n) : observation(tag, n, (target.content.subject as { reference: string }).reference);
    const content = { ...body, id: target.id };
    const ifMatch = random() < 0.5 ? { 'if-match': `W/"${target.version}"` } : undefined;
    const attempt: Attempt = { kind: 'update', tags: [tag] };
    state.attempts.push(attempt);
    const res = await fetch(`${options.baseUrl}/${target.type}/${target.id}`, { method: 'PUT', headers: headers(ifMatch), body: JSON.stringify(content) });
    await res.arrayBuffer();
    const version = Number(/(\d+)/.exec(res.headers.get('etag') ?? '')?.[1]);
    if (res.status === 200 && version > 0) {
      attempt.acked = [{ type: target.type, id: target.id, version, content }];
      acknowledge(attempt.acked);
    } else if (res.status < 500) attempt.refused = res.status;
    else attempt.serverError = res.status;
  };

  const transaction = async (): Promise<void> => {
    const base = `${options.prefix}-t${n++}`;
    const patientUrl = `urn:uuid:${randomUUID()}`;
    const resources: Array<{ fullUrl?: string; resource: Record<string, unknown>; method: 'POST' | 'PUT'; url: string }> = [];
    resources.push({ fullUrl: patientUrl, resource: patient(`${base}-0`, n), method: 'POST', url: 'Patient' });
    const observations = 1 + Math.floor(random() * 3);
    for (let i = 1; i <= observations; i++) resources.push({ fullUrl: `urn:uuid:${randomUUID()}`, resource: observation(`${base}-${i}`, n + i, patientUrl), method: 'POST', url: 'Observation' });
    const target = random() < 0.5 ? pickKnown('Patient') : undefined;
    if (target) resources.push({ resource: { ...patient(`${base}-${observations + 1}`, n), id: target.id }, method: 'PUT', url: `Patient/${target.id}` });
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: resources.map((r) => ({ ...(r.fullUrl ? { fullUrl: r.fullUrl } : {}), resource: r.resource, request: { method: r.method, url: r.url } })),
    };
    const attempt: Attempt = { kind: 'transaction', tags: resources.map((r) => (r.resource.identifier as Array<{ value: string }>)[0]!.value) };
    state.attempts.push(attempt);
    const res = await fetch(options.baseUrl, { method: 'POST', headers: headers(), body: JSON.stringify(bundle) });
    const text = await res.text();
    if (res.status !== 200) {
      if (res.status < 500) attempt.refused = res.status;
      else attempt.serverError = res.status;
      return;
    }
    const entries = (JSON.parse(text) as { entry: Array<{ response: { location?: string } }> }).entry;
    const at = entries.map((e) => parseLocation(e.response.location));
    if (at.some((a) => !a)) return;
    const patientRef = `Patient/${at[0]!.id}`;
    attempt.acked = resources.map((r, i) => {
      const content: Record<string, unknown> = { ...r.resource, id: at[i]!.id };
      if (content.subject) content.subject = { reference: patientRef };
      return { ...at[i]!, content };
    });
    acknowledge(attempt.acked);
  };

  const worker = async () => {
    while (!options.stopped()) {
      const roll = random();
      try {
        if (roll < 0.4) await create();
        else if (roll < 0.75) await update();
        else await transaction();
      } catch {
        return; // the connection died with the server
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
}
