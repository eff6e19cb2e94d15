// JWS signature verification (RFC 7515 / RFC 7518) on node:crypto, and the rules for which key may
// verify which algorithm.
//
// Threats: algorithm confusion (each `alg` is bound to one key type and curve here, so an RSA
// public key can never serve as an HMAC secret, an ES256 token never verifies with a P-384 key),
// weak keys (RSA under 2048 bits is factorable for a motivated attacker: refused for JWKS and PEM
// keys alike), and malleable signatures (ECDSA signatures must have the exact JOSE length; PSS uses
// the salt length RFC 7518 fixes).
import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

export const MIN_RSA_BITS = 2048;

type Rule =
  | { readonly family: 'rsa'; readonly hash: string }
  | { readonly family: 'pss'; readonly hash: string }
  | { readonly family: 'ec'; readonly hash: string; readonly curve: string; readonly size: number }
  | { readonly family: 'eddsa' }
  | { readonly family: 'hmac'; readonly hash: string };

const RULES: Readonly<Record<string, Rule>> = {
  RS256: { family: 'rsa', hash: 'sha256' },
  RS384: { family: 'rsa', hash: 'sha384' },
  RS512: { family: 'rsa', hash: 'sha512' },
  PS256: { family: 'pss', hash: 'sha256' },
  PS384: { family: 'pss', hash: 'sha384' },
  PS512: { family: 'pss', hash: 'sha512' },
  ES256: { family: 'ec', hash: 'sha256', curve: 'prime256v1', size: 64 },
  ES384: { family: 'ec', hash: 'sha384', curve: 'secp384r1', size: 96 },
  ES512: { family: 'ec', hash: 'sha512', curve: 'secp521r1', size: 132 },
  EdDSA: { family: 'eddsa' },
  HS256: { family: 'hmac', hash: 'sha256' },
  HS384: { family: 'hmac', hash: 'sha384' },
  HS512: { family: 'hmac', hash: 'sha512' },
};

export const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.keys(RULES).filter((a) => RULES[a]?.family !== 'hmac');

/** A verification key: an asymmetric public key, or the HMAC secret of a development issuer. */
export type VerificationKey =
  { readonly kind: 'public'; readonly key: KeyObject } | { readonly kind: 'secret'; readonly secret: Buffer };

/** Why a public key may not be used at all (too weak, not a public key), or undefined. */
export function keyWeakness(key: KeyObject): string | undefined {
  if (key.type !== 'public') return 'not a public key';
  const t = key.asymmetricKeyType;
  if (t === 'rsa' || t === 'rsa-pss') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return `RSA key of ${bits} bits (at least ${MIN_RSA_BITS} required)`;
  }
  return undefined;
}

/** Whether `key` is the kind of key `alg` is defined for. */
export function keyFitsAlgorithm(key: VerificationKey, alg: string): boolean {
  const rule = RULES[alg];
  if (!rule) return false;
  if (rule.family === 'hmac') return key.kind === 'secret';
  if (key.kind !== 'public' || keyWeakness(key.key) !== undefined) return false;
  const t = key.key.asymmetricKeyType;
  switch (rule.family) {
    case 'rsa':
      return t === 'rsa';
    case 'pss':
      return t === 'rsa' || t === 'rsa-pss';
    case 'ec':
      return t === 'ec' && key.key.asymmetricKeyDetails?.namedCurve === rule.curve;
    case 'eddsa':
      return t === 'ed25519' || t === 'ed448';
  }
}

/** Checks the signature over `signingInput` (ASCII header.payload). False on any mismatch. */
export function verifySignature(alg: string, key: VerificationKey, signingInput: string, signature: Buffer): boolean {
  const rule = RULES[alg];
  if (!rule || !keyFitsAlgorithm(key, alg)) return false;
  const data = Buffer.from(signingInput, 'ascii');
  try {
    if (rule.family === 'hmac') {
      if (key.kind !== 'secret') return false;
      const mac = createHmac(rule.hash, key.secret).update(data).digest();
      return mac.length === signature.length && timingSafeEqual(mac, signature);
    }
    if (key.kind !== 'public') return false;
    switch (rule.family) {
      case 'rsa':
        return verify(rule.hash, data, key.key, signature);
      case 'pss':
        return verify(
          rule.hash,
          data,
          { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
          signature,
        );
      case 'ec':
        return (
          signature.length === rule.size &&
          verify(rule.hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, signature)
        );
      case 'eddsa':
        return verify(null, data, key.key, signature);
    }
  } catch {
    // OpenSSL refuses some malformed signatures by throwing rather than returning false.
    return false;
  }
}
