// Entry point: the only module that reads the environment and listens. Loads and validates the
// configuration (all problems at once), wires the dependencies, runs the start-up checks, serves
// the API and the admin listener, and drains in-flight requests on SIGTERM.
//
// Exit codes: 2 = invalid configuration, 3 = start-up checks failed (service identity, KMS keys),
// 1 = anything else. Each failure prints every problem found, not the first.
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import closeWithGrace from 'close-with-grace';
import { Redis } from 'ioredis';
import pino from 'pino';
import { buildAdminApp, buildApp } from './app.js';
import { createAuditLog } from './audit/audit.js';
import { fileSink } from './audit/sink.js';
import { ConfigError, loadConfig } from './config/load.js';
import { createKmsDescriber, kmsClientFactory } from './kms/resolve.js';
import { createMetrics } from './metrics/metrics.js';
import { createReadiness } from './readiness.js';
import { runStartupChecks } from './startup.js';
import { createBaseCredentials, defaultCredentialChain } from './sts/base-credentials.js';
import { gateSts } from './sts/gate.js';
import { createStsClient } from './sts/http-client.js';
import { createSts } from './sts/sts.js';
import { ShuttingDown } from './errors.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

async function main(argv: string[]): Promise<void> {
  // Every variable is validated before anything is built from one (the logger included: pino
  // would throw on a bad level and hide every other problem). The default reader caps the file
  // size before reading it.
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // No process.exit(): on a pipe, stderr is asynchronous and exit() would cut the list
      // mid-line. Nothing else is running yet, so the process ends once the write has drained.
      process.stderr.write(`credvend: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  // Offline on purpose: it validates the environment and profiles file (ARNs included) without
  // AWS credentials or network, so it runs in CI and before a deploy. The AWS checks (service
  // identity, KMS keys) run at every start, where the real credentials are.
  if (argv.includes('--check-config')) {
    process.stdout.write(
      `credvend: configuration OK (${config.issuers.length} issuer(s), ${config.profiles.size} profile(s))\n`,
    );
    return;
  }
  // Asynchronous stdout, flushed at exit. Access lines reach it in batches (ACCESS_LOG_BATCHING:
  // one write syscall per batch, not per line, on the hot path); the other lines are few and go
  // out at once. Audit records never take this path (src/audit/sink.ts).
  const logger = pino(
    { level: config.env.CREDVEND_LOG_LEVEL, base: { service: 'credvend' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  );

  const env = config.env;
  const region = env.CREDVEND_STS_REGION ?? env.AWS_REGION ?? 'us-east-1';
  const metrics = createMetrics({ version: VERSION });
  const baseTimeoutMs = env.CREDVEND_BASE_CREDENTIALS_TIMEOUT_MS;
  const baseCredentials = createBaseCredentials({
    source: defaultCredentialChain({
      region,
      stsEndpoint: env.CREDVEND_STS_ENDPOINT,
      timeoutMs: baseTimeoutMs,
      maxResponseBytes: env.CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES,
    }),
    metrics,
    logger,
    timeoutMs: baseTimeoutMs,
  });
  const timeouts = {
    requestTimeoutMs: env.CREDVEND_STS_TIMEOUT_MS,
    connectTimeoutMs: env.CREDVEND_STS_CONNECT_TIMEOUT_MS,
    maxAttempts: env.CREDVEND_STS_MAX_ATTEMPTS,
  };
  const stsClient = createStsClient({
    region,
    endpoint: env.CREDVEND_STS_ENDPOINT,
    credentials: baseCredentials.provider,
    ...timeouts,
    // Exactly as many sockets as admitted calls (the gate below): no call queues for a socket.
    maxSockets: env.CREDVEND_STS_MAX_IN_FLIGHT,
    maxResponseBytes: env.CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES,
  });
  // Admission control in front of STS (src/sts/gate.ts): at most as many calls as sockets.
  const sts = gateSts(createSts(stsClient), {
    maxInFlight: env.CREDVEND_STS_MAX_IN_FLIGHT,
    maxQueue: env.CREDVEND_STS_MAX_QUEUE,
    queueTimeoutMs: env.CREDVEND_STS_QUEUE_TIMEOUT_MS,
    metrics,
  });
  const readiness = createReadiness('starting', (s) => metrics.ready.set(s === 'ready' ? 1 : 0));
  // An audit log that cannot be written is a configuration error, found now rather than as a
  // crash on the first decision.
  const auditProblem = checkAuditPath(env.CREDVEND_AUDIT_LOG);
  if (auditProblem) {
    process.stderr.write(`credvend: invalid configuration (1 problem):\n  - env.CREDVEND_AUDIT_LOG: ${auditProblem}\n`);
    process.exit(2);
  }
  const audit = createAuditLog(fileSink(env.CREDVEND_AUDIT_LOG), { metrics });
  readiness.addCheck('audit_log', () => audit.writable());
  readiness.addCheck('base_credentials', () => baseCredentials.canSign());

  // The admin listener comes up first so /readyz answers 503 while the checks run; the API
  // listens only once they pass, built from the checked (KMS-resolved) configuration.
  const admin = await buildAdminApp({ metrics, logger, readiness, withMetrics: !env.CREDVEND_METRICS_ON_API_PORT });
  await admin.listen({ host: env.CREDVEND_ADMIN_HOST, port: env.CREDVEND_ADMIN_PORT });
  const kms = createKmsDescriber(
    kmsClientFactory({
      endpoint: env.CREDVEND_KMS_ENDPOINT,
      credentials: baseCredentials.provider,
      ...timeouts,
      maxResponseBytes: env.CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES,
    }),
  );
  let checked;
  try {
    checked = await runStartupChecks({ config, sts, baseCredentials, kms, logger });
  } catch (err) {
    readiness.set('failed');
    process.stderr.write(`credvend: start-up checks failed: ${err instanceof Error ? err.message : 'unknown error'}\n`);
    await admin.close();
    // The warnings above, too (flush throws while the stream is still opening: nothing to flush).
    await new Promise<void>((resolve) => {
      try {
        logger.flush(() => resolve());
      } catch {
        resolve();
      }
    });
    process.exit(3);
  } finally {
    kms.close(); // KMS is used at start-up only
  }
  const rateLimitRedis = env.CREDVEND_RATE_LIMIT_REDIS_URL
    ? new Redis(env.CREDVEND_RATE_LIMIT_REDIS_URL, {
        connectTimeout: 1000,
        // A frozen Redis (accepting, never answering) must not hold requests: past this the
        // command fails and the rate limit lets the request through (skipOnError in app.ts).
        commandTimeout: env.CREDVEND_REDIS_COMMAND_TIMEOUT_MS,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        lazyConnect: false,
      })
    : undefined;
  rateLimitRedis?.on('error', (err: Error) =>
    logger.warn({ err: { name: err.name } }, 'rate-limit Redis unavailable; requests are not rate limited meanwhile'),
  );
  const app = await buildApp({
    config: checked.config,
    sts,
    audit,
    metrics,
    logger,
    accessLogBatching: ACCESS_LOG_BATCHING,
    readiness,
    now: Date.now,
    ...(rateLimitRedis ? { rateLimitRedis } : {}),
  });

  // Keep the base credentials (and their expiry metric) fresh on an idle instance too, and let an
  // instance that lost them (readiness 503, no traffic) recover by itself.
  baseCredentials.start();
  const grace = env.CREDVEND_SHUTDOWN_GRACE_MS;
  closeWithGrace({ delay: grace }, async ({ signal, err }) => {
    if (err) logger.error({ err: { name: err.name } }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down: draining in-flight requests');
    readiness.set('draining');
    baseCredentials.stop();
    // Before close-with-grace's hard exit at `grace`, whoever still waits on an upstream gets
    // its answer: 503 CV_SHUTTING_DOWN, audited, instead of a dropped socket.
    const deadline = setTimeout(
      () => app.abortDecisions(new ShuttingDown()),
      Math.max(0, grace - Math.min(1000, grace / 4)),
    );
    deadline.unref();
    await app.close(); // stops accepting, waits for in-flight requests
    clearTimeout(deadline);
    await admin.close();
    rateLimitRedis?.disconnect();
    stsClient.destroy();
    await audit.close();
  });
  await app.listen({ host: env.CREDVEND_HOST, port: env.CREDVEND_PORT });
  readiness.set('ready');
  logger.info({ version: VERSION, profiles: config.profiles.size }, 'credvend ready');
  logger.flush(); // supervisors and tests wait for this line
}

// A few dozen access lines per write; a line waits at most 200 ms (flushed when the app closes).
const ACCESS_LOG_BATCHING = { bytes: 8192, ms: 200 };

function checkAuditPath(spec: string): string | undefined {
  if (spec === 'stdout') return undefined;
  try {
    mkdirSync(dirname(spec), { recursive: true });
    closeSync(openSync(spec, 'a'));
    return undefined;
  } catch (err) {
    return `cannot open ${spec} for appending (${(err as { code?: string }).code ?? 'error'})`;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`credvend: fatal: ${err instanceof Error ? err.message : 'unknown error'}\n`);
  process.exit(1);
});
