// One access line and one duration observation per request. No "incoming request" line: at a few
// thousand requests a second, log volume is a cost. CREDVEND_ACCESS_LOG=off silences all but the
// failures (5xx), which are always written, at error level, with the error's bounded fields
// (SDK errors and their causes are never logged as they are).
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { lineWriter, type LineBatching } from '../log-lines.js';
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
  /**
   * Where the access lines of answered requests go: the service's logger, through lineWriter
   * (src/log-lines.ts), not the request logger and its redaction. Those lines have fixed fields
   * (reqId, method, route template, status, ms, ip) and none can hold a secret. Failure lines,
   * which carry an error's fields, still go through `request.log` and its redaction, at once.
   */
  readonly logger: Logger;
  /** Access lines gathered into one destination write (server.ts); without it, each at once. */
  readonly batching?: LineBatching | undefined;
  /** CREDVEND_ACCESS_LOG */
  readonly level: 'off' | 'info' | 'debug';
}

const accessLogPlugin: FastifyPluginAsync<AccessLogPluginOptions> = async (
  app,
  { metrics, level, logger, batching },
) => {
  app.decorateRequest('failure', undefined);
  const lines = lineWriter(logger, batching);
  app.addHook('onClose', async () => lines.flush());
  app.addHook('onResponse', (request, reply, done) => {
    // The route template, never the raw URL (keys, profile names and random paths are unbounded).
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    const status = reply.statusCode;
    metrics.httpDuration.observe({ route, method, status_code: String(status) }, reply.elapsedTime / 1000);
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    const ip = request.ip;
    // Object literals, not a spread of one: V8 copies a spread of a fresh object slowly.
    if (request.failure) request.log.error({ method, route, status, ms, ip, ...request.failure }, 'request');
    else if (level !== 'off') lines.write(level, { reqId: request.id, method, route, status, ms, ip }, 'request');
    done();
  });
};

export default fp(accessLogPlugin, { name: 'credvend-access-log', fastify: '5.x' });
