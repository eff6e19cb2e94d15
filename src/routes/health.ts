// Liveness and readiness. /readyz stays 503 until the start-up checks have passed, and again
// while draining on shutdown, so no traffic reaches an instance that cannot serve it.
import type { FastifyPluginAsync } from 'fastify';
import type { Readiness } from '../readiness.js';

export function healthRoutes(readiness: Readiness): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { schema: { security: [] } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { security: [] } }, async (_req, reply) => {
      const state = readiness.state();
      return reply.code(state === 'ready' ? 200 : 503).send({ status: state });
    });
  };
}
