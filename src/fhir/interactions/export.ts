/**
 * Bulk export (FHIR Bulk Data Access 2.0, https://hl7.org/fhir/uv/bulkdata/export.html), system level
 * (`[base]/$export`), patient level (`[base]/Patient/$export`: the Patient compartment's resources) and group level
 * (`[base]/Group/[id]/$export`: those of the group's patient members), with `_type`, `_since` and `_outputFormat`
 * (NDJSON).
 *
 * The kick-off records the job (its parameters and the ledger index of that moment) and answers 202 with the status
 * URL. As nothing is computed ahead, the status answers the manifest at once: one file per type whose file holds
 * resources (found on the first poll). Each file is written while it is downloaded, from the store as it stood at
 * the kick-off (Repository.versionsAt): plaintext exists only in the response, never on disk. The kick-off, every
 * poll, every download and every cancel is a ledger entry; a download's entry is durable before its first byte.
 */
import type { Group, OperationOutcome } from '@medplum/fhirtypes';
import { errors } from '../../errors.ts';
import { auditEntry, entityOfMatch } from '../audit.ts';
import { patientIdOf } from '../compartment.ts';
import { patientCompartmentTypes } from '../definitions.ts';
import type { ExportJob, ExportJobs } from '../export-jobs.ts';
import { informational } from '../outcome.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../request.ts';
import type { VersionRecord } from '../repository.ts';
import type { RouteMatch } from '../route.ts';
import { matchesEntries } from '../search/memory-match.ts';
import type { Filter } from '../search/params.ts';
import { compartmentFilter } from '../search/run.ts';
import { RESOURCE_TYPES } from '../validate.ts';
import { parseInstant } from './parameters.ts';
import { pageUrl, typesParameter } from './search.ts';

const KICK_OFF_PARAMETERS = new Set(['_type', '_since', '_outputFormat', '_format', '_pretty']);
/**
 * The IG's three spellings, and `application/fhir ndjson`: the first as it arrives when a client copies the IG's
 * examples without encoding the `+` (a query's `+` is a space), accepted as HAPI accepts it.
 */
const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson', 'application/fhir ndjson']);
/** AuditEvents are the ledger's view, not stored resources (their own API, the auditor's). */
const EXPORTABLE = RESOURCE_TYPES.filter((type) => type !== 'AuditEvent');
const NEWLINE = new Uint8Array([0x0a]);
const OPEN_TOGETHER = 64;
/** Types whose files are looked at concurrently for the manifest (each holds a LevelDB snapshot meanwhile). */
const OUTPUT_CHECKS_TOGETHER = 8;


function jobsOf(ctx: InteractionContext): ExportJobs {
  if (!ctx.exportJobs) throw errors.notFound('Bulk export is not served by this node', 'ERR_UNKNOWN_OPERATION');
  return ctx.exportJobs;
}

const ownerOf = (ctx: InteractionContext) => (ctx.principal ? `${ctx.principal.issuer} ${ctx.principal.sub}` : '');

/** The job, to its owner only: anyone else learns nothing, not even that it exists. */
async function ownJob(ctx: InteractionContext, id: string): Promise<ExportJob> {
  const job = await jobsOf(ctx).get(id);
  if (!job || job.owner !== ownerOf(ctx)) throw errors.notFound(`No bulk export job '${id}'`, 'ERR_EXPORT_JOB_UNKNOWN');
  return job;
}

export async function exportOperation(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  switch (match.operation) {
    case '$export':
      return kickOff(req, match, ctx);
    case '$export-poll-status':
      return req.method === 'DELETE' ? cancel(match, ctx) : status(match, ctx);
    default:
      return file(match, ctx);
  }
}

