// Asking credvend for credentials, from a browser. No AWS SDK here: this module only speaks
// credvend's REST API (POST /v1/credentials) and turns its answers into what the SDK wants.
//
// Threat model for a page: the JWT is the user's identity and the vended keys are bearer secrets.
// Neither is written to the URL, localStorage or the console; both live in memory for as long as
// the page needs them. The credentials are scoped by credvend to the exact object keys asked for,
// so a compromised page can at worst touch those keys until the credentials expire.

export interface GrantRequest {
  readonly profile: string;
  readonly operation: 'upload' | 'download';
  /** Keys relative to the profile prefix; credvend answers the full object keys. */
  readonly keys: readonly string[];
  readonly durationSeconds?: number;
}

export interface Grant {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly region: string;
  readonly bucket: string;
  readonly keys: readonly string[];
  readonly requestId: string;
}

/** What the AWS SDK calls a credential identity. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** credvend refused (problem+json, RFC 9457), or could not be reached at all. */
export class CredvendError extends Error {
  override readonly name = 'CredvendError';
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    readonly requestId: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CredvendClientOptions {
  /** credvend's base URL, e.g. https://credvend.example.com */
  readonly url: string;
  /** Returns the current JWT; called for every request, so a page can renew its token. */
  readonly token: () => string | Promise<string>;
  readonly fetch?: typeof fetch;
}

export async function requestGrant(opts: CredvendClientOptions, req: GrantRequest): Promise<Grant> {
  const doFetch = opts.fetch ?? fetch.bind(globalThis);
  let res: Response;
  try {
    res = await doFetch(`${opts.url.replace(/\/+$/, '')}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await opts.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify(req),
      credentials: 'omit', // the JWT is the only identity; no cookies cross origins (POST answers are no-store)
    });
  } catch (cause) {
    // A browser reports a CORS refusal exactly like a network failure: the page cannot tell them apart.
    throw new CredvendError(
      'credvend could not be reached (network failure, or this origin is not allowed by CORS)',
      undefined,
      undefined,
      undefined,
      { cause },
    );
  }
  const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!res.ok || !body) {
    const detail = typeof body?.detail === 'string' ? body.detail : `HTTP ${res.status}`;
    throw new CredvendError(
      detail,
      res.status,
      str(body?.code),
      str(body?.requestId) ?? res.headers.get('x-request-id') ?? undefined,
    );
  }
  const expiration = new Date(String(body.expiration));
  if (Number.isNaN(expiration.getTime()))
    throw new CredvendError('credvend answered without a valid expiration', res.status, undefined, str(body.requestId));
  return {
    accessKeyId: String(body.accessKeyId),
    secretAccessKey: String(body.secretAccessKey),
    sessionToken: String(body.sessionToken),
    expiration,
    region: String(body.region),
    bucket: String(body.bucket),
    keys: Array.isArray(body.keys) ? body.keys.map(String) : [],
    requestId: String(body.requestId),
  };
}

export interface RefreshingCredentials {
  /** The AWS SDK credential provider: pass it as `credentials` to an S3Client. */
  readonly provider: ((...args: unknown[]) => Promise<AwsCredentials>) & { memoized: true };
  /** The first grant (bucket, region, full keys); the same request is repeated on refresh. */
  readonly first: Promise<Grant>;
  /** How many times credvend has been asked, the first time included. */
  grants(): number;
}

export interface RefreshOptions {
  /** Ask again when less than this remains (default 120 s: longer than one part takes on a slow link). */
  readonly refreshBeforeMs?: number;
  /**
   * The clock that measures how long a grant has been held. Injected so a test can make an
   * upload "last" longer than the session without waiting 15 minutes.
   */
  readonly now?: () => number;
  readonly onGrant?: (grant: Grant) => void;
}

/**
 * Credentials for one request to credvend, renewed by asking credvend again for the same keys
 * when they near expiry: a multipart upload that outlives one session signs its later parts with
 * the next session's keys. Concurrent callers (parallel parts) share one renewal.
 *
 * The SDK normally caches a provider's answer itself, by the wall clock; marking the provider
 * `memoized` makes the SDK ask it before every request, so this cache (and its clock) decides.
 */
export function refreshingCredentials(
  client: CredvendClientOptions,
  req: GrantRequest,
  opts: RefreshOptions = {},
): RefreshingCredentials {
  const refreshBeforeMs = opts.refreshBeforeMs ?? 120_000;
  const now = opts.now ?? Date.now;
  let count = 0;
  let current: { grant: Grant; expiresAt: number } | undefined;
  let pending: Promise<Grant> | undefined;

  const renew = (): Promise<Grant> => {
    pending ??= requestGrant(client, req)
      .then((grant) => {
        count += 1;
        // Lifetime by the wall clock at receipt, counted down on the injected clock from now.
        current = { grant, expiresAt: now() + (grant.expiration.getTime() - Date.now()) };
        opts.onGrant?.(grant);
        return grant;
      })
      .finally(() => (pending = undefined));
    return pending;
  };

  const first = renew();
  const provider = Object.assign(
    async (): Promise<AwsCredentials> => {
      const grant = current && current.expiresAt - now() > refreshBeforeMs ? current.grant : await (pending ?? renew());
      return {
        accessKeyId: grant.accessKeyId,
        secretAccessKey: grant.secretAccessKey,
        sessionToken: grant.sessionToken,
        expiration: grant.expiration,
      };
    },
    { memoized: true as const },
  );
  return { provider, first, grants: () => count };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
