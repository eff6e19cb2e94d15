// JWT verification with @fastify/jwt for several trusted issuers.
//
// Threats: forged tokens (signature checked against the issuer's own keys), tokens from an
// untrusted issuer (allow-list, checked before any key is fetched), algorithm confusion (per-
// issuer algorithm allow-list; HS* only for an issuer configured with an HMAC secret; never
// `none`), replay of stale tokens (exp required, nbf honoured, small clock skew), tokens minted
// for another service (aud), and JWKS flooding with random `kid`s (one refresh per cooldown).
import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import buildGetJwks from 'get-jwks';
import type { IssuerConfig } from '../config/schema.js';
import { TokenInvalid, TokenMissing } from '../errors.js';
import type { Principal } from '../policy/principal.js';

export interface AuthOptions {
  readonly issuers: readonly IssuerConfig[];
  readonly clockSkewSeconds: number;
  /** Minimum time between two JWKS fetches caused by an unknown kid, per issuer. */
  readonly jwksRefreshCooldownMs?: number;
}

export type Authenticate = (request: FastifyRequest) => Promise<Principal>;

const ASYMMETRIC_DEFAULT = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

interface TrustedIssuer {
  readonly config: IssuerConfig;
  readonly algorithms: ReadonlySet<string>;
  key(header: { kid?: string; alg: string }): Promise<string>;
}

class RejectedToken extends Error {}

function trustIssuer(config: IssuerConfig, cooldownMs: number): TrustedIssuer {
  const algorithms = new Set<string>(config.algorithms ?? (config.hmacSecret ? ['HS256'] : ASYMMETRIC_DEFAULT));
  if (config.publicKey || config.hmacSecret) {
    const key = (config.publicKey ?? config.hmacSecret) as string;
    return { config, algorithms, key: async () => key };
  }
  const url = config.jwksUri ? new URL(config.jwksUri) : undefined;
  const jwks = buildGetJwks({
    providerDiscovery: config.discovery,
    ...(url ? { jwksPath: url.pathname + url.search } : {}),
    ttl: 10 * 60_000,
  });
  const domain = url ? url.origin : config.issuer;
  const known = new Set<string>();
  let lastMiss = -Infinity;
  return {
    config,
    algorithms,
    async key({ kid, alg }) {
      if (!kid) throw new RejectedToken('the token has no kid');
      const id = `${alg}:${kid}`;
      // An unknown kid may mean the issuer rotated its keys: refresh once, then hold off, so
      // random kids cannot turn us into a request amplifier against the issuer's JWKS endpoint.
      if (!known.has(id)) {
        const now = Date.now();
        if (now - lastMiss < cooldownMs) throw new RejectedToken('unknown signing key');
        lastMiss = now;
      }
      try {
        const pem = await jwks.getPublicKey({ domain, alg, kid });
        if (!known.has(id)) {
          known.add(id);
          lastMiss = -Infinity;
        }
        return pem;
      } catch {
        throw new RejectedToken('unknown signing key');
      }
    },
  };
}

export function createAuthenticator(app: FastifyInstance, opts: AuthOptions): Authenticate {
  const byIssuer = new Map(opts.issuers.map((i) => [i.issuer, trustIssuer(i, opts.jwksRefreshCooldownMs ?? 10_000)]));
  const allAlgorithms = [...new Set([...byIssuer.values()].flatMap((i) => [...i.algorithms]))];

  app.register(fastifyJwt, {
    decode: { complete: true }, // the key callback needs the header (alg, kid) and payload (iss)
    secret: async (_request: FastifyRequest, token: unknown) => {
      const { header, payload } = token as { header: { kid?: string; alg: string }; payload: { iss?: unknown } };
      const issuer = typeof payload?.iss === 'string' ? byIssuer.get(payload.iss) : undefined;
      if (!issuer) throw new RejectedToken('untrusted issuer');
      if (!issuer.algorithms.has(header.alg)) throw new RejectedToken(`algorithm ${header.alg} is not allowed for this issuer`);
      return issuer.key(header);
    },
    verify: {
      algorithms: allAlgorithms as never,
      allowedIss: [...byIssuer.keys()],
      clockTolerance: opts.clockSkewSeconds * 1000,
      requiredClaims: ['exp', 'iss'],
      // Browsers and credential_process present the same token for many requests: a verified
      // token is remembered (bounded LRU, by token hash) until it expires or for a minute at most,
      // so its RSA/ECDSA signature is checked once, not per request. Issuer and algorithm checks
      // (the key callback above) still run on every request.
      cache: 1000,
      cacheTTL: 60_000,
      cacheKeyBuilder: (token: string) => token, // the token itself: no hash to compute per request
      // Accepts "Bearer <jwt>" and, for the AWS container-credentials route, the bare token
      // that AWS SDKs send from AWS_CONTAINER_AUTHORIZATION_TOKEN.
      extractToken: (request: FastifyRequest) => {
        const h = request.headers.authorization;
        if (!h) return undefined;
        if (/^Bearer\s+/i.test(h)) return h.replace(/^Bearer\s+/i, '').trim();
        return (request.routeOptions.config as { rawTokenAuth?: boolean }).rawTokenAuth ? h.trim() : undefined;
      },
    },
  });

  return async (request) => {
    if (!request.headers.authorization) throw new TokenMissing();
    let payload: Record<string, unknown>;
    try {
      payload = await request.jwtVerify<Record<string, unknown>>();
    } catch (err) {
      throw new TokenInvalid(reasonOf(err));
    }
    const issuer = byIssuer.get(payload.iss as string);
    if (!issuer) throw new TokenInvalid('untrusted issuer');
    const aud = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud.map(String) : [String(payload.aud)];
    if (!aud.some((a) => issuer.config.audiences.includes(a))) throw new TokenInvalid('audience not accepted');
    const subject = payload[issuer.config.subjectClaim];
    if (typeof subject !== 'string' || subject === '') throw new TokenInvalid(`missing ${issuer.config.subjectClaim} claim`);
    return { issuer: issuer.config.issuer, subject, audiences: aud, claims: payload };
  };
}

/** A short, fixed reason: library messages are not passed through (they may quote input). */
function reasonOf(err: unknown): string {
  if (err instanceof RejectedToken) return err.message;
  const e = err as { code?: string; message?: string; cause?: unknown };
  if (e.cause instanceof RejectedToken) return e.cause.message;
  switch (e.code) {
    case 'FST_JWT_NO_AUTHORIZATION_IN_HEADER':
    case 'FST_JWT_BAD_REQUEST':
      return 'expected "Authorization: Bearer <token>"';
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED':
      return 'expired';
    case 'FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED':
      return 'untrusted';
    default:
      break;
  }
  const m = e.message ?? '';
  if (/not active yet|inactive/i.test(m)) return 'not valid yet (nbf)';
  if (/iss/i.test(m) && /not allowed|invalid/i.test(m)) return 'untrusted issuer';
  if (/aud/i.test(m)) return 'audience not accepted';
  if (/algorithm/i.test(m)) return 'algorithm not allowed';
  if (/signature/i.test(m)) return 'invalid signature';
  if (/malformed|invalid token|format/i.test(m)) return 'malformed token';
  if (/required claim|missing/i.test(m)) return 'a required claim (exp, iss) is missing';
  return 'invalid token';
}
