// Per-caller rate limit: after authentication, so the budget belongs to a verified subject (an
// unauthenticated request is counted by address). Shared by all replicas through Redis when one
// is configured, in memory otherwise.
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';

export interface RateLimitPluginOptions {
  readonly max: number;
  /** A @fastify/rate-limit time window: milliseconds or a duration such as '1 minute'. */
  readonly timeWindow: number | string;
  readonly redis?: Redis | undefined;
}

const rateLimitPlugin: FastifyPluginAsync<RateLimitPluginOptions> = async (app, opts) => {
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler', // after authentication, so the budget is per verified subject
    max: opts.max,
    timeWindow: opts.timeWindow,
    keyGenerator: (req: FastifyRequest) =>
      req.caller ? `sub:${req.caller.issuer}|${req.caller.subject}` : `ip:${req.ip}`,
    ...(opts.redis
      ? {
          redis: opts.redis,
          nameSpace: 'credvend-rl:',
          // The limit protects STS and the service from abuse; it is not what scopes a grant. A
          // Redis outage lets requests through (and is logged) rather than stopping issuance.
          skipOnError: true,
        }
      : {}),
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      code: 'CV_RATE_LIMITED',
      message: `rate limit exceeded; retry after ${ctx.after}`,
    }),
  });
};

export default fp(rateLimitPlugin, { name: 'credvend-rate-limit', fastify: '5.x', dependencies: ['credvend-auth'] });
