// The one module that imports @aws-sdk/client-sts. Everything else sees CredentialIssuer, the
// subset of STS we use, so tests fake it or mock the client with aws-sdk-client-mock.
//
// SDK exceptions are translated here into StsError with a bounded `code`: their messages can
// carry request details and never reach a caller, a log line or a metric label as they are.
import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { IssuancePlan } from '../policy/plan.js';

export interface IssuedCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly packedPolicySize?: number;
}

export interface CallerIdentity {
  readonly account: string;
  readonly arn: string;
}

export interface CredentialIssuer {
  issue(plan: IssuancePlan): Promise<IssuedCredentials>;
  callerIdentity(): Promise<CallerIdentity>;
}

export type StsFailure = 'access_denied' | 'throttled' | 'timeout' | 'packed_policy_too_large' | 'rejected' | 'unavailable';

// Error names we keep as metric label values; anything else becomes 'other' (bounded cardinality).
const KNOWN_CODES = new Set([
  'AccessDenied', 'AccessDeniedException', 'ExpiredToken', 'ExpiredTokenException', 'RegionDisabledException',
  'PackedPolicyTooLarge', 'PackedPolicyTooLargeException', 'MalformedPolicyDocument', 'MalformedPolicyDocumentException',
  'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TimeoutError', 'InvalidClientTokenId',
  'InvalidParameterValue', 'ValidationError', 'NoSuchEntity', 'NotFound', 'InvalidArgument', 'Unknown',
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'CredentialsProviderError',
]);

export class StsError extends Error {
  constructor(
    readonly kind: StsFailure,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`STS call failed: ${kind} (${code})`, options);
    this.name = 'StsError';
  }
}

interface SdkLikeError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

export function translateStsError(err: unknown): StsError {
  const e = (err ?? {}) as SdkLikeError;
  const raw = e.name === 'Error' && e.code ? e.code : (e.name ?? 'Unknown');
  const code = KNOWN_CODES.has(raw) ? raw : 'other';
  const status = e.$metadata?.httpStatusCode;
  const kind = ((): StsFailure => {
    if (/^(Throttling|ThrottlingException|RequestLimitExceeded)$/.test(raw) || e.$retryable?.throttling || status === 429) return 'throttled';
    if (raw === 'TimeoutError' || raw === 'ETIMEDOUT' || raw === 'AbortError') return 'timeout';
    if (raw.startsWith('PackedPolicyTooLarge')) return 'packed_policy_too_large';
    if (raw.startsWith('AccessDenied') || status === 403) return 'access_denied';
    // S3-compatible STS servers answer in S3's XML error shape, which the SDK names Unknown or
    // NotFound: fall back to the HTTP status.
    if (status !== undefined && status >= 400 && status < 500) return 'rejected';
    return 'unavailable';
  })();
  return new StsError(kind, code, { cause: err });
}

export interface StsClientOptions {
  readonly region: string;
  readonly endpoint?: string | undefined;
  readonly credentials?: AwsCredentialIdentityProvider | undefined;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxAttempts: number;
}

/** One client for the process: keep-alive sockets, bounded timeouts, SDK standard retries (jittered backoff). */
export function createStsClient(opts: StsClientOptions): STSClient {
  const agentOpts = { keepAlive: true, maxSockets: 64 };
  return new STSClient({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    maxAttempts: opts.maxAttempts,
    retryMode: 'standard',
    // The middleware stack never changes after construction: resolve it once per command type
    // instead of on every send.
    cacheMiddleware: true,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agentOpts),
      httpsAgent: new Agent(agentOpts),
      connectionTimeout: opts.connectTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
    }),
  });
}

export function createStsIssuer(client: STSClient): CredentialIssuer {
  return {
    async issue(plan) {
      let out;
      try {
        out = await client.send(
          new AssumeRoleCommand({
            RoleArn: plan.roleArn,
            RoleSessionName: plan.roleSessionName,
            DurationSeconds: plan.durationSeconds,
            // Always sent: without it the session would carry the role's full permissions.
            Policy: plan.policy.json,
            ...(plan.policyArns.length > 0 ? { PolicyArns: plan.policyArns.map((arn) => ({ arn })) } : {}),
            ...(plan.tags.length > 0 ? { Tags: plan.tags.map((t) => ({ Key: t.Key, Value: t.Value })) } : {}),
            ...(plan.transitiveTagKeys.length > 0 ? { TransitiveTagKeys: [...plan.transitiveTagKeys] } : {}),
            SourceIdentity: plan.sourceIdentity,
            ...(plan.externalId ? { ExternalId: plan.externalId } : {}),
          }),
        );
      } catch (err) {
        throw translateStsError(err);
      }
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
        throw new StsError('unavailable', 'IncompleteResponse');
      }
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
        ...(out.PackedPolicySize !== undefined ? { packedPolicySize: out.PackedPolicySize } : {}),
      };
    },
    async callerIdentity() {
      try {
        const out = await client.send(new GetCallerIdentityCommand({}));
        return { account: out.Account ?? '', arn: out.Arn ?? '' };
      } catch (err) {
        throw translateStsError(err);
      }
    },
  };
}
