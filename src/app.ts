// buildApp(deps): the whole HTTP service, a list of named plugins (src/plugins/) and the routes.
// Nothing global: tests build as many apps as they like and drive them with inject().
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { LineBatching } from './log-lines.js';
import { SECRET_FIELDS, type AuditLog } from './audit/audit.js';
import type { Config } from './config/load.js';
import { clientErrorResponse } from './errors.js';
import type { Metrics } from './metrics/metrics.js';
import accessLogPlugin from './plugins/access-log.js';
import authPlugin from './plugins/auth.js';
import corsPlugin from './plugins/cors.js';
import decisionPlugin from './plugins/decision.js';
import errorsPlugin from './plugins/errors.js';
import rateLimitPlugin from './plugins/rate-limit.js';
import requestGuardPlugin from './plugins/request-guard.js';
import securityHeadersPlugin from './plugins/security-headers.js';
import { createPresignedVendor } from './presigned.js';
import type { Readiness } from './readiness.js';
import { containerCredentialsRoute } from './routes/container-credentials.js';
import { credentialsRoute } from './routes/credentials.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoute } from './routes/metrics.js';
import { presignedRoute } from './routes/presigned.js';
import { profilesRoute } from './routes/profiles.js';
import { createUrlSigner, type UrlSigner } from './s3/presign.js';
import { createGrantReuse, type GrantReuse } from './sts/reuse.js';
import type { Sts } from './sts/sts.js';
import { createVendor } from './vend.js';

export interface AppDeps {
  readonly config: Config;
  readonly sts: Sts;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Access lines gathered into batches (src/log-lines.ts); each written at once without it. */
  readonly accessLogBatching?: LineBatching;
  readonly readiness: Readiness;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now: () => number;
  /** Redis client (ioredis) for a rate-limit budget shared by all replicas; memory when absent. */
  readonly rateLimitRedis?: Redis;
  /** Grant reuse cache (src/sts/reuse.ts); a new one when not given. Cleared on close. */
  readonly grants?: GrantReuse;
  /** Signs presigned URLs and forms (local, no network); from CREDVEND_S3_* when absent. */
  readonly urlSigner?: UrlSigner;
  /** Test hook: minimum time between JWKS refreshes for unknown kids. */
  readonly jwksRefreshCooldownMs?: number;
}

/** The API's version in the OpenAPI document (the contract, not the build). */
export const OPENAPI_VERSION = '1.0.0';

// Fields that must never be logged: the audit log's secret field names (one list, in
// src/audit/audit.ts), at the top of a log call and under `err`, and the Authorization header.
// Explicit paths: `*.x` wildcards cost more per log line than the line itself, and no log call
// here nests deeper than these.
const LOG_REDACT = [
  'req.headers.authorization',
  'headers.authorization',
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `err.${f}`),
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
    // Our own 503 while closing (src/plugins/request-guard.ts).
    return503OnClosing: false,
    clientErrorHandler: (err, socket) => {
      if (socket.writable) socket.end(clientErrorResponse(err, randomUUID()));
      else socket.destroy();
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // Response schemas document the API (OpenAPI); answers are built by our own code, so they are
  // serialized as they are rather than re-validated on every request.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  // The plugins, in hook order (each one's hooks run before the next one's).
  await app.register(decisionPlugin, { audit, metrics, config });
  await app.register(swagger, OPENAPI_OPTIONS);
  await app.register(securityHeadersPlugin);
  await app.register(corsPlugin, { origins: env.CREDVEND_CORS_ORIGINS });
  await app.register(authPlugin, {
    readiness: deps.readiness,
    issuers: config.issuers,
    clockSkewSeconds: env.CREDVEND_CLOCK_SKEW_SECONDS,
    jwksTimeoutMs: env.CREDVEND_JWKS_TIMEOUT_MS,
    maxResponseBytes: env.CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES,
    now: deps.now,
    ...(deps.jwksRefreshCooldownMs !== undefined ? { jwksRefreshCooldownMs: deps.jwksRefreshCooldownMs } : {}),
  });
  if (env.CREDVEND_RATE_LIMIT_MAX > 0)
    await app.register(rateLimitPlugin, {
      max: env.CREDVEND_RATE_LIMIT_MAX,
      timeWindow: env.CREDVEND_RATE_LIMIT_WINDOW,
      redis: deps.rateLimitRedis,
    });
  await app.register(requestGuardPlugin);
  await app.register(accessLogPlugin, {
    metrics,
    level: env.CREDVEND_ACCESS_LOG,
    logger: deps.logger,
    batching: deps.accessLogBatching,
  });
  await app.register(errorsPlugin);

  // Issuance. Reused credentials and signing sessions are secrets held in memory: none outlives
  // the app (close, shutdown).
  const grants = deps.grants ?? createGrantReuse({ now: deps.now });
  app.addHook('onClose', async () => grants.clear());
  const vendor = createVendor({ config, sts: deps.sts, metrics, now: deps.now, grants });
  const urlSigner =
    deps.urlSigner ??
    createUrlSigner({ endpoint: env.CREDVEND_S3_ENDPOINT, forcePathStyle: env.CREDVEND_S3_FORCE_PATH_STYLE });
  const presigner = createPresignedVendor({ config, sts: deps.sts, signer: urlSigner, metrics, now: deps.now });
  app.addHook('onClose', async () => presigner.close());

  const routeDeps = { config, vendor, presigner };
  await app.register(credentialsRoute(routeDeps));
  await app.register(presignedRoute(routeDeps));
  await app.register(containerCredentialsRoute(routeDeps));
  await app.register(profilesRoute(routeDeps));
  await app.register(healthRoutes(deps.readiness));
  if (env.CREDVEND_METRICS_ON_API_PORT) await app.register(metricsRoute(metrics));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

const OPENAPI_OPTIONS = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'credvend',
      version: OPENAPI_VERSION,
      description: 'Short-lived AWS credentials scoped to exactly the S3 objects a caller may upload or download.',
    },
    components: { securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer', bearerFormat: 'JWT' } } },
    security: [{ bearer: [] }],
  },
  transform: jsonSchemaTransform,
};

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
