// Bearer-token authentication for several trusted issuers: Authorization header -> Caller.
//
// Threats: forged tokens (signature checked against the issuer's own keys, jws.ts), tokens from an
// untrusted issuer (allow-list, checked before any key is fetched), algorithm confusion (per-
// issuer algorithm allow-list, each algorithm bound to one key type; HS* only for an issuer
// configured with an HMAC secret; never `none`), lenient parsing (token.ts: duplicate members,
// non-string kid, non-numeric times, crit), replay of stale or near-eternal tokens (exp required
// and bounded by the issuer's maximum lifetime, nbf and iat honoured, small clock skew), tokens
// minted for another service (aud), a hanging or abusive JWKS and rotation that is not honoured
// (key-store.ts), and ambiguous requests (two Authorization headers, a scheme separator other than
// spaces). Claims are checked before any key is fetched, so junk costs the identity provider
// nothing beyond the key store's cooldown.
//
// An issuer whose keys cannot be had (JWKS unreachable past the staleness bound) gives 401
// CV_TOKEN_INVALID "signing keys unavailable": without keys there is no authenticated caller, and
// the refusal is audited like any other unauthenticated request.
import { DEFAULT_MAX_RESPONSE_BYTES } from '../limits.js';
import { createPublicKey } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IssuerConfig } from '../config/schema.js';
import { AuthorizationAmbiguous, TokenInvalid, TokenMissing } from '../errors.js';
import type { Caller } from '../policy/caller.js';
import { createFetchJson, type FetchJson } from './fetch-json.js';
import { ASYMMETRIC_ALGORITHMS, keyWeakness, verifySignature, type VerificationKey } from './jws.js';
import { createKeyStore, type KeyStore } from './key-store.js';
import { checkClaims, parseToken, TokenRejectedError, type ParsedToken } from './token.js';

/** Two Authorization headers: which one counts differs between proxies and us, so neither does. */

export interface AuthOptions {
  readonly issuers: readonly IssuerConfig[];
  readonly clockSkewSeconds: number;
  /** Minimum time between two JWKS fetches caused by an unknown kid, per issuer (default 10 s, at most 15 s). */
  readonly jwksRefreshCooldownMs?: number;
  /** Deadline of one JWKS refresh, OIDC discovery included (CREDVEND_JWKS_TIMEOUT_MS; default 3000). */
  readonly jwksTimeoutMs?: number;
  /** Largest JWKS or discovery document accepted (CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES). */
  readonly maxResponseBytes?: number;
  /** Milliseconds since the epoch (default Date.now); token times and key staleness use it. */
  readonly now?: () => number;
  /** Test seam: how JWKS and discovery documents are fetched (default: bounded global fetch). */
  readonly fetchJson?: FetchJson;
}

export type Authenticate = (request: FastifyRequest) => Promise<Caller>;

export const DEFAULT_JWKS_REFRESH_COOLDOWN_MS = 10_000;
export const MAX_JWKS_REFRESH_COOLDOWN_MS = 15_000;
const DEFAULT_JWKS_TIMEOUT_MS = 3000;
// Fallbacks for an IssuerConfig built without the schema's defaults (the schema sets them).
const DEFAULT_REFRESH_SECONDS = 300;
const DEFAULT_MAX_STALE_SECONDS = 3600;
const DEFAULT_MAX_LIFETIME_SECONDS = 86_400;

// Verified tokens remembered (below): at most this many, each at most MAX_TOKEN_LENGTH (16 KiB).
const VERIFIED_CACHE_SIZE = 1000;

type KeySource =
  { readonly kind: 'static'; readonly key: VerificationKey } | { readonly kind: 'jwks'; readonly store: KeyStore };

interface TrustedIssuer {
  readonly config: IssuerConfig;
  readonly algorithms: ReadonlySet<string>;
  readonly maxTokenLifetimeSeconds: number;
  readonly source: KeySource;
}

