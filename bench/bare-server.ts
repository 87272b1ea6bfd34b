/**
 * The baseline: a bare fastify server with one route that answers with exactly the bytes and headers of a
 * sealed-fhir read (captured by the bench and handed over in a file), so the ratio read/bare is the cost of
 * everything sealed-fhir does on a read: token check, index, block, decryption, audit entry, durable commit.
 *
 * Env: PORT, BODY_FILE (the response bytes), HEADERS_JSON (response headers, e.g. content-type and etag).
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const port = Number(process.env.PORT);
const bodyFile = process.env.BODY_FILE;
if (!Number.isInteger(port) || port <= 0 || !bodyFile) {
  process.stderr.write('bare-server: PORT and BODY_FILE are required\n');
  process.exit(2);
}
const body = readFileSync(bodyFile);
const headers = JSON.parse(process.env.HEADERS_JSON ?? '{}') as Record<string, string>;

// Same logger level as the sealed server under bench (LOG_LEVEL=warn): both pay for a pino child per request.
const app = Fastify({ logger: { level: 'warn' } });
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/fhir/Patient/:id', async (_request, reply) => reply.headers(headers).send(body));

const stop = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await app.listen({ port, host: '127.0.0.1' });
