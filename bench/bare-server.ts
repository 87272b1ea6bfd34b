/**
 * The baseline: a bare fastify server that answers each captured request URL with exactly the bytes and headers
 * sealed-fhir gave for it (a read, a search), handed over in a file by the bench. So `read / bare` is the cost of
 * everything sealed-fhir does on a read: token check, index, block, decryption, audit entry, durable commit; and
 * `search / bare-search` the same for a search.
 *
 * Env: PORT, ROUTES_FILE: JSON `[{ "url": "/fhir/Patient/1", "bodyFile": "...", "headers": { ... } }]`.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

interface Captured {
  url: string;
  bodyFile: string;
  headers: Record<string, string>;
}

const port = Number(process.env.PORT);
const routesFile = process.env.ROUTES_FILE;
if (!Number.isInteger(port) || port <= 0 || !routesFile) {
  process.stderr.write('bare-server: PORT and ROUTES_FILE are required\n');
  process.exit(2);
}
const responses = new Map<string, { body: Buffer; headers: Record<string, string> }>();
for (const route of JSON.parse(readFileSync(routesFile, 'utf8')) as Captured[]) {
  responses.set(route.url, { body: readFileSync(route.bodyFile), headers: route.headers });
}

// Same logger level as the sealed server under bench (LOG_LEVEL=warn): both pay for a pino child per request.
const app = Fastify({ logger: { level: 'warn' } });
app.get('/healthz', async () => ({ status: 'ok' }));
// One lookup by the whole URL (path and query), the least a server can do to pick a response.
app.get('/fhir/*', async (request, reply) => {
  const found = responses.get(request.url);
  if (!found) return reply.code(404).send({ error: 'not captured' });
  return reply.headers(found.headers).send(found.body);
});

const stop = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await app.listen({ port, host: '127.0.0.1' });
