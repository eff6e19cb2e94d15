// Start-up checks: the service serves only once it is safe to. Every problem is collected and
// reported together; /readyz stays 503 until this has passed.
//
// Threat model for the service's own identity: credvend holds the right to assume every
// profile's role, so its own credentials are the crown jewels. They must be short-lived and tied
// to the running task or pod (ECS task role, EKS IRSA / Pod Identity), never an IAM user's
// access key, which keeps working wherever it leaks to, long after the task is gone.
import type { Logger } from 'pino';
import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import { resolveKmsKeys, type KeyDescriber } from './kms/resolve.js';
import type { BaseCredentials } from './sts/base-credentials.js';
import type { ServiceIdentity, Sts } from './sts/sts.js';
import { errorCodeOrName } from './error-name.js';

export interface StartupDeps {
  readonly config: Config;
  readonly sts: Sts;
  readonly baseCredentials: BaseCredentials;
  readonly kms: KeyDescriber;
  readonly logger: Logger;
}

export interface StartupResult {
  /** The configuration with every profile's KMS key resolved to its ARN. */
  readonly config: Config;
  readonly serviceIdentity?: ServiceIdentity;
}

export interface ServiceIdentityFacts {
  readonly accessKeyId?: string | undefined;
  /** False for static keys (no expiration), true for temporary credentials. */
  readonly expires?: boolean | undefined;
  readonly identityArn?: string | undefined;
}

export interface ServiceIdentityRules {
  readonly allowIamUserKeys: boolean;
  readonly s3Compatible: boolean;
}

export interface Findings {
  readonly problems: string[];
  readonly warnings: string[];
}

/** Pure: what the service's own credentials and identity say about how it runs. */
export function serviceIdentityFindings(facts: ServiceIdentityFacts, rules: ServiceIdentityRules): Findings {
  const problems: string[] = [];
  const warnings: string[] = [];
  const arn = facts.identityArn ?? '';
  // AKIA = an IAM user's (or the root user's) long-lived key. A `:user/` identity also catches
  // ASIA session keys minted by GetSessionToken from such a key: they only look temporary.
  const reasons = [
    ...(facts.accessKeyId?.startsWith('AKIA') ? ['a long-lived AKIA… access key'] : []),
    ...(arn.includes(':user/') || arn.endsWith(':root') ? [`identity ${arn}`] : []),
  ];
  if (rules.s3Compatible) {
    // S3-compatible servers (Ceph RGW) have no task roles, web identity or instance metadata:
    // the service can only run on a static user key there, so refusing it would make the mode
    // unusable. Accepted loudly; the exposure is that cluster's users, not an AWS account.
    if (reasons.length > 0 || facts.expires === false) {
      warnings.push('S3-compatible mode: running on static user keys; keep them out of images and rotate them');
    }
    // Measured on Ceph RGW 16.2: its session tokens are AES-CBC without integrity, and an edited
    // token can be accepted WITHOUT its session policy. There the role's own policy is the real
    // limit on a credential holder: say so at every start.
    warnings.push(
      "S3-compatible mode: the server may not protect session tokens against tampering (Ceph RGW 16: an edited token can drop the session policy); keep each profile role's own policy as narrow as the profile",
    );
  } else if (reasons.length > 0) {
    const what = `the service runs on IAM user credentials (${reasons.join(', ')})`;
    if (rules.allowIamUserKeys) {
      warnings.push(
        `${what}, allowed by CREDVEND_ALLOW_IAM_USER_KEYS=true: a leaked key keeps working until someone revokes it; use a task or pod role`,
      );
    } else {
      problems.push(
        `${what}: refused, a leaked key would keep working after the task is gone. Run as an ECS task role or EKS IRSA / Pod Identity role, or set CREDVEND_ALLOW_IAM_USER_KEYS=true to accept the risk`,
      );
    }
  }
  return { problems, warnings };
}

export async function runStartupChecks({
  config,
  sts,
  baseCredentials,
  kms,
  logger,
}: StartupDeps): Promise<StartupResult> {
  const env = config.env;
  const problems: string[] = [];
  for (const i of config.issuers) {
    if (i.hmacSecret) {
      logger.warn(
        { issuer: i.issuer },
        'HMAC-signed tokens are accepted for this issuer: for local development only, never in production',
      );
    }
  }

  let haveCredentials = true;
  try {
    await baseCredentials.provider();
  } catch (err) {
    haveCredentials = false;
    problems.push(
      `no AWS credentials (${errorName(err)}): expected an ECS task role, EKS IRSA / Pod Identity or instance metadata`,
    );
  }

  let serviceIdentity: ServiceIdentity | undefined;
  if (haveCredentials) {
    try {
      serviceIdentity = await sts.serviceIdentity();
      logger.info(
        {
          account: serviceIdentity.account,
          arn: serviceIdentity.arn,
          temporaryCredentials: baseCredentials.lastExpires(),
        },
        'running as this AWS identity',
      );
    } catch (err) {
      if (env.CREDVEND_S3_COMPATIBLE) {
        // Ceph RGW answers GetCallerIdentity with 405: not a sign of bad credentials there.
        logger.warn('sts:GetCallerIdentity is not available on this S3-compatible STS server; identity not checked');
      } else {
        problems.push(`sts:GetCallerIdentity failed (${errorName(err)}): the service's AWS credentials are not usable`);
      }
    }
  }

  const findings = serviceIdentityFindings(
    {
      accessKeyId: baseCredentials.lastAccessKeyId(),
      expires: baseCredentials.lastExpires(),
      identityArn: serviceIdentity?.arn,
    },
    { allowIamUserKeys: env.CREDVEND_ALLOW_IAM_USER_KEYS, s3Compatible: env.CREDVEND_S3_COMPATIBLE },
  );
  for (const w of findings.warnings) logger.warn(w);
  problems.push(...findings.problems);

  // KMS keys are resolved in S3-compatible mode too: such servers have no KMS API, so a profile
  // there must not name a kmsKeyId (or CREDVEND_KMS_ENDPOINT must point at one that answers).
  let checked = config;
  const withKeys = [...config.profiles.values()].filter((p) => p.kmsKeyId).map((p) => p.name);
  if (!haveCredentials && withKeys.length > 0) {
    problems.push(`KMS keys of profiles ${withKeys.join(', ')} not checked: no AWS credentials`);
  } else if (withKeys.length > 0) {
    try {
      checked = await resolveKmsKeys(config, kms);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return { config: checked, ...(serviceIdentity ? { serviceIdentity } : {}) };
}

/** A bounded name for an error (and its cause's): our own codes or SDK error names, never a message. */
function errorName(err: unknown): string {
  const cause = errorCodeOrName((err as { cause?: unknown } | null)?.cause);
  const name = errorCodeOrName(err) ?? 'error';
  return cause ? `${name}: ${cause}` : name;
}
