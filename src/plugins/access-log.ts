// One access line and one duration observation per request. No "incoming request" line: at a few
// thousand requests a second, log volume is a cost. CREDVEND_ACCESS_LOG=off silences all but the
// failures (5xx), which are always written, at error level, with the error's bounded fields
// (SDK errors and their causes are never logged as they are).
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from '../metrics/metrics.js';

/** What the error handler (src/plugins/errors.ts) notes of a 5xx, for the access line. */
export interface Failure {
  readonly problem: string;
  readonly err: { readonly name?: string; readonly code?: string; readonly kind?: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the error handler when the answer is a 5xx. */
    failure?: Failure;
  }
}

export interface AccessLogPluginOptions {
  readonly metrics: Metrics;
  /** CREDVEND_ACCESS_LOG */
  readonly level: 'off' | 'info' | 'debug';
}

const accessLogPlugin: FastifyPluginAsync<AccessLogPluginOptions> = async (app, { metrics, level }) => {
  app.decorateRequest('failure', undefined);
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    // The route template, never the raw URL (keys, profile names and random paths are unbounded).
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ route, method: request.method, status_code: String(reply.statusCode) }, seconds);
    const line = {
      method: request.method,
      route,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
    };
    if (request.failure) request.log.error({ ...line, ...request.failure }, 'request');
    else if (level !== 'off') request.log[level](line, 'request');
    done();
  });
};

export default fp(accessLogPlugin, { name: 'credvend-access-log', fastify: '5.x' });
