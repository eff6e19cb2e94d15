// The service's own AWS credentials: the SDK default chain (ECS container credentials, EKS IRSA
// web identity, EKS Pod Identity, instance metadata), wrapped so that
//  - they are refreshed ahead of expiry, once, while the old ones keep serving: a refresh that
//    fails or is slow never fails a request as long as the old credentials are still valid;
//  - every fetch updates credvend_base_credentials_expiry_timestamp_seconds, so an alert fires
//    before the service loses its identity rather than after;
//  - the last access key id is kept for the start-up check that refuses long-lived IAM user keys.
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.js';

/**
 * The service cannot sign: its own credentials are expired (or too close to expiry) and no
 * refresh has succeeded. Never a reason to sign with the old keys: callers get 503
 * CV_BASE_CREDENTIALS_UNAVAILABLE, and /readyz is 503 meanwhile.
 */
export class BaseCredentialsUnavailableError extends Error {
  constructor(readonly code: string, options?: { cause?: unknown }) {
    super(`the service's own AWS credentials are unavailable (${code})`, options);
    this.name = 'BaseCredentialsUnavailableError';
  }
}

export interface BaseCredentials {
  /** Pass as `credentials` to the STS and KMS clients. */
  readonly provider: AwsCredentialIdentityProvider;
  /** The access key id last resolved, undefined before the first resolution. */
  lastAccessKeyId(): string | undefined;
  /** Whether the last resolved credentials expire (temporary) or not (static keys). */
  lastExpires(): boolean | undefined;
}

export interface BaseCredentialsOptions {
  /** Where credentials come from; the SDK default chain in production. */
  readonly source: AwsCredentialIdentityProvider;
  readonly metrics: Pick<Metrics, 'baseCredentialExpiry'>;
  readonly logger?: Pick<Logger, 'warn'>;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now?: () => number;
  /** Refresh this long before expiry. */
  readonly refreshMarginMs?: number;
}

// Five minutes matches the SDK clients' own window: a client asks its provider again only once
// its cached credentials are within five minutes of expiry, so a longer margin would not be seen.
export const REFRESH_MARGIN_MS = 5 * 60_000;
// Below this, credentials are too close to expiry to sign a request that may retry: wait for new ones.
const USABLE_MARGIN_MS = 30_000;
// A failed background refresh (or a source that keeps returning the same near-expiry keys) is
// retried at most this often, not on every request.
const RETRY_INTERVAL_MS = 10_000;

/**
 * The SDK default chain. `region` and `stsEndpoint` are where the IRSA AssumeRoleWithWebIdentity
 * call goes (the same STS endpoint as ours, e.g. a VPC endpoint when STS is reached privately).
 */
export function defaultCredentialChain(opts: { region?: string | undefined; stsEndpoint?: string | undefined } = {}): AwsCredentialIdentityProvider {
  return defaultProvider({
    clientConfig: { ...(opts.region ? { region: opts.region } : {}), ...(opts.stsEndpoint ? { endpoint: opts.stsEndpoint } : {}) },
  });
}

export function createBaseCredentials(opts: BaseCredentialsOptions): BaseCredentials {
  const now = opts.now ?? Date.now;
  const margin = opts.refreshMarginMs ?? REFRESH_MARGIN_MS;
  let current: AwsCredentialIdentity | undefined;
  let inflight: Promise<AwsCredentialIdentity> | undefined;
  let lastAttempt = Number.NEGATIVE_INFINITY;

  // One fetch at a time, shared by every caller that needs it (no thundering herd on the
  // container-credentials endpoint or STS when many requests arrive during a refresh).
  const refresh = (props: Record<string, unknown> | undefined): Promise<AwsCredentialIdentity> => {
    if (inflight) return inflight;
    lastAttempt = now();
    // forceRefresh: the SDK chain memoizes too, and would hand back its cached keys otherwise.
    const p: Promise<AwsCredentialIdentity> = Promise.resolve()
      .then(() => opts.source({ ...props, forceRefresh: true }))
      .then((c) => {
        current = c;
        opts.metrics.baseCredentialExpiry.set(c.expiration ? Math.floor(c.expiration.getTime() / 1000) : 0);
        return c;
      })
      .finally(() => {
        if (inflight === p) inflight = undefined;
      });
    inflight = p;
    return p;
  };

  const remaining = (c: AwsCredentialIdentity, t: number): number => (c.expiration ? c.expiration.getTime() - t : Number.POSITIVE_INFINITY);

  return {
    async provider(props) {
      const t = now();
      if (current && remaining(current, t) > USABLE_MARGIN_MS) {
        if (remaining(current, t) < margin && !inflight && t - lastAttempt >= RETRY_INTERVAL_MS) {
          // In the background: the current keys are still valid and keep serving meanwhile.
          refresh(props).catch((err: unknown) => {
            opts.logger?.warn({ err: { name: (err as { name?: string } | undefined)?.name } }, 'refreshing the base AWS credentials failed; retrying, the current ones are still valid');
          });
        }
        return current;
      }
      return refresh(props);
    },
    lastAccessKeyId: () => current?.accessKeyId,
    lastExpires: () => (current ? current.expiration !== undefined : undefined),
  };
}
