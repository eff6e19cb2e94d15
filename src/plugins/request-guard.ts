// What every request meets first: its `x-request-id`, a 503 once the service is closing, a 414
// for an over-long target; and while closing, `Connection: close` on every answer.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { ShuttingDown, UriTooLong } from '../errors.js';

// Longer request targets are refused (414) before routing; Node's own limit (16 KiB of request
// line and headers) answers 431 beyond that.
const MAX_URL_LENGTH = 8192;

const requestGuardPlugin: FastifyPluginAsync = async (app) => {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Our own 503 while closing (Fastify's return503OnClosing is off): problem+json with a CV_ code,
  // and audited on the credential routes, where Fastify's built-in answer would be neither.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (closing) done(new ShuttingDown());
    else if (request.url.length > MAX_URL_LENGTH) done(new UriTooLong());
    else done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Graceful drain: once close() starts, answers carry `Connection: close`, so a client's
    // keep-alive socket does not hold close() open until the grace period runs out
    // (fastify/fastify#7044).
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
};

export default fp(requestGuardPlugin, { name: 'credvend-request-guard', fastify: '5.x' });
