// buildApp(deps): the whole HTTP service, assembled in one place. Nothing global: tests build as
// many apps as they like and drive them with inject().
import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { AuditLog } from './audit/audit.js';
import { createAuthenticator } from './auth/authenticate.js';
import type { Config } from './config/load.js';
import { registerSecurityHeaders } from './security-headers.js';
import {
  clientErrorResponse,
  MethodNotAllowed,
  NotReady,
  problemBody,
  ShuttingDown,
  toProblem,
  UriTooLong,
} from './errors.js';
import type { Metrics } from './metrics/metrics.js';
import type { Caller } from './policy/caller.js';
import type { Readiness } from './readiness.js';
import decisionPlugin from './plugins/decision.js';
import { containerCredentialsRoute } from './routes/container-credentials.js';
import { credentialsRoute } from './routes/credentials.js';
import { presignedRoute } from './routes/presigned.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoute } from './routes/metrics.js';
import { profilesRoute } from './routes/profiles.js';
import type { Sts } from './sts/sts.js';
import { createGrantReuse, type GrantReuse } from './sts/reuse.js';
import { createPresignedVendor } from './presigned.js';
import { createUrlSigner, type UrlSigner } from './s3/presign.js';
import { createVendor } from './vend.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyContextConfig {
    /** The route accepts a bare token in Authorization (AWS container-credentials clients). */
    rawTokenAuth?: boolean;
  }
}

export interface AppDeps {
  readonly config: Config;
  readonly sts: Sts;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly readiness: Readiness;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now: () => number;
  /** Redis client (ioredis) for a rate-limit budget shared by all replicas; memory when absent. */
  readonly rateLimitRedis?: unknown;
  /** Grant reuse cache (src/sts/reuse.ts); a new one when not given. Cleared on close. */
  readonly grants?: GrantReuse;
  /** Signs presigned URLs and forms (local, no network); from CREDVEND_S3_* when absent. */
  readonly urlSigner?: UrlSigner;
  /** Test hook: minimum time between JWKS refreshes for unknown kids. */
  readonly jwksRefreshCooldownMs?: number;
}

// Longer request targets are refused (414) before routing; Node's own limit (16 KiB of request
// line and headers) answers 431 beyond that.
const MAX_URL_LENGTH = 8192;

/** The API's version in the OpenAPI document (the contract, not the build). */
export const OPENAPI_VERSION = '1.0.0';