export function createAuthenticator(app: FastifyInstance, opts: AuthOptions): Authenticate {
  const cooldownMs = opts.jwksRefreshCooldownMs ?? DEFAULT_JWKS_REFRESH_COOLDOWN_MS;
  if (!(cooldownMs >= 0 && cooldownMs <= MAX_JWKS_REFRESH_COOLDOWN_MS)) {
    // Longer would let a flood of unknown kids delay a newly published key by more than 15 s.
    throw new RangeError(`jwksRefreshCooldownMs must be between 0 and ${MAX_JWKS_REFRESH_COOLDOWN_MS}`);
  }
  const now = opts.now ?? Date.now;
  const fetchJson =
    opts.fetchJson ?? createFetchJson({ maxBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES });
  const byIssuer = new Map<string, TrustedIssuer>();
  for (const config of opts.issuers) {
    byIssuer.set(config.issuer, {
      config,
      algorithms: new Set<string>(config.algorithms ?? (config.hmacSecret ? ['HS256'] : ASYMMETRIC_ALGORITHMS)),
      maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS,
      source: keySource(config, {
        cooldownMs,
        now,
        fetchJson,
        timeoutMs: opts.jwksTimeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS,
        log: app.log,
      }),
    });
  }
  const stores = [...byIssuer.values()].flatMap((i) => (i.source.kind === 'jwks' ? [i.source.store] : []));
  // Keys are fetched as soon as the app is ready, not by the first caller; the schedule stops with it.
  app.addHook('onReady', async () => stores.forEach((s) => s.start()));
  app.addHook('onClose', async () => stores.forEach((s) => s.close()));

  // Tokens whose signature was verified, keyed by the token itself (no hash to compute, and no
  // two tokens share a key), with their parsed form and the issuer key-set generation that
  // verified them: a browser or credential_process presenting the same token again costs neither
  // a parse nor a signature check. Claims (exp, nbf, aud, ...) are still checked every time, and
  // a key-set change (a removed key) invalidates every entry verified under the old set.
  // The entry also holds the Caller built at verification, frozen: every presentation of the
  // token gets that same object, which is what plans are memoised on (src/policy/plan-memo.ts).
  interface Verified {
    readonly parsed: ParsedToken;
    readonly stamp: string;
    readonly caller: Caller;
  }
  const verified = new Map<string, Verified>();
  const remember = (token: string, entry: Verified) => {
    verified.delete(token);
    verified.set(token, entry);
    if (verified.size > VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
  };

  const verify = async (token: string): Promise<Caller> => {
    const cached = verified.get(token);
    const t = cached?.parsed ?? parseToken(token);
    const iss = t.payload.iss;
    if (iss === undefined) throw new TokenRejectedError('a required claim (exp, iss) is missing');
    const issuer = typeof iss === 'string' ? byIssuer.get(iss) : undefined;
    if (!issuer) throw new TokenRejectedError('untrusted issuer');
    if (!issuer.algorithms.has(t.alg)) throw new TokenRejectedError('algorithm not allowed for this issuer');
    const audiences = checkClaims(t.payload, {
      now: now(),
      clockSkewSeconds: opts.clockSkewSeconds,
      maxTokenLifetimeSeconds: issuer.maxTokenLifetimeSeconds,
      audiences: issuer.config.audiences,
    });
    const subject = t.payload[issuer.config.subjectClaim];
    if (typeof subject !== 'string' || subject === '')
      throw new TokenInvalid(`missing ${issuer.config.subjectClaim} claim`);

    const { keys, generation } = await keysFor(issuer.source, t.kid, t.alg);
    const stamp = `${issuer.config.issuer}\u0000${generation}`;
    if (cached?.stamp === stamp) return cached.caller;
    if (!keys.some((k) => verifySignature(t.alg, k, t.signingInput, t.signature)))
      throw new TokenRejectedError('invalid signature');
    const caller: Caller = Object.freeze({
      issuer: issuer.config.issuer,
      subject,
      audiences: Object.freeze([...audiences]),
      claims: t.payload,
    });
    remember(token, { parsed: t, stamp, caller });
    return caller;
  };

  return async (request) => {
    const token = bearerToken(request);
    try {
      return await verify(token);
    } catch (err) {
      if (err instanceof TokenRejectedError) throw new TokenInvalid(err.reason);
      throw err;
    }
  };
}

async function keysFor(
  source: KeySource,
  kid: string | undefined,
  alg: string,
): Promise<{ keys: readonly VerificationKey[]; generation: number }> {
  if (source.kind === 'static') return { keys: [source.key], generation: 0 };
  if (kid === undefined) throw new TokenRejectedError('the token has no kid');
  let found = source.store.lookup(kid, alg);
  if (found.status !== 'found') {
    await source.store.demand();
    found = source.store.lookup(kid, alg);
  }
  if (found.status === 'unavailable') throw new TokenRejectedError('signing keys unavailable');
  if (found.status === 'unknown') throw new TokenRejectedError('unknown signing key');
  return found;
}

function keySource(
  config: IssuerConfig,
  deps: { cooldownMs: number; timeoutMs: number; now: () => number; fetchJson: FetchJson; log: FastifyInstance['log'] },
): KeySource {
  if (config.hmacSecret !== undefined)
    return { kind: 'static', key: { kind: 'secret', secret: Buffer.from(config.hmacSecret, 'utf8') } };
  if (config.publicKey !== undefined) {
    const key = createPublicKey(config.publicKey);
    const weakness = keyWeakness(key);
    // Refused at start-up: a weak configured key would accept forgeries for as long as it runs.
    if (weakness) throw new RangeError(`issuer ${config.issuer}: publicKey is unusable: ${weakness}`);
    return { kind: 'static', key: { kind: 'public', key } };
  }
  const store = createKeyStore({
    issuer: config.issuer,
    jwksUri: config.jwksUri,
    refreshIntervalMs: (config.jwksRefreshSeconds ?? DEFAULT_REFRESH_SECONDS) * 1000,
    maxStaleMs: (config.jwksMaxStaleSeconds ?? DEFAULT_MAX_STALE_SECONDS) * 1000,
    cooldownMs: deps.cooldownMs,
    timeoutMs: deps.timeoutMs,
    fetchJson: deps.fetchJson,
    now: deps.now,
    log: deps.log,
  });
  return { kind: 'jwks', store };
}

// RFC 6750 §2.1 / RFC 9110 §11.4: scheme (case-insensitive), one or more SP, then the token. Only
// SP: `\s` would also take NBSP and other separators that intermediaries read differently.
const BEARER = /^bearer +(\S+)$/i;

/** The token of the request's single Authorization header; bare tokens only on rawTokenAuth routes. */
function bearerToken(request: FastifyRequest): string {
  const raw = request.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === 'authorization') count += 1;
  // Node keeps the first of two Authorization headers; a proxy in front may keep the last.
  if (count > 1) throw new AuthorizationAmbiguous();
  const h = request.headers.authorization;
  if (!h) throw new TokenMissing();
  const m = BEARER.exec(h);
  if (m) return m[1] as string;
  if ((request.routeOptions.config as { rawTokenAuth?: boolean }).rawTokenAuth && /^\S+$/.test(h)) return h;
  throw new TokenInvalid(BAD_SCHEME);
}

const BAD_SCHEME = 'expected "Authorization: Bearer <token>"';
