// Strict reading of a compact JWS and of the registered JWT claims. Pure: no Fastify, no network.
//
// Threats: parser differentials (duplicate members, non-canonical base64url, invalid UTF-8 are
// refused, so every component reads the same token), type confusion (`kid` must be a string,
// `exp`/`nbf`/`iat` must be numbers: `["k1"]` or `"1700000000"` never coerce to something cached
// or compared), near-eternal tokens (`exp` in year 9999 or 1e300 exceeds the per-issuer maximum
// lifetime, so a leaked token cannot outlive its issuer's normal rotation), back-dated minting
// clocks (`iat` in the future beyond the skew), and unknown critical extensions (`crit`).
// Every rejection carries one of a fixed set of reasons: a caller's text is never echoed.
import { asList } from '../one-or-many.js';
import { isJsonObject, parseStrictJson, StrictJsonError, type JsonObject, type JsonValue } from './strict-json.js';

export type RejectReason =
  | 'malformed token'
  | 'duplicate member in the token'
  | 'kid must be a string'
  | 'the token has no kid'
  | 'unsupported critical header'
  | 'untrusted issuer'
  | 'algorithm not allowed for this issuer'
  | 'a required claim (exp, iss) is missing'
  | 'exp, nbf and iat must be numbers'
  | 'expired'
  | 'not valid yet (nbf)'
  | 'issued in the future (iat)'
  | 'lifetime exceeds the issuer maximum'
  | 'audience not accepted'
  | 'invalid signature'
  | 'unknown signing key'
  | 'signing keys unavailable'
  | 'subject claim missing';

/** A token refused for a fixed, caller-independent reason. */
export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';
  constructor(readonly reason: RejectReason) {
    super(reason);
  }
}

export interface ParsedToken {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly header: JsonObject;
  readonly payload: JsonObject;
  /** `header.payload` exactly as received: what the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

// A real ID token is 1-2 KB; the bound keeps hashing and parsing cheap for junk.
export const MAX_TOKEN_LENGTH = 16_384;
const MAX_KID_LENGTH = 256;
const COMPACT = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function b64url(part: string): Buffer {
  const buf = Buffer.from(part, 'base64url');
  // Buffer's decoder skips stray bits and characters; a canonical encoding has exactly one form.
  if (buf.toString('base64url') !== part) throw new TokenRejectedError('malformed token');
  return buf;
}

function jsonObject(part: string): JsonObject {
  let v: JsonValue;
  try {
    v = parseStrictJson(utf8.decode(b64url(part)));
  } catch (err) {
    if (err instanceof TokenRejectedError) throw err;
    if (err instanceof StrictJsonError && err.message === 'duplicate member')
      throw new TokenRejectedError('duplicate member in the token');
    throw new TokenRejectedError('malformed token');
  }
  if (!isJsonObject(v)) throw new TokenRejectedError('malformed token');
  return deepFreeze(v);
}

/**
 * Frozen, a verified token's claims read the same to every check, template and memoised plan
 * (src/policy/plan-memo.ts) for as long as the token is cached. Depth is bounded by the parser.
 */
function deepFreeze<T extends JsonValue>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const inner of Object.values(v)) deepFreeze(inner);
    Object.freeze(v);
  }
  return v;
}

export function parseToken(token: string): ParsedToken {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenRejectedError('malformed token');
  const m = COMPACT.exec(token);
  if (!m) throw new TokenRejectedError('malformed token');
  const [, h, p, s] = m as unknown as [string, string, string, string];
  const header = jsonObject(h);
  const payload = jsonObject(p);
  const signature = b64url(s);
  if (typeof header.alg !== 'string') throw new TokenRejectedError('malformed token');
  if (
    header.kid !== undefined &&
    (typeof header.kid !== 'string' || header.kid === '' || header.kid.length > MAX_KID_LENGTH)
  ) {
    throw new TokenRejectedError('kid must be a string');
  }
  // RFC 7515 §4.1.11: extensions listed in crit must be understood; we implement none.
  if (header.crit !== undefined) throw new TokenRejectedError('unsupported critical header');
  return { alg: header.alg, kid: header.kid, header, payload, signingInput: `${h}.${p}`, signature };
}

export interface ClaimRules {
  /** Milliseconds since the epoch. */
  readonly now: number;
  readonly clockSkewSeconds: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly audiences: readonly string[];
}

const isNumericDate = (v: JsonValue | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks exp / nbf / iat / aud; returns the token's audiences. */
export function checkClaims(payload: JsonObject, rules: ClaimRules): readonly string[] {
  const now = rules.now / 1000;
  const skew = rules.clockSkewSeconds;
  const { exp, nbf, iat } = payload;
  if (exp === undefined || typeof payload.iss !== 'string')
    throw new TokenRejectedError('a required claim (exp, iss) is missing');
  if (!isNumericDate(exp) || (nbf !== undefined && !isNumericDate(nbf)) || (iat !== undefined && !isNumericDate(iat))) {
    throw new TokenRejectedError('exp, nbf and iat must be numbers');
  }
  if (exp <= now - skew) throw new TokenRejectedError('expired');
  if (exp > now + rules.maxTokenLifetimeSeconds + skew)
    throw new TokenRejectedError('lifetime exceeds the issuer maximum');
  if (nbf !== undefined && nbf > now + skew) throw new TokenRejectedError('not valid yet (nbf)');
  if (iat !== undefined && iat > now + skew) throw new TokenRejectedError('issued in the future (iat)');
  const aud = asList(payload.aud) ?? [];
  const list = aud.every((a): a is string => typeof a === 'string') ? aud : [];
  if (!list.some((a) => rules.audiences.includes(a))) throw new TokenRejectedError('audience not accepted');
  return list;
}
