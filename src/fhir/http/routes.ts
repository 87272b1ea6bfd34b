/**
 * The thin HTTP adapter of the FHIR core: fastify request → FhirRequest → router → FhirResponse → fastify reply.
 * Here live only HTTP concerns: bodies, content negotiation, authentication, headers, Prefer, _pretty, and
 * turning errors into OperationOutcomes. Everything FHIR is decided in the core.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Resource } from '@medplum/fhirtypes';
import { errors, FhirError } from '../../errors.ts';
import { httpDate } from '../audit.ts';
import type { Agent } from '../../ledger/types.ts';
import type { Principal } from '../../consent/principal.ts';
import { informational, outcomeOf, toFhirError } from '../outcome.ts';
import { isJson, isNdjson, isRaw, parseQuery, splitUrl, type FhirRequest, type FhirResponse, type InteractionContext } from '../request.ts';
import type { RouteMatch } from '../route.ts';
import { dispatch, isRecorded, recordFailure, route } from '../router.ts';
import { decodeBody, JSON_CONTENT_TYPES, parseJsonBody } from './json-body.ts';
import { isPretty, negotiate, negotiateNdjson, type ResponseType } from './negotiate.ts';

export interface FhirRoutesOptions {
  baseUrl: string;
  maxJsonDepth: number;
  /** Verifies the Authorization header; throws a 401 FhirError. */
  authenticate(authorization: string | undefined): Promise<Principal>;
  /** Builds the interaction context for an authenticated request. */
  context(principal: Principal | undefined, agent: Agent): InteractionContext;
}

const PUBLIC_INTERACTIONS = new Set(['capabilities']);

export async function fhirRoutes(app: FastifyInstance, options: FhirRoutesOptions): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_CONTENT_TYPES, { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parseJsonBody(decodeBody(body as Buffer, req.headers['content-type']), options.maxJsonDepth));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // POST [base]/[type]/_search and [base]/_search carry their parameters as a form (http://hl7.org/fhir/R4/http.html#search)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (req, body, done) => {
    if (!/\/_search$/.test(req.url.split('?')[0]!)) {
      done(errors.unsupportedMediaType('application/x-www-form-urlencoded is accepted only by POST _search'), undefined);
      return;
    }
    try {
      done(null, new FormBody(decodeBody(body as Buffer, req.headers['content-type'])));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addContentTypeParser('*', (req, _payload, done) => {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const hint = type.includes('xml') ? 'XML is not supported: send application/fhir+json' : 'send application/fhir+json';
    done(errors.unsupportedMediaType(`Content-Type '${type.slice(0, 80)}' is not supported: ${hint}`), undefined);
  });

  // Requests rejected before an interaction ran (unreadable body, unknown route, unacceptable format) are recorded
  // here, so that every request under /fhir leaves its trace in the ledger, failed ones included.
  const recordRejection = async (req: FastifyRequest, error: FhirError): Promise<FhirError> => {
    if (isRecorded(error) || error.code === 'ERR_LEDGER_UNAVAILABLE') return error;
    let match: RouteMatch | { interaction: string } = { interaction: 'unknown' };
    try {
      match = route({ method: req.method === 'HEAD' ? 'GET' : req.method, path: req.url.split('?')[0]!.replace(/^\/fhir\/?/, ''), query: {}, headers: {} });
    } catch {
      // An unroutable request keeps the interaction 'unknown'.
    }
    try {
      await recordFailure(options.context(undefined, { address: req.ip }), match, error);
      return error;
    } catch (ledgerError) {
      return toFhirError(ledgerError);
    }
  };
  app.setErrorHandler(async (err, req, reply) => sendError(req, reply, await recordRejection(req, httpError(err))));
  app.setNotFoundHandler(async (req, reply) =>
    sendError(req, reply, await recordRejection(req, errors.notFound(`No endpoint at ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`, 'ERR_NO_ROUTE'))),
  );

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const fhirRequest = toFhirRequest(req);
    if (fhirRequest.method !== 'PATCH' && /json-patch/i.test(fhirRequest.headers.contentType ?? '')) {
      throw errors.unsupportedMediaType('application/json-patch+json is only accepted by PATCH: send application/fhir+json');
    }
    // A bulk export file answers NDJSON: the FHIR formats' negotiation does not apply to it.
    const exportFile = fhirRequest.path.startsWith('$export-file/');
    if (exportFile) negotiateNdjson(req.headers.accept);
    const responseType = exportFile ? 'application/fhir+json' : negotiate(fhirRequest.query._format?.[0], req.headers.accept);
    const match = route(fhirRequest);
    const agent: Agent = { address: req.ip };
    let principal: Principal | undefined;
    if (!PUBLIC_INTERACTIONS.has(match.interaction)) {
      try {
        principal = await options.authenticate(req.headers.authorization);
      } catch (err) {
        const error = toFhirError(err);
        await recordFailure(options.context(undefined, agent), match, error);
        throw error;
      }
      Object.assign(agent, agentOf(principal));
    }
    const response = await dispatch(fhirRequest, match, options.context(principal, agent));
    return send(req, reply, response, fhirRequest, match, responseType);
  };
  for (const url of ['/fhir', '/fhir/*']) {
    app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url, handler, exposeHeadRoute: false });
  }
}

