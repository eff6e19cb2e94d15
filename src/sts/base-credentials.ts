// The service's own AWS credentials: the SDK default chain (ECS container credentials, EKS IRSA
// web identity, EKS Pod Identity, instance metadata), wrapped so that
//  - they are refreshed ahead of expiry, once, while the old ones keep serving: a refresh that
//    fails or is slow never fails a request as long as the old credentials are still valid;
//  - no fetch can hang issuance: each has a deadline, after which the single-flight slot is
//    freed. Measured: the SDK's container-credentials request timeout only warns, a hung ECS /
//    Pod Identity endpoint held the one in-flight refresh forever, and issuance stayed down
//    after the endpoint recovered;
//  - expired keys (or keys within 30 s of expiry) are never handed out, whoever produced them:
//    signing with them gave callers a misleading AccessDenied instead of "we cannot sign";
//  - after a failure, no new fetch before a jittered, doubling backoff: a down endpoint is not
//    hammered once per request, and many instances do not retry in lock-step;
//  - every fetch updates credvend_base_credentials_expiry_timestamp_seconds, and every failed one
//    credvend_base_credentials_refresh_failures_total, so an alert fires before the service loses
//    its identity rather than after; canSign() drives /readyz;
//  - the last access key id is kept for the start-up check that refuses long-lived IAM user keys.
import { DEFAULT_MAX_RESPONSE_BYTES } from '../limits.js';
import { defaultProvider, type DefaultProviderInit } from '@aws-sdk/credential-provider-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';
import { ContainerCredentialsError, fromContainerEndpoint, hasContainerEndpoint } from './container-credentials.js';
import { boundedName } from '../error-name.js';

/**
 * The service cannot sign: its own credentials are expired (or too close to expiry) and no
 * refresh has succeeded. Never a reason to sign with the old keys: callers get 503
 * CV_BASE_CREDENTIALS_UNAVAILABLE, and /readyz is 503 meanwhile.
 */
export class BaseCredentialsUnavailableError extends Error {
  constructor(
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(`the service's own AWS credentials are unavailable (${code})`, options);
    this.name = 'BaseCredentialsUnavailableError';
  }
}

export interface BaseCredentials {
  /** Pass as `credentials` to the STS and KMS clients. Rejects with BaseCredentialsUnavailableError. */
  readonly provider: AwsCredentialIdentityProvider;
  /** The access key id last resolved, undefined before the first resolution. */
  lastAccessKeyId(): string | undefined;
  /** Whether the last resolved credentials expire (temporary) or not (static keys). */
  lastExpires(): boolean | undefined;
  /**
   * Whether a request could be signed now: credentials are held and more than 30 s from expiry.
   * False before the first successful fetch. For /readyz.
   */
  canSign(now?: number): boolean;
  /**
   * Keep the credentials fresh with no traffic at all: checks every `intervalMs` (and once now),
   * fetching when they are near expiry or unusable, within the same single flight and backoff as
   * requests. Without it an idle instance that lost its credentials would never recover, and
   * /readyz would stay 503. Idempotent; the timer does not keep the process alive.
   */
  start(intervalMs?: number): void;
  stop(): void;
}

export interface BaseCredentialsOptions {
  /** Where credentials come from; the SDK default chain in production. */
  readonly source: AwsCredentialIdentityProvider;
  readonly metrics: Pick<Metrics, 'baseCredentialExpiry' | 'baseCredentialRefreshFailures'>;
  readonly logger?: Pick<Logger, 'warn'>;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now?: () => number;
  /** In [0, 1); injected so tests control the backoff jitter. */
  readonly random?: () => number;
  /** Refresh this long before expiry. */
  readonly refreshMarginMs?: number;
  /** Deadline of one fetch from the source (CREDVEND_BASE_CREDENTIALS_TIMEOUT_MS). */
  readonly timeoutMs?: number;
}

/** Why the service cannot sign: the `code` of BaseCredentialsUnavailableError and the metric label. */
export type BaseCredentialsFailure = 'Timeout' | 'FetchFailed' | 'Expired' | 'Backoff';

// Five minutes matches the SDK clients' own window: a client asks its provider again only once
// its cached credentials are within five minutes of expiry, so a longer margin would not be seen.
// It also means a client never keeps signing with keys this module would call unusable.
export const REFRESH_MARGIN_MS = 5 * 60_000;
export const BASE_CREDENTIALS_TIMEOUT_MS = 3000;
export const MAINTAIN_INTERVAL_MS = 5000;
// Below this, credentials are too close to expiry to sign a request that may retry: wait for new ones.
const USABLE_MARGIN_MS = 30_000;
// A source that keeps returning the same near-expiry (but still usable) keys is asked again at
// most this often, not on every request.
const RETRY_INTERVAL_MS = 10_000;
// After a failed fetch: 1 s, doubling per consecutive failure, at most 5 s. Short: while the
// credentials are unusable nothing is issued, so recovery must follow the endpoint's within
// seconds; one fetch per few seconds is no load on the ECS agent or STS.
const BACKOFF_INITIAL_MS = 1000;
const BACKOFF_MAX_MS = 5_000;

