/**
 * Loads one file into the node through the FHIR core itself, in-process: the same router, validation, encryption,
 * search index and ledger as a REST request, dispatched as a system agent (src/cli/import.ts explains why not HTTP).
 * - transaction Bundle: dispatched as it is: ONE atomic commit, with the file's "done" record in the same batch;
 * - batch Bundle: dispatched as it is (entries independent); each entry's commit records that entry, so a rerun
 *   sends only the entries not yet committed;
 * - collection / searchset Bundle, or a single resource: loaded as one transaction of their resources (PUT
 *   `Type/id` when the resource has an id, keeping ids and the references between them; POST otherwise);
 * - NDJSON: one resource per line, read as a stream, in transactions of `chunkLines` lines whose commit carries the
 *   line number reached. A line that is not JSON, or whose resource is rejected, is reported and skipped (the rest
 *   of its chunk is retried without it).
 * Memory: one parsed Bundle file per file in flight (so the bound is `concurrency` × the largest Bundle file, a few
 * times its size in objects); NDJSON holds one chunk of lines.
 */
import fs from 'node:fs';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { Principal } from '../consent/principal.ts';
import type { FhirError, Issue } from '../errors.ts';
import { duplicateMemberError, jsonTextProblem, strictUtf8, withoutBom } from '../fhir/http/json-body.ts';
import { toFhirError } from '../fhir/outcome.ts';
import type { Repository } from '../fhir/repository.ts';
import type { FhirRequest, FhirResponse, InteractionContext } from '../fhir/request.ts';
import { dispatch, route } from '../fhir/router.ts';
import type { WorkUnit } from '../fhir/work.ts';
import type { Agent } from '../ledger/types.ts';
import type { Database } from '../storage/db.ts';
import { ProgressStore, type FileProgress } from './progress.ts';
import type { SourceFile } from './sources.ts';

export interface ImportFailure {
  file: string;
  /** `Bundle.entry[3]`, `line 17`, or absent when the whole file failed before any entry. */
  where?: string;
  code: string;
  message: string;
}

export interface FileOutcome {
  file: SourceFile;
  /** `skipped`: already imported by an earlier run. */
  status: 'imported' | 'skipped' | 'failed';
  resources: number;
  failures: ImportFailure[];
}

export interface ImporterDeps {
  db: Database;
  /** Keyed hashing of the progress record's keys (file paths can hold patient names). */
  repo: Pick<Repository, 'auditQuery'>;
  context(principal: Principal | undefined, agent: Agent): InteractionContext;
}

export interface ImporterOptions {
  /** NDJSON lines per transaction. */
  chunkLines: number;
  /** Who the ledger names as the agent of every write. */
  agent: Agent;
  onResources?(count: number): void;
  onBytes?(count: number): void;
}

const IMPORT_PRINCIPAL = (agent: Agent): Principal => ({
  sub: agent.sub ?? 'import',
  issuer: agent.issuer ?? 'sealed-fhir:import',
  scopes: ['system/*.cruds'],
  expiresAt: new Date(8.64e15),
  claims: {},
});

const ENTRY = /Bundle\.entry\[(\d+)\]/;

export class Importer {
  private readonly progress: ProgressStore;
  private readonly deps: ImporterDeps;
  private readonly options: ImporterOptions;

  constructor(deps: ImporterDeps, options: ImporterOptions) {
    this.deps = deps;
    this.options = options;
    this.progress = new ProgressStore(deps.db, (file) => deps.repo.auditQuery({ file: [file] }));
  }

  get progressStore(): ProgressStore {
    return this.progress;
  }

  async importFile(file: SourceFile): Promise<FileOutcome> {
    const recorded = await this.progress.get(file.path, file.size);
    if (recorded?.done) {
      this.options.onBytes?.(file.size);
      return { file, status: 'skipped', resources: 0, failures: [] };
    }
    return file.kind === 'ndjson' ? this.importNdjson(file, recorded) : this.importBundleFile(file, recorded);
  }