/** A POST _search body: its parameters join those of the URL. */
class FormBody {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

function toFhirRequest(req: FastifyRequest): FhirRequest {
  const [rawPath, search] = splitUrl(req.url);
  const query = parseQuery(search, req.body instanceof FormBody ? req.body.text : '');
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const headers: FhirRequest['headers'] = {};
  const set = (key: keyof FhirRequest['headers'], name: string) => {
    const value = header(name);
    if (value !== undefined) headers[key] = value;
  };
  set('ifMatch', 'if-match');
  set('ifNoneMatch', 'if-none-match');
  set('ifModifiedSince', 'if-modified-since');
  set('ifNoneExist', 'if-none-exist');
  set('prefer', 'prefer');
  set('contentType', 'content-type');
  const request: FhirRequest = {
    method: req.method === 'HEAD' ? 'GET' : req.method,
    path: rawPath.replace(/^\/fhir\/?/, ''),
    query,
    headers,
  };
  if (req.body !== undefined && !(req.body instanceof FormBody)) request.body = req.body;
  return request;
}

function agentOf(principal: Principal): Agent {
  const agent: Agent = { sub: principal.sub, issuer: principal.issuer };
  if (principal.fhirUser) agent.fhirUser = principal.fhirUser;
  if (principal.clientId) agent.clientId = principal.clientId;
  return agent;
}

function send(req: FastifyRequest, reply: FastifyReply, response: FhirResponse, fhirRequest: FhirRequest, match: RouteMatch, type: ResponseType) {
  const { headers = {} } = response;
  if (headers.etag) reply.header('etag', headers.etag);
  if (headers.lastModified) reply.header('last-modified', httpDate(headers.lastModified));
  if (headers.location) reply.header('location', headers.location);
  if (headers.contentLocation) reply.header('content-location', headers.contentLocation);
  reply.code(response.status);
  if (response.status === 304 || response.body === undefined) return reply.send();

  let body: FhirResponse['body'] = response.body;
  const preference = /return\s*=\s*(minimal|representation|OperationOutcome)/i.exec(fhirRequest.headers.prefer ?? '')?.[1];
  if (response.written && preference) {
    reply.header('preference-applied', `return=${preference}`);
    if (preference === 'minimal') return reply.send();
    if (preference.toLowerCase() === 'operationoutcome') body = informational(`${match.interaction} succeeded (HTTP ${response.status})`);
  }
  const pretty = isPretty(fhirRequest.query._pretty?.[0]);
  if (isNdjson(body)) return reply.type('application/fhir+ndjson').send(Readable.from(body.ndjson));
  if (isJson(body)) return reply.type('application/json; charset=utf-8').send(JSON.stringify(body.json, null, pretty ? 2 : undefined));
  reply.type(`${type}; charset=utf-8`);
  if (req.method === 'HEAD') return reply.send();
  if (isRaw(body)) {
    return reply.send(pretty ? JSON.stringify(JSON.parse(Buffer.from(body.raw).toString('utf8')), null, 2) : Buffer.from(body.raw));
  }
  return reply.send(JSON.stringify(body as Resource, null, pretty ? 2 : undefined));
}

/** Errors fastify raises before our handler runs (bad bodies, limits) are the caller's mistakes: map them to 4xx. */
function httpError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) return errors.tooLarge(`The request body is larger than this server accepts`);
    if (e.statusCode === 415) return errors.unsupportedMediaType('Unsupported Content-Type: send application/fhir+json');
    return new FhirError(e.message ?? 'Bad request', { status: e.statusCode, code: e.code ?? 'ERR_BAD_REQUEST', issueType: 'invalid' });
  }
  return toFhirError(err);
}

function sendError(req: FastifyRequest, reply: FastifyReply, error: FhirError) {
  if (error.status >= 500) req.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  reply.code(error.status).type('application/fhir+json; charset=utf-8');
  return reply.send(JSON.stringify(outcomeOf(error.issues)));
}