/**
 * The SDK default chain, except for the container-credentials endpoint (ECS, EKS Pod Identity),
 * which is ours (fromContainerEndpoint) whenever it is the source the chain would reach: no
 * static keys in the environment, no IRSA web identity, and a container URI set. `region` and
 * `stsEndpoint` are where the IRSA AssumeRoleWithWebIdentity call goes (the same STS endpoint as
 * ours, e.g. a VPC endpoint when STS is reached privately). `timeoutMs` bounds each attempt of
 * the chain's own HTTP calls, so their sockets are released; the wrapper's deadline
 * (createBaseCredentials' `timeoutMs`) bounds the fetch as a whole. `maxResponseBytes`
 * (CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES) caps the container endpoint's answer.
 */
export function defaultCredentialChain(
  opts: {
    region?: string | undefined;
    stsEndpoint?: string | undefined;
    timeoutMs?: number | undefined;
    maxResponseBytes?: number | undefined;
  } = {},
): AwsCredentialIdentityProvider {
  const timeoutMs = opts.timeoutMs ?? BASE_CREDENTIALS_TIMEOUT_MS;
  const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  // The SDK's fromHttp bounds only the connect: a connected-but-silent endpoint kept its socket
  // for ever. Ours destroys it at the deadline and caps the answer. Decided per fetch, from the
  // environment the SDK chain would read; anything else keeps the SDK chain unchanged.
  const endpoint = fromContainerEndpoint({ timeoutMs, maxResponseBytes });
  // Our deadline passing is a Timeout to createBaseCredentials, which classifies by the SDK's
  // error name (TimeoutError); the endpoint's own error stays underneath as the cause.
  const container: AwsCredentialIdentityProvider = (props) =>
    endpoint(props).catch((err: unknown) => {
      if (err instanceof ContainerCredentialsError && err.code === 'Timeout')
        throw Object.assign(new Error(err.message, { cause: err }), { name: 'TimeoutError' });
      throw err;
    });
  const useContainer = (env: NodeJS.ProcessEnv): boolean =>
    !env.AWS_ACCESS_KEY_ID && !env.AWS_WEB_IDENTITY_TOKEN_FILE && hasContainerEndpoint(env);
  const init: DefaultProviderInit = {
    // Instance metadata, and the SDK's container provider where the chain still reaches it (a
    // failing IRSA web identity falls through to it): one attempt each, retried by our backoff
    // instead; the SDK's retries (three, 1 s apart) would outlive the deadline.
    timeout: timeoutMs,
    maxRetries: 0,
    // IRSA: the nested STS client, with a request timeout that fails instead of warning.
    clientConfig: {
      ...(opts.region ? { region: opts.region } : {}),
      ...(opts.stsEndpoint ? { endpoint: opts.stsEndpoint } : {}),
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: timeoutMs,
        requestTimeout: timeoutMs,
        throwOnRequestTimeout: true,
      }),
    },
  };
  // A new chain per fetch: the SDK's chain has its own single flight for forced refreshes, and a
  // hung fetch would hold it forever, so every later fetch would join the hung one. Caching is
  // ours (createBaseCredentials), the SDK's memo is not needed.
  return (props) => (useContainer(process.env) ? container(props) : defaultProvider(init)(props));
}

