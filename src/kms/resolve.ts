// KMS key resolution at start-up; the one module that imports @aws-sdk/client-kms.
//
// Threat model: the session policy grants kms:GenerateDataKey/kms:Decrypt on exactly one key ARN.
// An alias left unresolved, or a key that is disabled, pending deletion, asymmetric, for signing,
// or in another region than the bucket, would make every upload fail at S3 with a confusing
// AccessDenied — or, with an alias re-pointed later, grant use of a key nobody reviewed. So every
// profile's key is resolved once, here, to the ARN of a usable key, and anything else stops the
// service before it serves. Every problem is collected, not just the first.
import { DEFAULT_MAX_RESPONSE_BYTES } from '../limits.js';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { parseKmsArn } from '../arn.js';
import {
  createHttpHandler,
  FALLBACK_DEADLINE_MS,
  networkErrorCode,
  upstreamDeadlineMs,
  withDeadline,
} from '../aws/http-handler.js';
import { ConfigError, withProfiles, type Config, type Profile } from '../config/load.js';
import { boundedName } from '../error-name.js';

/** What DescribeKey told us about a key: only the fields the checks below need. */
export interface KeyFacts {
  readonly arn: string;
  readonly keyState: string;
  readonly keySpec: string;
  readonly keyUsage: string;
}

/** The subset of KMS we use, so tests fake it or mock the client. */
export interface KeyDescriber {
  describe(keyId: string, region: string): Promise<KeyFacts>;
}

export class KeyDescribeError extends Error {
  constructor(
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`DescribeKey failed (${code})`, options);
    this.name = 'KeyDescribeError';
  }
}

export interface KmsClientOptions {
  readonly endpoint?: string | undefined;
  readonly credentials?: AwsCredentialIdentityProvider | undefined;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxAttempts: number;
  /** Largest KMS answer accepted (CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES); 256 KiB when not given. */
  readonly maxResponseBytes?: number | undefined;
}

// Start-up describes a handful of keys, a few at a time: a small pool is plenty.
const KMS_MAX_SOCKETS = 8;

// The overall deadline of DescribeKey through a client kmsClientFactory built, derived from its
// timeouts; createKmsDescriber finds it here so the two cannot disagree.
const deadlines = new WeakMap<KMSClient, number>();

/** A factory for the real client; server.ts passes it to createKmsDescriber. */
export function kmsClientFactory(opts: KmsClientOptions): (region: string) => KMSClient {
  return (region) => {
    const client = new KMSClient({
      region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: opts.maxAttempts,
      retryMode: 'standard',
      // A KMS that hangs or answers without end would otherwise hold start-up (and /readyz) for ever.
      requestHandler: createHttpHandler({
        connectTimeoutMs: opts.connectTimeoutMs,
        requestTimeoutMs: opts.requestTimeoutMs,
        maxSockets: KMS_MAX_SOCKETS,
        maxResponseBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      }),
    });
    deadlines.set(client, upstreamDeadlineMs(opts));
    return client;
  };
}

/** One client per region, created on first use; close() releases them once start-up is done. */
export function createKmsDescriber(newClient: (region: string) => KMSClient): KeyDescriber & { close(): void } {
  const clients = new Map<string, KMSClient>();
  return {
    async describe(keyId, region) {
      let client = clients.get(region);
      if (!client) {
        client = newClient(region);
        clients.set(region, client);
      }
      const c = client;
      let out;
      try {
        out = await withDeadline(deadlines.get(c) ?? FALLBACK_DEADLINE_MS, undefined, () =>
          c.send(new DescribeKeyCommand({ KeyId: keyId })),
        );
      } catch (err) {
        // Only the error name (or network code: smithy names a reset socket TimeoutError) leaves
        // this module: SDK messages are not ours to print.
        throw new KeyDescribeError(networkErrorCode(err) ?? (err as { name?: string } | undefined)?.name ?? 'Unknown', {
          cause: err,
        });
      }
      const m = out.KeyMetadata;
      return {
        arn: m?.Arn ?? '',
        keyState: m?.KeyState ?? 'Unknown',
        keySpec: m?.KeySpec ?? m?.CustomerMasterKeySpec ?? 'Unknown', // older servers (LocalStack) send only the deprecated name
        keyUsage: m?.KeyUsage ?? 'Unknown',
      };
    },
    close() {
      for (const c of clients.values()) c.destroy();
      clients.clear();
    },
  };
}

