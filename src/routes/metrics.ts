import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';

export function metricsRoute(metrics: Metrics): FastifyPluginAsync {
  return async (app) => {
    app.get('/metrics', async (_req, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  };
}