async function kickOff(req: FhirRequest, match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const jobs = jobsOf(ctx);
  if (!/respond-async/i.test(req.headers.prefer ?? '')) {
    throw errors.badRequest('Bulk export is asynchronous: send Prefer: respond-async', undefined, 'ERR_EXPORT_NOT_ASYNC');
  }
  for (const name of Object.keys(req.query)) {
    if (!KICK_OFF_PARAMETERS.has(name)) throw errors.badRequest(`Parameter '${name.slice(0, 64)}' is not supported by $export (only _type, _since, _outputFormat)`, [name], 'ERR_UNKNOWN_PARAMETER');
  }
  const format = req.query._outputFormat;
  if (format && (format.length !== 1 || !NDJSON_FORMATS.has(format[0]!))) {
    throw errors.badRequest(`_outputFormat must be application/fhir+ndjson, got '${format.join(',').slice(0, 60)}'`, ['_outputFormat'], 'ERR_EXPORT_FORMAT');
  }
  const level = match.resourceType === 'Group' ? 'group' : match.resourceType === 'Patient' ? 'patient' : 'system';
  const compartment = new Set(patientCompartmentTypes());
  const allowed = level === 'system' ? EXPORTABLE : EXPORTABLE.filter((type) => compartment.has(type));
  let types = allowed;
  const wanted = typesParameter(req.query._type);
  if (wanted) {
    for (const type of wanted) {
      if (!allowed.includes(type)) throw errors.badRequest(`_type: '${type.slice(0, 64)}' ${level === 'system' ? 'cannot be exported' : 'is not in the Patient compartment'}`, ['_type'], 'ERR_SEARCH_VALUE');
    }
    types = allowed.filter((type) => wanted.includes(type));
  }
  const since = parseInstant(req.query, '_since');
  const patients = level === 'group' ? await groupPatients(ctx, match.id!) : undefined;
  const job: ExportJob = {
    id: ctx.repo.newId(),
    level,
    ...(patients ? { patients } : {}),
    types,
    at: await ctx.repo.latestT(),
    transactionTime: new Date().toISOString(),
    request: pageUrl(ctx.baseUrl, req.path, req.query, undefined),
    owner: ownerOf(ctx),
    ...(since ? { since } : {}),
  };
  await jobs.put(job);
  await ctx.work.record(auditEntry(ctx, match, 202, { entity: entityOfMatch(match), query: ctx.repo.auditQuery(req.query) }));
  const statusUrl = `${ctx.baseUrl}/$export-poll-status/${job.id}`;
  const body: OperationOutcome = informational(`Bulk export ${job.id} accepted; poll ${statusUrl}`);
  return { status: 202, body, headers: { contentLocation: statusUrl } };
}

/** The ids of a Group's active Patient members, as the Group stands at the kick-off (404 unknown, 410 deleted). */
async function groupPatients(ctx: InteractionContext, id: string): Promise<string[]> {
  const head = await ctx.repo.head('Group', id);
  if (!head) throw errors.notFound(`Group/${id} is not known`);
  if (head.deleted) throw errors.gone(`Group/${id} was deleted`);
  const group = (await ctx.repo.openResource(head)) as Group;
  // Read as the compartment reads references, so the ids compare with each record's `patient`.
  const ids = (group.member ?? [])
    .filter((m) => m.inactive !== true)
    .map((m) => patientIdOf(m.entity))
    .filter((pid): pid is string => pid !== undefined);
  return [...new Set(ids)].sort();
}

/**
 * The manifest (complete at once: the files are written as they are read), or 404 for a job not the caller's. Its
 * `output` lists only the files that hold resources (Bulk Data IG, "Complete Status": an export that returns none
 * has an empty array): a type's file is looked at up to its first line, with the file's own selection.
 */
