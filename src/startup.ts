// Start-up checks: the service serves only once it is safe to. Every problem is collected and
// reported together; /readyz stays 503 until this has passed.
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import type { CredentialIssuer } from './sts/issuer.js';

export interface StartupDeps {
  readonly config: Config;
  readonly issuer: CredentialIssuer;
  readonly logger: Logger;
}

export interface StartupResult {
  readonly config: Config;
}

export async function runStartupChecks({ config, issuer, logger }: StartupDeps): Promise<StartupResult> {
  const problems: string[] = [];
  for (const i of config.issuers) {
    if (i.hmacSecret) {
      logger.warn({ issuer: i.issuer }, 'HMAC-signed tokens are accepted for this issuer: for local development only, never in production');
    }
  }
  try {
    const me = await issuer.callerIdentity();
    logger.info({ account: me.account, arn: me.arn }, 'running as this AWS principal');
  } catch (err) {
    if (config.env.CREDVEND_S3_COMPATIBLE) {
      logger.warn('sts:GetCallerIdentity is not available on this S3-compatible STS server; principal not checked');
    } else {
      problems.push(`sts:GetCallerIdentity failed (${(err as { code?: string }).code ?? 'error'}): the service has no usable AWS credentials`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { config };
}