// Fields that must never be logged. Explicit paths: `*.x` wildcards cost more per log line than
// the line itself, and no log call here nests deeper than these.
const LOG_REDACT = [
  'req.headers.authorization',
  'headers.authorization',
  'secretAccessKey',
  'sessionToken',
  'err.secretAccessKey',
  'err.sessionToken',
];

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, metrics, audit } = deps;
  const env = config.env;
  const app = Fastify({
    // The assertion widens Fastify's logger generic to the FastifyBaseLogger every plugin's types
    // expect; without it the instance's type is not assignable to them.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({}, { redact: LOG_REDACT }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    bodyLimit: env.CREDVEND_BODY_LIMIT_BYTES,
    trustProxy: parseTrustProxy(env.CREDVEND_TRUST_PROXY),
    // Our own 503 while closing (below): problem+json with a CV_ code, and audited on the
    // credential routes, where Fastify's built-in answer would be neither.
    return503OnClosing: false,
    clientErrorHandler: (err, socket) => {
      if (socket.writable) socket.end(clientErrorResponse(err, randomUUID()));
      else socket.destroy();
    },
  }).withTypeProvider<ZodTypeProvider>();
  await app.register(decisionPlugin, { audit, metrics, config });
  app.setValidatorCompiler(validatorCompiler);
  // Response schemas document the API (OpenAPI); answers are built by our own code, so they are
  // serialized as they are rather than re-validated on every request.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'credvend',
        version: OPENAPI_VERSION,
        description: 'Short-lived AWS credentials scoped to exactly the S3 objects a caller may upload or download.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  // A JSON API: no document may load anything, so CSP is only default-src/frame-ancestors 'none'.
  registerSecurityHeaders(app, {
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  });
  const origins = env.CREDVEND_CORS_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  await app.register(cors, {
    origin: origins.length > 0 ? origins : false,
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  });
  if (env.CREDVEND_RATE_LIMIT_MAX > 0) {
    await app.register(rateLimit, {
      global: false,
      hook: 'preHandler', // after authentication, so the budget is per verified subject
      max: env.CREDVEND_RATE_LIMIT_MAX,
      timeWindow: env.CREDVEND_RATE_LIMIT_WINDOW,
      keyGenerator: (req: FastifyRequest) =>
        req.caller ? `sub:${req.caller.issuer}|${req.caller.subject}` : `ip:${req.ip}`,
      ...(deps.rateLimitRedis
        ? {
            redis: deps.rateLimitRedis,
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
  }

  const authenticate = createAuthenticator(app, {
    issuers: config.issuers,
    clockSkewSeconds: env.CREDVEND_CLOCK_SKEW_SECONDS,
    jwksTimeoutMs: env.CREDVEND_JWKS_TIMEOUT_MS,
    maxResponseBytes: env.CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES,
    now: deps.now,
    ...(deps.jwksRefreshCooldownMs !== undefined ? { jwksRefreshCooldownMs: deps.jwksRefreshCooldownMs } : {}),
  });
  // Reused credentials are secrets held in memory: none outlives the app (close, shutdown).
  const grants = deps.grants ?? createGrantReuse({ now: deps.now });
  app.addHook('onClose', async () => grants.clear());
  const vendor = createVendor({ config, sts: deps.sts, metrics, now: deps.now, grants });
  const urlSigner =
    deps.urlSigner ??
    createUrlSigner({ endpoint: env.CREDVEND_S3_ENDPOINT, forcePathStyle: env.CREDVEND_S3_FORCE_PATH_STYLE });
  const presigner = createPresignedVendor({ config, sts: deps.sts, signer: urlSigner, metrics, now: deps.now });
  // Signing sessions are secrets held in memory too.
  app.addHook('onClose', async () => presigner.close());

  const authenticateHook = async (request: FastifyRequest) => {
    if (deps.readiness.state() !== 'ready') throw new NotReady();
    request.caller = await authenticate(request);
  };

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
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
  // Requests whose error was a 5xx: their one access line is written at error level, with the
  // error's own bounded fields (SDK errors and their causes are not logged as they are).
  const failures = new WeakMap<
    FastifyRequest,
    { problem: string; err: { name?: string; code?: string; kind?: string } }
  >();
  const accessLevel = env.CREDVEND_ACCESS_LOG;
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    // The route template, never the raw URL (keys, profile names and random paths are unbounded).
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ route, method: request.method, status_code: String(reply.statusCode) }, seconds);
    // One line per request at most, and no "incoming request" line: at a few thousand requests a
    // second, log volume is a cost. CREDVEND_ACCESS_LOG=off silences all but the failures.
    const line = {
      method: request.method,
      route,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
    };
    const failure = failures.get(request);
    if (failure) request.log.error({ ...line, ...failure }, 'request');
    else if (accessLevel !== 'off') request.log[accessLevel](line, 'request');
    done();
  });

  app.setErrorHandler((err, request, reply) => {
    const p = toProblem(err);
    request.reportProblem(p, err);
    if (p.status >= 500) {
      const e = err as { name?: string; code?: string; kind?: string };
      failures.set(request, {
        problem: p.code,
        err: {
          ...(e.name ? { name: e.name } : {}),
          ...(e.code ? { code: e.code } : {}),
          ...(e.kind ? { kind: e.kind } : {}),
        },
      });
    }
    void reply
      .code(p.status)
      .headers(p.headers ?? {})
      .type('application/problem+json')
      .send(problemBody(p, request.id));
  });
  // A known path with another method is a 405 naming the allowed ones; anything else a 404.
  const routes: { pattern: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const pattern = new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}$`);
    for (const method of [r.method].flat()) routes.push({ pattern, method });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      throw new MethodNotAllowed(request.method.slice(0, 16), allowed.join(', '));
    }
    void reply
      .code(404)
      .type('application/problem+json')
      .send(
        problemBody({ status: 404, code: 'CV_NOT_FOUND', title: 'Not found', detail: 'no such route' }, request.id),
      );
  });

  const routeDeps = { config, vendor, presigner, authenticateHook };
  await app.register(credentialsRoute(routeDeps));
  await app.register(presignedRoute(routeDeps));
  await app.register(containerCredentialsRoute(routeDeps));
  await app.register(profilesRoute(routeDeps));
  await app.register(healthRoutes(deps.readiness));
  if (env.CREDVEND_METRICS_ON_API_PORT) await app.register(metricsRoute(metrics));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** The admin listener: /metrics (and health) apart from the API, so it is not exposed with it. */
export async function buildAdminApp(
  deps: Pick<AppDeps, 'metrics' | 'logger' | 'readiness'> & { withMetrics: boolean },
): Promise<FastifyInstance> {
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- as in buildApp
    loggerInstance: deps.logger.child({ listener: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  if (deps.withMetrics) await app.register(metricsRoute(deps.metrics));
  await app.register(healthRoutes(deps.readiness));
  return app;
}

/** 'true', 'false', or a comma-separated list of trusted proxy addresses/CIDRs. */
function parseTrustProxy(v: string): boolean | string {
  if (v === 'true') return true;
  if (v === 'false' || v === '') return false;
  return v;
}
