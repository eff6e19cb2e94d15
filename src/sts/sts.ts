// The one module that imports @aws-sdk/client-sts. Everything else sees Sts, the subset of STS
// we use, so tests fake it or mock the client with aws-sdk-client-mock.
//
// SDK exceptions are translated here into StsError with a bounded `code`: their messages can
// carry request details and never reach a caller, a log line or a metric label as they are.
import {
  AssumeRoleCommand,
  GetCallerIdentityCommand,
  STSClient,
  type AssumeRoleCommandInput,
} from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import {
  carryAbortSignals,
  createHttpHandler,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_MAX_SOCKETS,
  FALLBACK_DEADLINE_MS,
  networkErrorCode,
  signalFor,
  upstreamDeadlineMs,
  withDeadline,
} from '../aws/http-handler.js';
import type { IssuancePlan } from '../policy/plan.js';
import { BaseCredentialsUnavailableError } from './base-credentials.js';

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
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'CredentialsProviderError',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
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

export interface StsClientOptions {
  readonly region: string;
  readonly endpoint?: string | undefined;
  readonly credentials?: AwsCredentialIdentityProvider | undefined;
  /** One attempt (connect, send, response headers); also the socket idle limit. */
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxAttempts: number;
  /** Keep-alive sockets to STS (CREDVEND_STS_MAX_IN_FLIGHT); 64 when not given. */
  readonly maxSockets?: number | undefined;
  /** Largest STS answer accepted (CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES); 256 KiB when not given. */
  readonly maxResponseBytes?: number | undefined;
}

// The overall deadline of every call through a client createStsClient built, derived from its
// timeouts; createSts finds it here so the two cannot disagree.
const deadlines = new WeakMap<STSClient, number>();

/** One client for the process: keep-alive sockets, bounded timeouts and answers, SDK standard retries (jittered backoff). */
export function createStsClient(opts: StsClientOptions): STSClient {
  const client = new STSClient({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    maxAttempts: opts.maxAttempts,
    retryMode: 'standard',
    // The middleware stack never changes after construction: resolve it once per command type
    // instead of on every send.
    cacheMiddleware: true,
    requestHandler: createHttpHandler({
      connectTimeoutMs: opts.connectTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs,
      maxSockets: opts.maxSockets ?? DEFAULT_MAX_SOCKETS,
      maxResponseBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    }),
  });
  carryAbortSignals(client.middlewareStack);
  deadlines.set(client, upstreamDeadlineMs(opts));
  return client;
}

export function createSts(client: STSClient): Sts {
  const deadlineMs = deadlines.get(client) ?? FALLBACK_DEADLINE_MS;

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
      // No send() options: they would turn off the SDK's middleware cache. The signal goes with
      // the input instead (signalFor, src/aws/http-handler.ts).
      const out = await send(signal, (abortSignal) =>
        client.send(new AssumeRoleCommand(signalFor(input, abortSignal))),
      );
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
      const out = await send(signal, (abortSignal) =>
        abortSignal
          ? client.send(new GetCallerIdentityCommand({}), { abortSignal })
          : client.send(new GetCallerIdentityCommand({})),
      );
      return { account: out.Account ?? '', arn: out.Arn ?? '' };
    },
  };
}
