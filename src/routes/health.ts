// Liveness and readiness. /readyz stays 503 until the start-up checks have passed, while a
// condition for issuing fails (base credentials, audit log: named in `failing`), and while
// draining on shutdown, so no traffic reaches an instance that cannot serve it.
import type { FastifyPluginAsync } from 'fastify';
import type { Readiness } from '../readiness.js';

export function healthRoutes(readiness: Readiness): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', { schema: { security: [] } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { security: [] } }, async (_req, reply) => {
      const state = readiness.state();
      const failing = readiness.failing();
      const ready = state === 'ready' && failing.length === 0;
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready || state !== 'ready' ? state : 'degraded', ...(failing.length > 0 ? { failing } : {}) });
    });
  };
}