  private async importBundleFile(file: SourceFile, recorded: FileProgress | undefined): Promise<FileOutcome> {
    let parsed: unknown;
    let text: string;
    try {
      text = withoutBom(strictUtf8.decode(await fs.promises.readFile(file.path)));
      parsed = JSON.parse(text);
    } catch (err) {
      this.options.onBytes?.(file.size);
      return this.failed(file, { file: file.path, code: 'ERR_JSON_SYNTAX', message: `not a JSON file: ${(err as Error).message.slice(0, 200)}` });
    }
    const duplicate = duplicateMember(text, parsed);
    if (duplicate !== undefined) {
      this.options.onBytes?.(file.size);
      return this.failed(file, { file: file.path, code: 'ERR_JSON_DUPLICATE_MEMBER', message: duplicate });
    }
    const resource = parsed as Resource | undefined;
    try {
      if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') {
        return this.failed(file, { file: file.path, code: 'ERR_NOT_A_RESOURCE', message: 'the file holds no FHIR resource (no resourceType)' });
      }
      if (resource.resourceType !== 'Bundle') return await this.transaction(file, [{ resource }]);
      const bundle = resource as Bundle;
      switch (bundle.type) {
        case 'transaction':
          return await this.transaction(file, bundle.entry ?? [], bundle);
        case 'batch':
          return await this.batch(file, bundle, recorded ? await this.progress.doneEntries(file.path) : new Set());
        case 'collection':
        case 'searchset':
          return await this.transaction(file, (bundle.entry ?? []).filter((e) => e.resource));
        default:
          return this.failed(file, {
            file: file.path,
            code: 'ERR_BUNDLE_TYPE',
            message: `Bundle.type '${String(bundle.type).slice(0, 40)}' is not imported (transaction, batch, collection and searchset are; POST a document or message Bundle to /Bundle to store it as such)`,
          });
      }
    } finally {
      this.options.onBytes?.(file.size);
    }
  }

  /**
   * One atomic transaction for the whole file. `bundle` is the file's own transaction Bundle; otherwise the entries
   * are plain resources to store (collection, single resource).
   */
  private async transaction(file: SourceFile, entries: BundleEntry[], bundle?: Bundle): Promise<FileOutcome> {
    const body: Bundle = bundle ?? { resourceType: 'Bundle', type: 'transaction', entry: entries.map(storeEntry) };
    const ctx = this.context((work, deferred) => {
      if (deferred) work.attach([this.progress.op(file.path, { size: file.size, done: true })]);
    });
    try {
      await this.dispatchBundle(body, ctx);
    } catch (err) {
      const error = toFhirError(err);
      return this.failed(file, this.failureOf(file.path, error, (i) => `Bundle.entry[${i}]`));
    }
    const count = body.entry?.length ?? 0;
    this.options.onResources?.(count);
    return { file, status: 'imported', resources: count, failures: [] };
  }

  /** A batch as it is, minus the entries an earlier run committed; each entry's commit records it. */
  private async batch(file: SourceFile, bundle: Bundle, done: Set<number>): Promise<FileOutcome> {
    const indexes = (bundle.entry ?? []).map((_, i) => i).filter((i) => !done.has(i));
    let started = 0;
    // runBatch creates one immediate work unit per entry, in entry order: the k-th is entry indexes[k].
    const ctx = this.context((work, deferred) => {
      if (!deferred) work.attach([this.progress.entryOp(file.path, indexes[started++]!)]);
    });
    if (done.size === 0) await this.progress.reset(file.path, file.size);
    let response: FhirResponse;
    try {
      response = await this.dispatchBundle({ ...bundle, entry: indexes.map((i) => bundle.entry![i]!) }, ctx);
    } catch (err) {
      return this.failed(file, this.failureOf(file.path, toFhirError(err), (i) => `Bundle.entry[${indexes[i] ?? i}]`));
    }
    const failures: ImportFailure[] = [];
    let resources = 0;
    ((response.body as Bundle).entry ?? []).forEach((entry, i) => {
      const status = Number.parseInt(entry.response?.status ?? '', 10);
      if (status >= 200 && status < 300) {
        resources++;
        return;
      }
      const issue = entry.response?.outcome?.issue?.[0];
      failures.push({ file: file.path, where: `Bundle.entry[${indexes[i]}]`, code: `HTTP ${status}`, message: issue?.diagnostics ?? entry.response?.status ?? 'failed' });
    });
    await this.progress.finish(file.path, file.size);
    this.options.onResources?.(resources);
    return { file, status: failures.length > 0 && resources === 0 ? 'failed' : 'imported', resources, failures };
  }

  private async importNdjson(file: SourceFile, recorded: FileProgress | undefined): Promise<FileOutcome> {
    const skip = recorded?.units ?? 0;
    const failures: ImportFailure[] = [];
    let resources = 0;
    let chunk: Array<{ line: number; resource: Resource }> = [];
    const keys = new Set<string>();
    const flush = async (lastLine: number) => {
      resources += await this.ndjsonChunk(file, chunk, lastLine, failures);
      chunk = [];
      keys.clear();
    };
    let lastLine = skip;
    for await (const { line, text, invalid } of readLines(file.path, (n) => this.options.onBytes?.(n))) {
      if (line <= skip) continue;
      if (invalid !== undefined) {
        failures.push({ file: file.path, where: `line ${line}`, code: 'ERR_ENCODING', message: `${invalid}: FHIR NDJSON is UTF-8` });
        continue;
      }
      if (text.trim() === '') continue;
      let resource: Resource;
      try {
        resource = JSON.parse(line === 1 ? withoutBom(text) : text) as Resource;
        if (!resource || typeof resource !== 'object' || Array.isArray(resource) || typeof resource.resourceType !== 'string') throw new Error('no resourceType');
      } catch (err) {
        failures.push({ file: file.path, where: `line ${line}`, code: 'ERR_JSON_SYNTAX', message: `not a FHIR resource in JSON: ${(err as Error).message.slice(0, 160)}` });
        continue;
      }
      const duplicate = duplicateMember(text, resource);
      if (duplicate !== undefined) {
        failures.push({ file: file.path, where: `line ${line}`, code: 'ERR_JSON_DUPLICATE_MEMBER', message: duplicate });
        continue;
      }
      // The same resource twice in one transaction is a conflict: commit what came before it first.
      const key = resource.id ? `${resource.resourceType}/${resource.id}` : undefined;
      if (key && keys.has(key)) await flush(lastLine);
      if (key) keys.add(key);
      chunk.push({ line, resource });
      lastLine = line;
      if (chunk.length >= this.options.chunkLines) await flush(line);
    }
    if (chunk.length > 0) await flush(lastLine);
    await this.progress.finish(file.path, file.size);
    return { file, status: failures.length > 0 && resources === 0 ? 'failed' : 'imported', resources, failures };
  }

  /** Commits one chunk of NDJSON lines; a rejected line is reported and the chunk retried without it. */
  private async ndjsonChunk(file: SourceFile, chunk: Array<{ line: number; resource: Resource }>, lastLine: number, failures: ImportFailure[]): Promise<number> {
    let rest = chunk;
    while (rest.length > 0) {
      const ctx = this.context((work, deferred) => {
        if (deferred) work.attach([this.progress.op(file.path, { size: file.size, units: lastLine })]);
      });
      try {
        await this.dispatchBundle({ resourceType: 'Bundle', type: 'transaction', entry: rest.map((r) => storeEntry({ resource: r.resource })) }, ctx);
        this.options.onResources?.(rest.length);
        return rest.length;
      } catch (err) {
        const error = toFhirError(err);
        const index = Number(ENTRY.exec(error.message)?.[1] ?? -1);
        if (error.code === 'ERR_LEDGER_UNAVAILABLE' || !(index >= 0 && index < rest.length)) {
          for (const r of rest) failures.push({ file: file.path, where: `line ${r.line}`, code: error.code, message: describe(error) });
          return 0;
        }
        failures.push({ file: file.path, where: `line ${rest[index]!.line}`, code: error.code, message: describe(error) });
        rest = rest.filter((_, i) => i !== index);
      }
    }
    return 0;
  }

  private async dispatchBundle(bundle: Bundle, ctx: InteractionContext): Promise<FhirResponse> {
    const request: FhirRequest = { method: 'POST', path: '', query: {}, headers: {}, body: bundle };
    return dispatch(request, route(request), ctx);
  }

  /** A context for one dispatch whose new work units get `attach` called on them (progress records). */
  private context(attach: (work: WorkUnit, deferred: boolean) => void): InteractionContext {
    const base = this.deps.context(IMPORT_PRINCIPAL(this.options.agent), this.options.agent);
    return {
      ...base,
      maxBundleEntries: Number.MAX_SAFE_INTEGER,
      newWork: (deferred) => {
        const work = base.newWork(deferred);
        attach(work, deferred);
        return work;
      },
    };
  }

  private failureOf(file: string, error: FhirError, where: (index: number) => string): ImportFailure {
    const index = ENTRY.exec(error.message)?.[1];
    const failure: ImportFailure = { file, code: error.code, message: describe(error) };
    if (index !== undefined) failure.where = where(Number(index));
    return failure;
  }

  private failed(file: SourceFile, failure: ImportFailure): FileOutcome {
    return { file, status: 'failed', resources: 0, failures: [failure] };
  }
}

