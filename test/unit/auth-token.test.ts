// The pure token rules (src/auth/strict-json.ts, token.ts, jws.ts): each test names the attack it stops.
import { constants, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyFitsAlgorithm, keyWeakness, verifySignature } from '../../src/auth/jws.js';
import { parseStrictJson, StrictJsonError } from '../../src/auth/strict-json.js';
import { checkClaims, parseToken, TokenRejectedError, type RejectReason } from '../../src/auth/token.js';

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const raw = (header: string, payload: string, sig = 'c2ln') => `${b64(header)}.${b64(payload)}.${sig}`;

function rejected(fn: () => unknown): RejectReason {
  try {
    fn();
  } catch (err) {
    if (err instanceof TokenRejectedError) return err.reason;
    throw err;
  }
  throw new Error('not rejected');
}

const NOW = 1_800_000_000_000;
const rules = { now: NOW, clockSkewSeconds: 30, maxTokenLifetimeSeconds: 86_400, audiences: ['credvend'] };
const now = NOW / 1000;

describe('strict JSON', () => {
  it('refuses a duplicate member, at any depth', () => {
    // Attack stopped: {"sub":"alice","sub":"mallory"} read as alice by one component and mallory by another.
    expect(() => parseStrictJson('{"sub":"alice","sub":"mallory"}')).toThrow(StrictJsonError);
    expect(() => parseStrictJson('{"a":{"b":1,"b":2}}')).toThrow(StrictJsonError);
    // Escapes do not hide a duplicate: "\u0073ub" is "sub".
    expect(() => parseStrictJson('{"sub":"a","\\u0073ub":"b"}')).toThrow(StrictJsonError);
  });

  it('keeps __proto__ as plain data, never as a prototype', () => {
    // Attack stopped: prototype pollution through a claim named __proto__.
    const v = parseStrictJson('{"__proto__":{"admin":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('bounds nesting, so no token can exhaust the stack', () => {
    expect(() => parseStrictJson('['.repeat(10_000) + ']'.repeat(10_000))).toThrow(StrictJsonError);
  });

  it('reads what JSON.parse reads for well-formed input', () => {
    const text = '{"s":"a\\"b\\u00e9","n":-1.5e3,"t":true,"f":false,"z":null,"a":[1,{"x":[]}]}';
    expect(parseStrictJson(text)).toEqual(JSON.parse(text));
    for (const bad of ['{"a":1,}', '{a:1}', "{'a':1}", '{"a":01}', '{"a":"\t"}', '{"a":1} x', '{"a":"\\x"}', 'NaN']) {
      expect(() => parseStrictJson(bad), bad).toThrow(StrictJsonError);
    }
  });
});

describe('token parsing', () => {
  const payload = JSON.stringify({ iss: 'https://idp', exp: now + 60 });

  it('refuses duplicate members in the JOSE header', () => {
    // Attack stopped: {"alg":"none","alg":"RS256"}: a verifier reading the first member skips the signature.
    expect(rejected(() => parseToken(raw('{"alg":"none","alg":"RS256"}', payload)))).toBe(
      'duplicate member in the token',
    );
  });

  it('refuses duplicate members in the payload', () => {
    // Attack stopped: "sub":"alice","sub":"mallory" granting under mallory.
    expect(rejected(() => parseToken(raw('{"alg":"RS256"}', '{"sub":"alice","sub":"mallory","exp":1}')))).toBe(
      'duplicate member in the token',
    );
  });

  it('refuses a kid that is not a string', () => {
    // Attack stopped: ["k1"] or 7 matching the cached key "k1"/"7" once coerced to a string.
    expect(rejected(() => parseToken(raw('{"alg":"RS256","kid":["k1"]}', payload)))).toBe('kid must be a string');
    expect(rejected(() => parseToken(raw('{"alg":"RS256","kid":7}', payload)))).toBe('kid must be a string');
    expect(rejected(() => parseToken(raw('{"alg":"RS256","kid":""}', payload)))).toBe('kid must be a string');
    expect(parseToken(raw('{"alg":"RS256","kid":"k1"}', payload)).kid).toBe('k1');
  });

  it('refuses non-canonical base64url, invalid UTF-8, crit and non-JWS shapes', () => {
    // Attack stopped: two encodings of one token (cache and log confusion), unknown critical extensions.
    const good = raw('{"alg":"RS256"}', payload);
    const [h, p] = good.split('.');
    expect(rejected(() => parseToken(`${h}.${p}.AB`))).toBe('malformed token'); // stray low bits: "AA" is the canonical form
    expect(rejected(() => parseToken(`${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.${p}.c2ln`))).toBe(
      'malformed token',
    );
    expect(rejected(() => parseToken(raw('{"alg":"RS256","crit":["exp"]}', payload)))).toBe(
      'unsupported critical header',
    );
    expect(rejected(() => parseToken(`${h}.${p}.`))).toBe('malformed token');
    expect(rejected(() => parseToken(`${h}.${p}.c2ln.x`))).toBe('malformed token');
    expect(rejected(() => parseToken(`${h}.${p}.${'A'.repeat(20_000)}`))).toBe('malformed token');
  });
});

describe('claims', () => {
  const claims = (c: Record<string, unknown>) =>
    parseStrictJson(JSON.stringify({ iss: 'https://idp', aud: 'credvend', ...c })) as never;

  it('refuses exp further ahead than the issuer maximum lifetime', () => {
    // Attack stopped: a leaked token with exp in year 9999 (or 1e300) usable forever.
    expect(rejected(() => checkClaims(claims({ exp: 253_402_300_799 }), rules))).toBe(
      'lifetime exceeds the issuer maximum',
    );
    expect(rejected(() => checkClaims(claims({ exp: 1e300 }), rules))).toBe('lifetime exceeds the issuer maximum');
    expect(rejected(() => checkClaims(claims({ exp: now + 86_400 + 31 }), rules))).toBe(
      'lifetime exceeds the issuer maximum',
    );
    expect(checkClaims(claims({ exp: now + 86_400 }), rules)).toEqual(['credvend']);
  });

  it('refuses iat in the future beyond the clock skew, and non-numeric times', () => {
    // Attack stopped: a token minted on a wrong clock, or "1700000000" compared as a string.
    expect(rejected(() => checkClaims(claims({ exp: now + 60, iat: now + 86_400 }), rules))).toBe(
      'issued in the future (iat)',
    );
    expect(checkClaims(claims({ exp: now + 60, iat: now + 20 }), rules)).toEqual(['credvend']);
    expect(rejected(() => checkClaims(claims({ exp: now + 60, iat: String(now) }), rules))).toBe(
      'exp, nbf and iat must be numbers',
    );
    expect(rejected(() => checkClaims(claims({ exp: String(now + 60) }), rules))).toBe(
      'exp, nbf and iat must be numbers',
    );
    expect(rejected(() => checkClaims(claims({ exp: now + 60, nbf: null }), rules))).toBe(
      'exp, nbf and iat must be numbers',
    );
  });

  it('accepts an aud array that contains one of ours; refuses non-string members', () => {
    // RFC 7519 §4.1.3 allows an array; [7] or [{}] must not match by coercion.
    expect(checkClaims(claims({ exp: now + 60, aud: ['other', 'credvend'] }), rules)).toEqual(['other', 'credvend']);
    expect(rejected(() => checkClaims(claims({ exp: now + 60, aud: ['credvend', 7] }), rules))).toBe(
      'audience not accepted',
    );
    expect(rejected(() => checkClaims(claims({ exp: now + 60, aud: [] }), rules))).toBe('audience not accepted');
  });
});

describe('signature keys', () => {
  const data = 'aGVhZGVy.cGF5bG9hZA';

  it('refuses RSA keys under 2048 bits', () => {
    // Attack stopped: a 512-bit modulus is factored in hours on rented hardware; then anyone signs.
    const weak = generateKeyPairSync('rsa', { modulusLength: 512 });
    expect(keyWeakness(weak.publicKey)).toMatch(/512 bits/);
    const sig = cryptoSign('sha256', Buffer.from(data), weak.privateKey);
    expect(verifySignature('RS256', { kind: 'public', key: weak.publicKey }, data, sig)).toBe(false);
    expect(keyWeakness(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)).toBeUndefined();
  });

  it('binds each algorithm to one key type and curve', () => {
    // Attack stopped: algorithm confusion (an RSA public key as an HMAC secret, ES256 over a P-384 key).
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    expect(keyFitsAlgorithm({ kind: 'public', key: rsa }, 'HS256')).toBe(false);
    expect(keyFitsAlgorithm({ kind: 'public', key: rsa }, 'ES256')).toBe(false);
    expect(keyFitsAlgorithm({ kind: 'public', key: p384 }, 'ES256')).toBe(false);
    expect(keyFitsAlgorithm({ kind: 'public', key: p384 }, 'ES384')).toBe(true);
    expect(keyFitsAlgorithm({ kind: 'secret', secret: Buffer.from('x'.repeat(32)) }, 'RS256')).toBe(false);
    expect(keyFitsAlgorithm({ kind: 'public', key: rsa }, 'none')).toBe(false);
  });

  it('verifies RS, PS, ES and EdDSA signatures and refuses malleated ones', () => {
    const check = (alg: string, pub: KeyObject, sig: Buffer) =>
      verifySignature(alg, { kind: 'public', key: pub }, data, sig);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pss = cryptoSign('sha256', Buffer.from(data), {
      key: rsa.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    expect(check('PS256', rsa.publicKey, pss)).toBe(true);
    expect(check('RS256', rsa.publicKey, pss)).toBe(false);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es = cryptoSign('sha256', Buffer.from(data), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    expect(check('ES256', ec.publicKey, es)).toBe(true);
    // The DER form of the same signature is another encoding: JOSE allows exactly 64 bytes.
    expect(check('ES256', ec.publicKey, cryptoSign('sha256', Buffer.from(data), ec.privateKey))).toBe(false);
    const ed = generateKeyPairSync('ed25519');
    expect(check('EdDSA', ed.publicKey, cryptoSign(null, Buffer.from(data), ed.privateKey))).toBe(true);
    expect(check('EdDSA', createPublicKey(ed.privateKey), Buffer.alloc(64))).toBe(false);
  });
});

describe('parsed claims', () => {
  it('are frozen at every depth', () => {
    // Attack stopped: claims changed after authorization (by a bug anywhere on the request path)
    // while the plan memoised from them (src/policy/plan-memo.ts) is still served.
    const t = parseToken(
      raw('{"alg":"RS256"}', '{"sub":"alice","groups":["a"],"kubernetes.io":{"namespace":"ns","sa":{"name":"x"}}}'),
    );
    const k8s = t.payload['kubernetes.io'] as Record<string, unknown>;
    for (const v of [t.payload, t.payload.groups, k8s, k8s.sa]) expect(Object.isFrozen(v)).toBe(true);
    expect(() => {
      (t.payload as Record<string, unknown>).sub = 'mallory';
    }).toThrow(TypeError);
  });
});
