/**
 * An analysis worker thread: builds its own validator, compartment and index hasher from workerData (the same
 * definitions and keys as the main thread, so its answers are identical) and analyzes resources posted to it.
 * Errors go back as data; the pool turns them into the same FhirError the inline analyzer would have thrown.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../../errors.ts';
import { secretKey } from '../../storage/envelope.ts';
import { PatientCompartment } from '../compartment.ts';
import { createValidator, type ValidateOptions } from '../validate.ts';
import { analyze, indexHasher, type AnalysisDeps } from './analyze.ts';
import type { WorkerSettings, WorkerReply, WorkerRequest } from './protocol.ts';

const settings = workerData as WorkerSettings;
const deps: AnalysisDeps = {
  validator: createValidator({ profilesDir: settings.profilesDir, maxDepth: settings.maxDepth }),
  compartment: new PatientCompartment(),
  baseUrl: settings.baseUrl,
  indexHash: indexHasher(secretKey(settings.hashKey)),
};
settings.hashKey.fill(0);

const port = parentPort!;
port.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    const analysis = analyze(deps, request.resource as Resource, request.options as ValidateOptions);
    // Transferred, not copied, when the bytes own their buffer; a view into a shared one (Node's Buffer pool) is
    // copied instead, since transferring would detach the whole pool.
    const { plaintext } = analysis;
    const owns = plaintext.byteOffset === 0 && plaintext.byteLength === plaintext.buffer.byteLength;
    reply = { id: request.id, analysis: owns ? analysis : { ...analysis, plaintext: new Uint8Array(plaintext) } };
    port.postMessage(reply, [reply.analysis!.plaintext.buffer as ArrayBuffer]);
    return;
  } catch (err) {
    reply = { id: request.id, error: errorData(err) };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });

function errorData(err: unknown): WorkerReply['error'] {
  if (err instanceof FhirError) {
    return { message: err.message, fhir: { status: err.status, code: err.code, issueType: err.issueType, issues: err.issues, headers: err.headers } };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}