const DESCRIBE_ERRORS: Record<string, string> = {
  NotFoundException: 'key not found in this region and account (or not visible to the service)',
  AccessDeniedException: "access denied: the service's role needs kms:DescribeKey on this key",
  InvalidArnException: 'KMS rejected the key ARN',
  CredentialsProviderError: 'no AWS credentials to call KMS with',
  BaseCredentialsUnavailableError: "the service's own AWS credentials are unavailable",
  TimeoutError: 'KMS did not answer in time',
  DeadlineExceeded: 'KMS did not answer in time (retries included)',
  ResponseTooLarge: 'KMS answered with more than CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES',
  ECONNRESET: 'KMS closed the connection',
  ECONNREFUSED: 'KMS refused the connection',
};

function describeFailure(err: unknown): string {
  const code = err instanceof KeyDescribeError ? err.code : 'Unknown';
  return DESCRIBE_ERRORS[code] ?? `DescribeKey failed (${boundedName(code) ?? 'error'})`;
}

/** The problems with a described key for this profile; empty when the key is usable. */
export function keyProblems(profile: Profile, facts: KeyFacts): string[] {
  const arn = parseKmsArn(facts.arn);
  if (!arn.ok || arn.value.kind !== 'key') return [`DescribeKey returned no usable key ARN ("${facts.arn}")`];
  const problems: string[] = [];
  // Disabled or PendingDeletion/PendingImport/Unavailable: S3 cannot use the key, and a key
  // pending deletion would take every object written from now on with it.
  if (facts.keyState !== 'Enabled') problems.push(`key ${facts.arn} is ${facts.keyState}, not Enabled`);
  // S3 SSE-KMS only works with symmetric encryption keys; anything else fails every upload.
  if (facts.keySpec !== 'SYMMETRIC_DEFAULT')
    problems.push(`key ${facts.arn} is ${facts.keySpec}, not SYMMETRIC_DEFAULT`);
  if (facts.keyUsage !== 'ENCRYPT_DECRYPT')
    problems.push(`key ${facts.arn} has usage ${facts.keyUsage}, not ENCRYPT_DECRYPT`);
  // S3 uses a key in the bucket's region only; kms:ViaService in the policy names that region.
  if (arn.value.region !== profile.region)
    problems.push(`key ${facts.arn} is in ${arn.value.region}, the bucket in ${profile.region}`);
  if (arn.value.partition !== profile.partition)
    problems.push(`key ${facts.arn} is in partition ${arn.value.partition}, the role in ${profile.partition}`);
  return problems;
}

/**
 * Resolves every profile's kmsKeyId (alias, key id or ARN) to its key ARN, set as kmsKeyArn.
 * Throws ConfigError listing every problem across all profiles.
 */
export async function resolveKmsKeys(config: Config, describer: KeyDescriber): Promise<Config> {
  const described = new Map<string, Promise<KeyFacts>>();
  const describeOnce = (keyId: string, region: string): Promise<KeyFacts> => {
    const cacheKey = `${region} ${keyId}`;
    let facts = described.get(cacheKey);
    if (!facts) {
      facts = describer.describe(keyId, region);
      described.set(cacheKey, facts);
    }
    return facts;
  };
  const results = await Promise.all(
    [...config.profiles.values()].map(async (profile): Promise<{ profile: Profile; problems: string[] }> => {
      if (!profile.kmsKeyId) return { profile, problems: [] };
      // A key given as an ARN is described in its own region, so a key in the wrong region is
      // reported as such rather than as "not found" in the bucket's region.
      const asArn = profile.kmsKeyId.startsWith('arn:') ? parseKmsArn(profile.kmsKeyId) : undefined;
      const region = asArn?.ok ? asArn.value.region : profile.region;
      const where = `profiles.${profile.name}.kmsKeyId`;
      try {
        const facts = await describeOnce(profile.kmsKeyId, region);
        const bad = keyProblems(profile, facts);
        if (bad.length > 0) return { profile, problems: bad.map((b) => `${where}: ${b}`) };
        return { profile: { ...profile, kmsKeyArn: facts.arn }, problems: [] };
      } catch (err) {
        return { profile, problems: [`${where}: ${profile.kmsKeyId}: ${describeFailure(err)}`] };
      }
    }),
  );
  const problems = results.flatMap((r) => r.problems); // in profile order, whatever answered first
  if (problems.length > 0) throw new ConfigError(problems);
  return withProfiles(
    config,
    results.map((r) => r.profile),
  );
}