async function status(match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const job = await ownJob(ctx, match.job!);
  let types = job.output;
  if (!types) {
    const holds = await inBatches(job.types, OUTPUT_CHECKS_TOGETHER, async (type) => {
      for await (const _record of exported(ctx, job, type)) return true;
      return false;
    });
    types = job.types.filter((_, i) => holds[i]);
    await jobsOf(ctx).setOutput(job.id, types);
  }
  const output = types.map((type) => ({ type, url: `${ctx.baseUrl}/$export-file/${job.id}/${type}` }));
  await ctx.work.record(auditEntry(ctx, match, 200));
  const manifest = { transactionTime: job.transactionTime, request: job.request, requiresAccessToken: true, output, error: [] };
  return { status: 200, body: { json: manifest } };
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

async function cancel(match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const job = await ownJob(ctx, match.job!);
  await jobsOf(ctx).delete(job.id);
  await ctx.work.record(auditEntry(ctx, match, 202));
  return { status: 202, body: informational(`Bulk export ${job.id} deleted`) };
}

/** One type's file: the entry is durable before the first line leaves. */
async function file(match: RouteMatch, ctx: InteractionContext): Promise<FhirResponse> {
  const job = await ownJob(ctx, match.job!);
  const type = match.resourceType!;
  if (!job.types.includes(type)) throw errors.notFound(`Bulk export ${job.id} has no ${type} file`, 'ERR_EXPORT_JOB_UNKNOWN');
  await ctx.work.record(auditEntry(ctx, match, 200, { entity: entityOfMatch(match) }));
  const { repo } = ctx;
  async function* lines(): AsyncGenerator<Uint8Array> {
    // Blocks are fetched OPEN_TOGETHER at a time (as a search page's are), then decrypted in order.
    let pending: VersionRecord[] = [];
    const opened = async () => {
      const out = await repo.openMany(pending);
      pending = [];
      return out;
    };
    for await (const record of exported(ctx, job, type)) {
      pending.push(record);
      if (pending.length === OPEN_TOGETHER) for (const bytes of await opened()) yield* [bytes, NEWLINE];
    }
    for (const bytes of await opened()) yield* [bytes, NEWLINE];
  }
  return { status: 200, body: { ndjson: lines() } };
}

/**
 * What a job's file of one type holds, in order: the type's resources as they stood at the kick-off, updated since
 * `_since`; at patient level only those in some patient's compartment (the Patient records themselves included),
 * at group level only those in a member's (groupMembersAt).
 */
async function* exported(ctx: InteractionContext, job: ExportJob, type: string): AsyncGenerator<VersionRecord> {
  const records = job.level === 'group' ? groupMembersAt(ctx, type, job.patients ?? [], job.at) : ctx.repo.versionsAt(type, job.at);
  for await (const record of records) {
    if (job.since && record.lastUpdated < job.since) continue;
    // A version's `patient` is the first patient whose compartment holds it (compartment.ts): set for every
    // resource in any patient's compartment.
    if (job.level === 'patient' && type !== 'Patient' && record.patient === undefined) continue;
    yield record;
  }
}

/**
 * A type's resources in the Patient compartment of any of `patients` as they stood at ledger index `at`, each once,
 * in id order: decided as a compartment search and $everything decide it (compartmentFilter), not by the one
 * patient a resource is filed under, so an Observation of P1 performed by P2 is P2's too. The index shows the store
 * as it is now, which is the store at `at` for the resources unchanged since; one changed since is decided on the
 * entries of its version of that moment (decrypted), as the engine decides a candidate on its plaintext entries.
 * The index is read before the changes are: a resource changed in between counts as changed.
 */
async function* groupMembersAt(ctx: InteractionContext, type: string, patients: readonly string[], at: number): AsyncGenerator<VersionRecord> {
  const filters = patients.map((patient) => compartmentFilter(type, patient)).filter((f): f is Filter => f !== undefined);
  if (filters.length === 0) return;
  const now = new Set<string>();
  for (const filter of filters) for (const id of await ctx.repo.search.matchIds(type, [filter])) now.add(id);
  const changed = await ctx.repo.changedSince(type, at);
  const codes = new Set(filters.flatMap((f) => (f.kind === 'match' ? f.conditions.map((c) => c.code) : [])));
  for await (const record of ctx.repo.versionsAt(type, at, [...new Set([...now, ...changed])].sort())) {
    if (!changed.has(record.id)) {
      if (now.has(record.id)) yield record;
      continue;
    }
    const entries = await ctx.repo.plainEntries(record, codes);
    if (filters.some((filter) => matchesEntries([filter], entries))) yield record;
  }
}