/**
 * Why a parsed JSON text is refused for a member name given twice in one object, as the REST API refuses it
 * (json-body.ts): JSON.parse kept one of the two values silently. Undefined when no name repeats.
 */
function duplicateMember(text: string, parsed: unknown): string | undefined {
  const problem = jsonTextProblem(text, Number.POSITIVE_INFINITY);
  return problem?.kind === 'duplicate' ? duplicateMemberError(problem, parsed).message : undefined;
}

/** A resource to store as a transaction entry: PUT keeps its id (and so references to it), POST when it has none. */
function storeEntry(entry: BundleEntry): BundleEntry {
  const resource = entry.resource!;
  const out: BundleEntry = {
    resource,
    request: resource.id ? { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } : { method: 'POST', url: resource.resourceType },
  };
  if (entry.fullUrl) out.fullUrl = entry.fullUrl;
  return out;
}

/**
 * What went wrong, for the summary: the error's issues (where and why), without the entry prefix a transaction adds.
 * The errors come first, and a warning that came with them (a Synthea resource's US Core profile, unknown here) is
 * marked as one, so it is not read as the reason.
 */
function describe(error: FhirError): string {
  const rank = (issue: Issue) => (issue.severity === 'fatal' || issue.severity === 'error' ? 0 : 1);
  const issues = [...error.issues]
    .sort((a, b) => rank(a) - rank(b))
    .slice(0, 3)
    .map((issue) => {
      const text = (issue.diagnostics ?? '').replace(/^Bundle\.entry\[\d+\]: /, '');
      const where = issue.expression?.find((e) => !e.startsWith('Bundle.entry['));
      const said = where && !text.includes(where) ? `${where}: ${text}` : text;
      return said !== '' && rank(issue) > 0 ? `(${issue.severity}) ${said}` : said;
    })
    .filter((text) => text !== '');
  const text = issues.length > 0 ? issues.join('; ') : error.message.replace(/^Transaction failed at Bundle\.entry\[\d+\] \([^)]*\): /, '');
  return text.slice(0, 400);
}

