/**
 * The auditor API (docs/ledger.md §8, openapi.yaml): checkpoints, the verifier key, entries, inclusion and
 * consistency proofs and offline proof bundles, as a fastify plugin in its own encapsulated scope.
 *
 * Public, unauthenticated and not audited (they carry no PHI and auditing them would let anyone grow the log):
 * the latest checkpoint and the verifier key (note format and JWKS). Everything else needs an auditor (src/consent/
 * auditor.ts) and is itself audited: one `ledger-read` entry per request, durable before the response leaves,
 * denials included (fail closed: no durable entry, no data).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { exportJWK, type JWK } from 'jose';
import { mayAudit } from '../../consent/auditor.ts';
import type { Principal } from '../../consent/principal.ts';
import { errors, FhirError } from '../../errors.ts';
import { makeBundle } from '../bundle.ts';
import type { Checkpointer } from '../checkpoint.ts';
import { toBase64 } from '../entry.ts';
import type { Ledger } from '../log.ts';
import { parseVerifierKey } from '../note.ts';
import type { Agent, EntryDraft } from '../types.ts';
import { intParam, onlyParams, type Query } from './params.ts';

export interface LedgerRoutesOptions {
  ledger: Ledger;
  checkpointer: Checkpointer;
  /** Verifies the Authorization header; throws a 401 FhirError. */
  authenticate(authorization: string | undefined): Promise<Principal>;
}

/** Most entries one `GET /ledger/entries` returns; most checkpoints one `GET /ledger/checkpoints` returns. */
export const MAX_ENTRIES = 1000;
export const MAX_CHECKPOINTS = 1000;

export const LEDGER_PATHS = [
  '/ledger/checkpoint', '/ledger/checkpoints', '/ledger/key', '/ledger/jwks.json', '/ledger/entries',
  '/ledger/proof/inclusion', '/ledger/proof/consistency', '/ledger/bundle',
] as const;

type Handler = (query: Query) => Promise<unknown>;