export function createBaseCredentials(opts: BaseCredentialsOptions): BaseCredentials {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const margin = opts.refreshMarginMs ?? REFRESH_MARGIN_MS;
  const timeoutMs = opts.timeoutMs ?? BASE_CREDENTIALS_TIMEOUT_MS;
  let current: AwsCredentialIdentity | undefined;
  let inflight: Promise<AwsCredentialIdentity> | undefined;
  let lastAttempt = Number.NEGATIVE_INFINITY;
  let failures = 0;
  let retryAt = Number.NEGATIVE_INFINITY;
  let lastFailure: BaseCredentialsUnavailableError | undefined;
  let timer: NodeJS.Timeout | undefined;

  const remaining = (c: AwsCredentialIdentity, t: number): number =>
    c.expiration ? c.expiration.getTime() - t : Number.POSITIVE_INFINITY;
  const usable = (c: AwsCredentialIdentity | undefined, t: number): c is AwsCredentialIdentity =>
    c !== undefined && remaining(c, t) > USABLE_MARGIN_MS;

  const store = (c: AwsCredentialIdentity): void => {
    current = c;
    failures = 0;
    retryAt = Number.NEGATIVE_INFINITY;
    lastFailure = undefined;
    opts.metrics.baseCredentialExpiry.set(c.expiration ? Math.floor(c.expiration.getTime() / 1000) : 0);
  };

  const fail = (code: Exclude<BaseCredentialsFailure, 'Backoff'>, cause?: unknown): BaseCredentialsUnavailableError => {
    failures = Math.min(failures + 1, 16);
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** (failures - 1));
    // Equal jitter: never less than half the step, so one window sees at most one fetch, and
    // instances that failed together spread out.
    const delay = ceiling / 2 + (random() * ceiling) / 2;
    retryAt = now() + delay;
    opts.metrics.baseCredentialRefreshFailures.inc({ code });
    opts.logger?.warn(
      { code, err: { name: errorName(cause) }, retryInMs: Math.round(delay), canSign: usable(current, now()) },
      'fetching the base AWS credentials failed',
    );
    lastFailure = new BaseCredentialsUnavailableError(code, cause === undefined ? undefined : { cause });
    return lastFailure;
  };

  // One fetch at a time, shared by every caller that needs it (no thundering herd on the
  // container-credentials endpoint or STS when many requests arrive during a refresh).
  const refresh = (props: Record<string, unknown> | undefined): Promise<AwsCredentialIdentity> => {
    if (inflight) return inflight;
    lastAttempt = now();
    const p = new Promise<AwsCredentialIdentity>((resolve, reject) => {
      let abandoned = false;
      const release = (): void => {
        if (inflight === p) inflight = undefined;
      };
      const deadline = setTimeout(() => {
        abandoned = true;
        release();
        reject(fail('Timeout'));
      }, timeoutMs);
      deadline.unref();
      // forceRefresh: a source that memoizes would hand back its cached keys otherwise.
      Promise.resolve()
        .then(() => opts.source({ ...props, forceRefresh: true }))
        .then(
          (c) => {
            if (abandoned) {
              // A late answer is taken only if it is usable and outlives what we hold: a source
              // that is merely slower than the deadline still recovers the service, and an old
              // answer never replaces newer keys. Its failure was already counted as a Timeout.
              if (usable(c, now()) && (!usable(current, now()) || remaining(c, now()) > remaining(current, now())))
                store(c);
              return;
            }
            clearTimeout(deadline);
            release();
            // Keys that arrive expired (a container endpoint that serves stale ones) are a failed
            // fetch: never stored, never returned, never signed with.
            if (!usable(c, now())) {
              reject(fail('Expired'));
              return;
            }
            store(c);
            resolve(c);
          },
          (err: unknown) => {
            if (abandoned) return;
            clearTimeout(deadline);
            release();
            reject(fail(isTimeout(err) ? 'Timeout' : 'FetchFailed', err));
          },
        );
    });
    inflight = p;
    return p;
  };

  // Ahead of expiry, in the background: the current keys are still valid and keep serving.
  // Its failure is logged and counted by fail(); nobody waits for it.
  const refreshAhead = (props: Record<string, unknown> | undefined, t: number): void => {
    if (inflight || t < retryAt || t - lastAttempt < RETRY_INTERVAL_MS) return;
    refresh(props).catch(() => undefined);
  };

  const maintain = (): void => {
    const t = now();
    if (usable(current, t)) {
      if (remaining(current, t) < margin) refreshAhead(undefined, t);
      return;
    }
    if (inflight || t < retryAt) return;
    refresh(undefined).catch(() => undefined);
  };

  return {
    async provider(props) {
      const t = now();
      if (usable(current, t)) {
        if (remaining(current, t) < margin) refreshAhead(props, t);
        return current;
      }
      if (inflight) return inflight;
      // Nothing usable and the last fetch failed moments ago: fail fast rather than queue every
      // request on an endpoint known to be down.
      if (t < retryAt)
        throw new BaseCredentialsUnavailableError('Backoff', lastFailure ? { cause: lastFailure } : undefined);
      return refresh(props);
    },
    lastAccessKeyId: () => current?.accessKeyId,
    lastExpires: () => (current ? current.expiration !== undefined : undefined),
    canSign: (at = now()) => usable(current, at),
    start(intervalMs = MAINTAIN_INTERVAL_MS) {
      if (timer) return;
      timer = setInterval(maintain, intervalMs);
      timer.unref();
      maintain();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}

/** By the error's name or code, never its message: the SDK's own timeouts (IMDS, IRSA). */
function isTimeout(err: unknown): boolean {
  const e = (err ?? {}) as { name?: unknown; code?: unknown };
  return e.name === 'TimeoutError' || e.code === 'ETIMEDOUT';
}

/** A bounded name for a log field; never the message, which may carry an endpoint's answer. */
function errorName(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  const name: unknown = typeof err === 'object' && err !== null && 'name' in err ? err.name : undefined;
  return boundedName(name) ?? 'error';
}
