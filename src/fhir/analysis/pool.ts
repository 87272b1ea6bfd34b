/**
 * A pool of analysis worker threads (worker.ts): each write's validation, index extraction and canonical JSON run
 * there, on the other cores, while the main thread parses requests, reads heads, encrypts and commits. A request
 * goes to the worker with the fewest in flight. A worker that dies fails only what it had in flight (500) and is
 * replaced; the pool never answers for a resource with anything but what `analyze` would have said inline.
 */
import { Worker } from 'node:worker_threads';
import type { Resource } from '@medplum/fhirtypes';
import { errors, FhirError } from '../../errors.ts';
import type { ValidateOptions } from '../validate.ts';
import type { Analysis, Analyzer } from './analyze.ts';
import type { WorkerReply, WorkerRequest, WorkerSettings } from './protocol.ts';

const WORKER_URL = new URL('./worker.ts', import.meta.url);

interface Pending {
  resolve(analysis: Analysis): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Set once the worker failed ('error' and then 'exit' both report it: replace it once). */
  dead: boolean;
}

export interface PoolOptions {
  size: number;
  settings: Omit<WorkerSettings, 'hashKey'>;
  /** Called for each worker started: the key bytes it imports (a fresh copy each time; the worker zeroes it). */
  hashKey(): Uint8Array;
  /** Reports a worker that died unexpectedly (it is replaced). */
  onWorkerError(error: Error): void;
  /** The worker script (tests start one that can be made to die); worker.ts by default. */
  workerUrl?: URL;
  /** Answers while no worker is alive (between a death and its replacement); otherwise such requests get a 503. */
  fallback?: Analyzer;
}

export async function createAnalysisPool(options: PoolOptions): Promise<Analyzer> {
  let closing = false;
  let nextId = 0;
  const slots: Slot[] = [];

  const start = (): Promise<Slot> => {
    const worker = new Worker(options.workerUrl ?? WORKER_URL, { workerData: { ...options.settings, hashKey: options.hashKey() } satisfies WorkerSettings });
    const slot: Slot = { worker, pending: new Map(), dead: false };
    return new Promise<Slot>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerReply | { ready: true }) => {
        if ('ready' in message) {
          ready = true;
          resolve(slot);
          return;
        }
        const waiting = slot.pending.get(message.id);
        if (!waiting) return;
        slot.pending.delete(message.id);
        if (message.analysis) waiting.resolve(message.analysis);
        else waiting.reject(errorOf(message.error));
      });
      const died = (error: Error) => {
        if (slot.dead) return;
        slot.dead = true;
        for (const waiting of slot.pending.values()) waiting.reject(errors.internal(`Resource analysis failed: ${error.message}`, 'ERR_ANALYSIS_WORKER'));
        slot.pending.clear();
        if (!ready) {
          reject(error);
          return;
        }
        // Out of the rotation at once: a message posted to a dead worker is never answered.
        const index = slots.indexOf(slot);
        if (index >= 0) slots.splice(index, 1);
        if (closing) return;
        options.onWorkerError(error);
        start().then(
          (replacement) => (closing ? void replacement.worker.terminate() : slots.push(replacement)),
          (startError: Error) => options.onWorkerError(startError),
        );
      };
      worker.on('error', died);
      worker.on('exit', (code) => died(new Error(`analysis worker exited with code ${code}`)));
    });
  };

  const started = await Promise.allSettled(Array.from({ length: options.size }, start));
  for (const result of started) if (result.status === 'fulfilled') slots.push(result.value);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(slots.map((s) => s.worker.terminate()));
    throw new Error(`An analysis worker could not start: ${(failed.reason as Error).message}`);
  }

  return {
    analyze(resource: Resource, validateOptions: ValidateOptions): Promise<Analysis> {
      if (closing) return Promise.reject(errors.unavailable('The server is shutting down', 'ERR_CLOSING'));
      if (slots.length === 0) {
        if (options.fallback) return options.fallback.analyze(resource, validateOptions);
        return Promise.reject(errors.unavailable('No resource analysis worker is running; try again', 'ERR_ANALYSIS_UNAVAILABLE'));
      }
      let slot = slots[0]!;
      for (const s of slots) if (s.pending.size < slot.pending.size) slot = s;
      const id = nextId++;
      return new Promise<Analysis>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        try {
          slot.worker.postMessage({ id, resource, options: validateOptions } satisfies WorkerRequest);
        } catch (err) {
          // Only data that cannot be cloned lands here (a resource parsed from JSON always can).
          slot.pending.delete(id);
          reject(errors.badRequest(`The resource cannot be processed: ${(err as Error).message}`));
        }
      });
    },
    async close() {
      closing = true;
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}

function errorOf(data: WorkerReply['error']): Error {
  if (data?.fhir) return new FhirError(data.message, data.fhir);
  return errors.internal(`Resource analysis failed: ${data?.message ?? 'no reason given'}`, 'ERR_ANALYSIS');
}