export async function ledgerRoutes(app: FastifyInstance, options: LedgerRoutesOptions): Promise<void> {
  const { ledger, checkpointer } = options;
  const verifier = parseVerifierKey(checkpointer.verifierKey);
  const jwk: JWK = { ...(await exportJWK(verifier.key)), kid: Buffer.from(verifier.keyId).toString('hex'), alg: 'EdDSA', use: 'sig' };

  app.setErrorHandler((err, _req, reply) => sendError(reply, asFhirError(err)));

  app.get('/ledger/checkpoint', async (_req, reply) => {
    const latest = checkpointer.latest();
    if (!latest) throw errors.notFound('No checkpoint has been signed yet', 'ERR_NO_CHECKPOINT');
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(latest.note);
  });
  app.get('/ledger/key', async (_req, reply) => reply.type('text/plain; charset=utf-8').send(`${checkpointer.verifierKey}\n`));
  app.get('/ledger/jwks.json', async () => ({ keys: [jwk] }));

  const audited = (path: string, handler: Handler) => {
    app.get(path, async (req: FastifyRequest, reply: FastifyReply) => {
      const agent: Agent = { address: req.ip };
      const query = req.query as Query;
      const record = (status: number, error?: string) => {
        const entry: EntryDraft = { interaction: 'ledger-read', status, agent, operation: path };
        // The whole query as sent: a `?` inside a value belongs to it (split at the first one only).
        const question = req.url.indexOf('?');
        const search = question < 0 ? '' : req.url.slice(question + 1);
        if (search) entry.query = search.slice(0, 512);
        if (error) entry.error = error;
        return ledger.commit({ entries: [entry] }).catch((cause) => {
          throw errors.unavailable('The audit ledger could not record this request; it was not carried out', 'ERR_LEDGER_UNAVAILABLE', cause);
        });
      };
      let body: unknown;
      try {
        const principal = await options.authenticate(req.headers.authorization);
        Object.assign(agent, agentOf(principal));
        if (!mayAudit(principal)) throw errors.forbidden('Reading the audit log needs the auditor role or system/AuditEvent.rs', 'ERR_NOT_AUDITOR');
        body = await handler(query);
      } catch (err) {
        const error = asFhirError(err);
        await record(error.status, error.code);
        throw error;
      }
      await record(200);
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(body));
    });
  };

  audited('/ledger/checkpoints', async (query) => {
    onlyParams(query, ['from', 'limit']);
    const from = intParam(query, 'from', 0);
    const limit = intParam(query, 'limit', MAX_CHECKPOINTS);
    // Refused like /ledger/entries beyond its maximum, not cut short: a 200 would read as "this is all there is".
    if (limit > MAX_CHECKPOINTS) throw errors.badRequest(`limit must not exceed ${MAX_CHECKPOINTS}`, undefined, 'ERR_LEDGER_PARAM');
    return checkpointer.list(from, Number.MAX_SAFE_INTEGER, limit);
  });

  audited('/ledger/entries', async (query) => {
    onlyParams(query, ['start', 'end']);
    const start = intParam(query, 'start');
    const end = intParam(query, 'end');
    if (end < start) throw errors.badRequest('end must not be below start', undefined, 'ERR_LEDGER_PARAM');
    if (end - start > MAX_ENTRIES) throw errors.badRequest(`At most ${MAX_ENTRIES} entries per request`, undefined, 'ERR_LEDGER_PARAM');
    const entries = await ledger.getEntries(start, end);
    return entries.map((e) => ({ index: e.seq, entry: Buffer.from(e.bytes).toString('utf8'), leafHash: toBase64(e.leafHash) }));
  });

  audited('/ledger/proof/inclusion', async (query) => {
    onlyParams(query, ['index', 'size']);
    const index = intParam(query, 'index');
    const size = intParam(query, 'size');
    if (index >= size) throw errors.badRequest('index must be below size', undefined, 'ERR_LEDGER_PARAM');
    const proof = await ledger.inclusionProof(index, size);
    const [leaf] = await ledger.getEntries(index, index + 1);
    return { index, size, leafHash: toBase64(leaf!.leafHash), proof: proof.map(toBase64) };
  });

  audited('/ledger/proof/consistency', async (query) => {
    onlyParams(query, ['from', 'to']);
    const from = intParam(query, 'from');
    const to = intParam(query, 'to');
    if (from > to) throw errors.badRequest('from must not exceed to', undefined, 'ERR_LEDGER_PARAM');
    const proof = await ledger.consistencyProof(from, to);
    return { from, to, proof: proof.map(toBase64) };
  });

  audited('/ledger/bundle', async (query) => {
    onlyParams(query, ['index']);
    const index = intParam(query, 'index');
    if (index >= ledger.size()) throw errors.badRequest(`index ${index} is not in the log (size ${ledger.size()})`, undefined, 'ERR_LEDGER_RANGE');
    const latest = checkpointer.latest();
    if (!latest || latest.size <= index) {
      throw new FhirError(`Entry ${index} is not covered by a signed checkpoint yet; retry shortly`, {
        status: 409, code: 'ERR_NOT_CHECKPOINTED', issueType: 'conflict', headers: { 'retry-after': '1' },
      });
    }
    const [entry] = await ledger.getEntries(index, index + 1);
    const proof = await ledger.inclusionProof(index, latest.size);
    return makeBundle({ index, entry: entry!.bytes, size: latest.size, proof, checkpoint: latest.note, key: checkpointer.verifierKey });
  });
}

function agentOf(principal: Principal): Agent {
  const agent: Agent = { sub: principal.sub, issuer: principal.issuer };
  if (principal.fhirUser) agent.fhirUser = principal.fhirUser;
  if (principal.clientId) agent.clientId = principal.clientId;
  return agent;
}

function asFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const e = err as { statusCode?: number; message?: string };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new FhirError(e.message ?? 'Bad request', { status: e.statusCode, code: 'ERR_BAD_REQUEST', issueType: 'invalid' });
  }
  return errors.internal('Internal server error', 'ERR_INTERNAL', err);
}

/** OperationOutcome (http://hl7.org/fhir/R4/operationoutcome.html), as the FHIR adapter sends its errors. */
function sendError(reply: FastifyReply, error: FhirError) {
  if (error.status >= 500) reply.log.error({ err: error.cause ?? error, code: error.code }, 'ledger request failed');
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  const issue = error.issues.map((i) => ({ severity: i.severity, code: i.code, ...(i.diagnostics ? { diagnostics: i.diagnostics } : {}) }));
  return reply.code(error.status).type('application/fhir+json; charset=utf-8').send(JSON.stringify({ resourceType: 'OperationOutcome', issue }));
}
