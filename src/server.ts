// Entry point: the only module that reads the environment and listens. Loads and validates the
// configuration (all problems at once), wires the dependencies, runs the start-up checks, serves
// the API and the admin listener, and drains in-flight requests on SIGTERM.
import { readFileSync } from 'node:fs';
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { buildAdminApp, buildApp } from './app.js';
import { auditDestination, createAuditLog } from './audit/audit.js';
import { ConfigError, loadConfig } from './config/load.js';
import { createMetrics } from './metrics/metrics.js';
import { createReadiness } from './readiness.js';
import { runStartupChecks } from './startup.js';
import { createStsClient, createStsIssuer } from './sts/issuer.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<void> {
  const logger = pino({ level: process.env.CREDVEND_LOG_LEVEL ?? 'info', base: { service: 'credvend' }, timestamp: pino.stdTimeFunctions.isoTime });
  let config;
  try {
    config = loadConfig(process.env, (p) => readFileSync(p, 'utf8'));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`credvend: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (argv.includes('--check-config')) {
    process.stdout.write(`credvend: configuration OK (${config.issuers.length} issuer(s), ${config.profiles.size} profile(s))\n`);
    return;
  }

  const env = config.env;
  const region = env.CREDVEND_STS_REGION ?? env.AWS_REGION ?? 'us-east-1';
  const stsClient = createStsClient({
    region,
    endpoint: env.CREDVEND_STS_ENDPOINT,
    requestTimeoutMs: env.CREDVEND_STS_TIMEOUT_MS,
    connectTimeoutMs: env.CREDVEND_STS_CONNECT_TIMEOUT_MS,
    maxAttempts: env.CREDVEND_STS_MAX_ATTEMPTS,
  });
  const issuer = createStsIssuer(stsClient);
  const metrics = createMetrics({ version: VERSION });
  const readiness = createReadiness('starting', (s) => metrics.ready.set(s === 'ready' ? 1 : 0));
  const audit = createAuditLog(auditDestination(env.CREDVEND_AUDIT_LOG));

  // The admin listener comes up first so /readyz answers 503 while the checks run; the API
  // listens only once they pass, built from the checked (KMS-resolved) configuration.
  const admin = await buildAdminApp({ metrics, logger, readiness, withMetrics: !env.CREDVEND_METRICS_ON_API_PORT });
  await admin.listen({ host: env.CREDVEND_ADMIN_HOST, port: env.CREDVEND_ADMIN_PORT });
  let checked;
  try {
    checked = await runStartupChecks({ config, issuer, logger });
  } catch (err) {
    readiness.set('failed');
    process.stderr.write(`credvend: start-up checks failed: ${err instanceof Error ? err.message : 'unknown error'}\n`);
    await admin.close();
    process.exit(3);
  }
  const app = await buildApp({ config: checked.config, issuer, audit, metrics, logger, readiness, now: Date.now });

  closeWithGrace({ delay: env.CREDVEND_SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) logger.error({ err: { name: err.name } }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down: draining in-flight requests');
    readiness.set('draining');
    await app.close(); // stops accepting, waits for in-flight requests
    await admin.close();
    stsClient.destroy();
  });
  await app.listen({ host: env.CREDVEND_HOST, port: env.CREDVEND_PORT });
  readiness.set('ready');
  logger.info({ version: VERSION, profiles: config.profiles.size }, 'credvend ready');
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`credvend: fatal: ${err instanceof Error ? err.message : 'unknown error'}\n`);
  process.exit(1);
});