/** A line of an NDJSON file: its text, or why it has none (bytes that are not UTF-8). */
export type FileLine = { line: number; text: string; invalid?: undefined } | { line: number; text?: undefined; invalid: string };

/**
 * Lines of a file with their 1-based numbers, read as a stream (only the current chunk and a partial line held).
 * Lines are cut at the newline byte, which never occurs inside a UTF-8 sequence, and each is decoded strictly: a
 * line that is not UTF-8 is reported as such, not read with replacement characters into the store.
 */
export async function* readLines(file: string, onBytes?: (count: number) => void): AsyncGenerator<FileLine> {
  let line = 0;
  let partial: Buffer[] = [];
  const decode = (bytes: Buffer): FileLine => {
    line++;
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    try {
      return { line, text: strictUtf8.decode(bytes.subarray(0, end)) };
    } catch {
      return { line, invalid: 'the line is not valid UTF-8' };
    }
  };
  const stream = fs.createReadStream(file, { highWaterMark: 256 * 1024 });
  for await (const piece of stream as AsyncIterable<Buffer>) {
    onBytes?.(piece.length);
    let start = 0;
    for (let nl = piece.indexOf(0x0a); nl >= 0; nl = piece.indexOf(0x0a, start)) {
      const head = piece.subarray(start, nl);
      yield decode(partial.length > 0 ? Buffer.concat([...partial, head]) : head);
      partial = [];
      start = nl + 1;
    }
    if (start < piece.length) partial.push(piece.subarray(start));
  }
  if (partial.length > 0) yield decode(Buffer.concat(partial));
}
