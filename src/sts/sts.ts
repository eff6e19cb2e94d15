// The STS adapter: issuance plans in, IssuedCredentials or an StsError out. Everything else sees
// Sts; underneath is a StsClient (src/sts/http-client.ts in production; tests fake it or adapt a
// mocked SDK STSClient to it with aws-sdk-client-mock).
//
// Failures are translated here into StsError with a bounded `code`: upstream messages can carry
// request details and never reach a caller, a log line or a metric label as they are.
import type { AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import { FALLBACK_DEADLINE_MS, NETWORK_ERROR_CODES, networkErrorCode, withDeadline } from '../aws/http-handler.js';
import type { IssuancePlan } from '../policy/plan.js';
import { BaseCredentialsUnavailableError } from './base-credentials.js';
import type { StsClient } from './http-client.js';

export interface IssuedCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly packedPolicySize?: number;
}

export interface ServiceIdentity {
  readonly account: string;
  readonly arn: string;
}

export interface Sts {
  /**
   * Rejects with an StsError; with `signal.reason` as it is when `signal` aborts (shutdown); with
   * BaseCredentialsUnavailableError when the service has no usable credentials of its own.
   */
  assumeRole(plan: IssuancePlan, signal?: AbortSignal): Promise<IssuedCredentials>;
  serviceIdentity(signal?: AbortSignal): Promise<ServiceIdentity>;
}

export type StsFailure =
  'access_denied' | 'throttled' | 'timeout' | 'packed_policy_too_large' | 'rejected' | 'unavailable';

// Error names we keep as metric label values; anything else becomes 'other' (bounded cardinality).
const KNOWN_CODES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'ExpiredToken',
  'ExpiredTokenException',
  'RegionDisabledException',
  'PackedPolicyTooLarge',
  'PackedPolicyTooLargeException',
  'MalformedPolicyDocument',
  'MalformedPolicyDocumentException',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TimeoutError',
  'InvalidClientTokenId',
  'InvalidParameterValue',
  'ValidationError',
  'NoSuchEntity',
  'NotFound',
  'InvalidArgument',
  'Unknown',
  'ETIMEDOUT',
  'CredentialsProviderError',
  ...NETWORK_ERROR_CODES,
  'ResponseTooLarge',
  'DeadlineExceeded',
]);

const THROTTLING_CODES = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded']);
// Only a deadline of ours that passed: smithy's request, connect and socket timeouts
// (TimeoutError, code ETIMEDOUT) and the overall deadline. A reset or refused connection is not
// a timeout, whatever smithy names it.
const TIMEOUT_CODES = new Set(['TimeoutError', 'ETIMEDOUT', 'DeadlineExceeded']);

export class StsError extends Error {
  constructor(
    readonly kind: StsFailure,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    // Only kind and code: SDK messages can carry request details (ARNs, identities).
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

/** Classifies by error name, code and HTTP status, never by message text. */
export function translateStsError(err: unknown): StsError {
  const e = (err ?? {}) as SdkLikeError;
  const network = networkErrorCode(err);
  const raw = network ?? (e.name === 'Error' && e.code ? e.code : (e.name ?? 'Unknown'));
  const code = KNOWN_CODES.has(raw) ? raw : 'other';
  const status = e.$metadata?.httpStatusCode;
  const kind = ((): StsFailure => {
    if (THROTTLING_CODES.has(raw) || e.$retryable?.throttling || status === 429) return 'throttled';
    // Reset, refused, broken pipe, unreachable: STS (or the path to it) is unavailable.
    if (network) return 'unavailable';
    if (TIMEOUT_CODES.has(raw) || e.code === 'ETIMEDOUT') return 'timeout';
    if (raw.startsWith('PackedPolicyTooLarge')) return 'packed_policy_too_large';
    if (raw.startsWith('AccessDenied') || status === 403) return 'access_denied';
    // S3-compatible STS servers answer in S3's XML error shape, which the SDK names Unknown or
    // NotFound: fall back to the HTTP status.
    if (status !== undefined && status >= 400 && status < 500) return 'rejected';
    // 5xx, an oversized (ResponseTooLarge) or unparsable answer, any other failure.
    return 'unavailable';
  })();
  return new StsError(kind, code, { cause: err });
}

/** The BaseCredentialsUnavailableError behind `err`, thrown as is or kept as a cause by the SDK. */
function baseCredentialsFailure(err: unknown): BaseCredentialsUnavailableError | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    if (e instanceof BaseCredentialsUnavailableError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function createSts(client: StsClient): Sts {
  const deadlineMs = client.deadlineMs ?? FALLBACK_DEADLINE_MS;

  // Every call: bounded by the overall deadline (retries and backoff included) and by the
  // caller's signal; failures leave as StsError, except the two that are not STS's doing.
  const send = async <T>(
    signal: AbortSignal | undefined,
    call: (abortSignal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> => {
    try {
      return await withDeadline(deadlineMs, signal, call);
    } catch (err) {
      // The caller gave up (shutdown, client gone): its reason, not an STS failure.
      if (signal?.aborted) {
        const reason: unknown = signal.reason;
        throw reason;
      }
      // The service cannot sign: 503 CV_BASE_CREDENTIALS_UNAVAILABLE, not an STS error.
      const base = baseCredentialsFailure(err);
      if (base) throw base;
      throw translateStsError(err);
    }
  };

  return {
    async assumeRole(plan, signal) {
      const input: AssumeRoleCommandInput = {
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
      };
      const out = await send(signal, (abortSignal) => client.assumeRole(input, abortSignal));
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
    async serviceIdentity(signal) {
      const out = await send(signal, (abortSignal) => client.getCallerIdentity(abortSignal));
      return { account: out.Account ?? '', arn: out.Arn ?? '' };
    },
  };
}
