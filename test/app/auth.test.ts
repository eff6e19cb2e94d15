// Authentication through the real app: every way a token can be wrong is a 401 problem+json
// (400 for an ambiguous request), audited, and reaches no AWS call. Tokens that must be accepted
// are shown to GET /v1/profiles, which authenticates exactly as issuance does but calls no STS.
// The JWKS key lifecycle against a switchable loopback issuer is in auth-jwks.test.ts, the pure
// token rules in test/unit/auth-token.test.ts.
import { generateKeyPairSync, KeyObject, sign as cryptoSign } from 'node:crypto';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { AUDIENCE, buildHarness, ISSUER, sign, testKeys, type Harness } from '../helpers/app.js';

let h: Harness;
let jwksServer: Server | undefined;
afterEach(async () => {
  await h?.close();
  await new Promise((r) => (jwksServer ? jwksServer.close(r) : r(undefined)));
  jwksServer = undefined;
});

const body = { profile: 'uploads', operation: 'upload', keys: ['a.txt'] };
const post = (authorization: string | string[] | undefined) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: (authorization === undefined ? {} : { authorization }) as OutgoingHttpHeaders,
    payload: body,
  });
/** Authenticates as issuance does, without an STS call: 200 means the token was accepted. */
const accepted = async (authorization: string) =>
  (await h.app.inject({ method: 'GET', url: '/v1/profiles', headers: { authorization } })).statusCode;

function expect401(res: Awaited<ReturnType<typeof post>>, code: string, detail?: RegExp) {
  expect(res.statusCode).toBe(401);
  expect(res.headers['content-type']).toContain('application/problem+json');
  const b = res.json();
  expect(b.code).toBe(code);
  if (detail) expect(b.detail).toMatch(detail);
  expect(h.sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

describe('authentication', () => {
  it('401 without a token', async () => {
    h = await buildHarness();
    expect401(await post(undefined), 'CV_TOKEN_MISSING');
  });

  it('401 for a bare token on the REST route (Bearer required there)', async () => {
    h = await buildHarness();
    expect401(await post(await h.token()), 'CV_TOKEN_INVALID');
  });

  it('401 for a token signed by another key (forgery)', async () => {
    h = await buildHarness();
    const other = await generateKeyPair('RS256');
    expect401(await post(`Bearer ${await sign({ sub: 'alice' }, other.privateKey)}`), 'CV_TOKEN_INVALID', /signature/);
  });

  it('401 for an expired token, also within a skew larger than configured', async () => {
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '5' } });
    const { privateKey } = await testKeys();
    const exp = Math.floor(Date.now() / 1000) - 60;
    expect401(
      await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { expiresIn: exp })}`),
      'CV_TOKEN_INVALID',
      /expired/,
    );
  });

  it('accepts a token expired by less than the clock skew', async () => {
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '30' } });
    const { privateKey } = await testKeys();
    const exp = Math.floor(Date.now() / 1000) - 5;
    expect(await accepted(`Bearer ${await sign({ sub: 'alice' }, privateKey, { expiresIn: exp })}`)).toBe(200);
  });

  it('a verified token is remembered for speed, but never past its exp', async () => {
    // Attack stopped: the verification cache turning an expired token back into a valid one.
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '0' } });
    const { privateKey } = await testKeys();
    const token = await sign({ sub: 'alice' }, privateKey, { expiresIn: Math.floor(Date.now() / 1000) + 2 });
    expect(await accepted(`Bearer ${token}`)).toBe(200);
    expect(await accepted(`Bearer ${token}`)).toBe(200); // served from the cache
    await new Promise((r) => setTimeout(r, 2600));
    const late = await post(`Bearer ${token}`);
    expect(late.statusCode).toBe(401);
    expect(late.json()).toMatchObject({ code: 'CV_TOKEN_INVALID', detail: expect.stringMatching(/expired/) });
  });

  it('401 for a token not valid yet (nbf beyond the skew)', async () => {
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '5' } });
    const { privateKey } = await testKeys();
    const res = await post(
      `Bearer ${await sign({ sub: 'alice', nbf: Math.floor(Date.now() / 1000) + 600 }, privateKey)}`,
    );
    expect401(res, 'CV_TOKEN_INVALID');
  });

  it('401 for a token without exp (replayable forever)', async () => {
    h = await buildHarness();
    const { privateKey } = await testKeys();
    expect401(await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { expiresIn: -1 })}`), 'CV_TOKEN_INVALID');
  });

  it('401 for a token minted for another audience', async () => {
    // Attack stopped: replaying a token a CI job got for another service.
    h = await buildHarness();
    const { privateKey } = await testKeys();
    expect401(
      await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { audience: 'some-other-service' })}`),
      'CV_TOKEN_INVALID',
      /audience/,
    );
  });

  it('401 for an issuer outside the allow-list, even with a valid signature', async () => {
    h = await buildHarness();
    const { privateKey } = await testKeys();
    expect401(
      await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { issuer: 'https://evil.example.com' })}`),
      'CV_TOKEN_INVALID',
      /issuer/,
    );
  });

  it('401 for alg "none" (unsigned token)', async () => {
    h = await buildHarness();
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: now + 300 })}.`;
    expect401(await post(`Bearer ${unsigned}`), 'CV_TOKEN_INVALID');
  });

  it('401 for HS256 signed with the public key of an RS256 issuer (algorithm confusion)', async () => {
    // Attack stopped: the public key is public; if HS256 were accepted with it as the HMAC
    // secret, anyone could mint tokens.
    h = await buildHarness();
    const pem = await exportSPKI((await testKeys()).publicKey);
    const forged = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(pem));
    expect401(await post(`Bearer ${forged}`), 'CV_TOKEN_INVALID', /algorithm/);
  });

  it('401 for a token with a tampered payload', async () => {
    h = await buildHarness();
    const [head, , sig] = (await h.token({ sub: 'alice' })).split('.');
    const now = Math.floor(Date.now() / 1000);
    expect401(
      await post(`Bearer ${head}.${b64url({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: now + 300 })}.${sig}`),
      'CV_TOKEN_INVALID',
    );
  });

  it('401 for garbage', async () => {
    h = await buildHarness();
    expect401(await post('Bearer not.a.jwt'), 'CV_TOKEN_INVALID');
    expect401(await post('Basic dXNlcjpwYXNz'), 'CV_TOKEN_INVALID');
  });

  it('audits a refused token as credentials.denied without the token', async () => {
    h = await buildHarness();
    const other = await generateKeyPair('RS256');
    const token = await sign({ sub: 'alice' }, other.privateKey);
    await post(`Bearer ${token}`);
    const records = h.audit.records();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      event: 'credentials.denied',
      reason: 'unauthenticated',
      errorCode: 'CV_TOKEN_INVALID',
    });
    expect(h.audit.lines.join('\n')).not.toContain(token.split('.')[2]);
    expect(h.log.lines.join('\n')).not.toContain(token.split('.')[2]);
  });

  it('accepts an HMAC issuer only with HS* (local development)', async () => {
    const secret = 'dev-secret-dev-secret-dev-secret-0123';
    h = await buildHarness({
      issuers: [{ issuer: 'http://dev.local', audiences: ['credvend'], hmacSecret: secret }],
      profiles: {
        dev: {
          roleArn: 'arn:aws:iam::123456789012:role/dev',
          bucket: 'dev-bucket',
          region: 'eu-west-1',
          prefix: 'dev/{sub}/',
          match: {},
        },
      },
    });
    const hs = await new SignJWT({ sub: 'dev' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('http://dev.local')
      .setAudience('credvend')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    expect(await accepted(`Bearer ${hs}`)).toBe(200);
  });
});

describe('JWKS issuers', () => {
  async function serveJwks(keys: () => unknown[]): Promise<{ url: string; hits: () => number }> {
    let hits = 0;
    jwksServer = createServer((req, res) => {
      hits += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: keys() }));
    });
    await new Promise<void>((r) => jwksServer!.listen(0, '127.0.0.1', r));
    const { port } = jwksServer.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/keys`, hits: () => hits };
  }

  it('verifies with keys fetched from the JWKS URL at start-up and caches them', async () => {
    const k1 = await generateKeyPair('RS256', { extractable: true });
    const published = [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
    const jwks = await serveJwks(() => published);
    h = await buildHarness({ issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwksUri: jwks.url }] });

    const t1 = await sign({ sub: 'alice' }, k1.privateKey, { kid: 'k1' });
    expect(await accepted(`Bearer ${t1}`)).toBe(200);
    expect(await accepted(`Bearer ${t1}`)).toBe(200);
    expect(jwks.hits()).toBe(1); // fetched once when the app became ready; rotation: auth-jwks.test.ts
  });

  it('does not let random kids flood the issuer JWKS endpoint', async () => {
    // Attack stopped: tokens with made-up kids turning the service into a request amplifier.
    const k1 = await generateKeyPair('RS256', { extractable: true });
    const published = [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256' }];
    const jwks2 = await serveJwks(() => published);
    h = await buildHarness({ issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwksUri: jwks2.url }] });
    for (let i = 0; i < 10; i += 1) {
      const t = await sign({ sub: 'alice' }, k1.privateKey, { kid: `random-${i}` });
      expect((await post(`Bearer ${t}`)).statusCode).toBe(401);
    }
    expect(jwks2.hits()).toBe(1);
  });
});

describe('strict tokens', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => `"iss":${JSON.stringify(ISSUER)},"aud":${JSON.stringify(AUDIENCE)},"exp":${now() + 300}`;

  /** Header and payload given as literal JSON text (duplicates and all), signed with the trusted key. */
  async function rawToken(header: string, payload: string): Promise<string> {
    const key = KeyObject.from((await testKeys()).privateKey);
    const input = `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
    return `${input}.${cryptoSign('sha256', Buffer.from(input), key).toString('base64url')}`;
  }

  it('accepts the literal JSON of rawToken when nothing is wrong (control)', async () => {
    h = await buildHarness();
    expect(await accepted(`Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice",${claims()}}`)}`)).toBe(200);
  });

  it('401 for duplicate members in the payload', async () => {
    // Attack stopped: "sub":"alice","sub":"mallory" got a grant under mallory (last member won).
    h = await buildHarness();
    expect401(
      await post(`Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice","sub":"mallory",${claims()}}`)}`),
      'CV_TOKEN_INVALID',
      /duplicate member/,
    );
    expect401(
      await post(
        `Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice","iss":"https://evil.example.com",${claims()}}`)}`,
      ),
      'CV_TOKEN_INVALID',
      /duplicate member/,
    );
  });

  it('401 for duplicate members in the JOSE header', async () => {
    // Attack stopped: {"alg":"none","alg":"RS256"}, read as unsigned by a component that takes the first.
    h = await buildHarness();
    expect401(
      await post(`Bearer ${await rawToken('{"alg":"none","alg":"RS256"}', `{"sub":"alice",${claims()}}`)}`),
      'CV_TOKEN_INVALID',
      /duplicate member/,
    );
  });

  it('401 for exp beyond the issuer maximum lifetime (default 24 h)', async () => {
    // Attack stopped: a leaked token with exp in year 9999 or 1e300 working forever.
    h = await buildHarness();
    for (const exp of ['253402300799', '1e300', String(now() + 86_400 + 3600)]) {
      const token = await rawToken(
        '{"alg":"RS256"}',
        `{"sub":"alice","iss":"${ISSUER}","aud":"${AUDIENCE}","exp":${exp}}`,
      );
      expect401(await post(`Bearer ${token}`), 'CV_TOKEN_INVALID', /lifetime exceeds/);
    }
  });

  it('honours a per-issuer maxTokenLifetimeSeconds', async () => {
    h = await buildHarness({
      issuers: [
        {
          issuer: ISSUER,
          audiences: [AUDIENCE],
          publicKey: await exportSPKI((await testKeys()).publicKey),
          algorithms: ['RS256'],
          maxTokenLifetimeSeconds: 600,
        },
      ],
    });
    expect(await accepted(`Bearer ${await h.token({ sub: 'alice' }, { expiresIn: '9m' })}`)).toBe(200);
    expect401(
      await post(`Bearer ${await h.token({ sub: 'alice' }, { expiresIn: '20m' })}`),
      'CV_TOKEN_INVALID',
      /lifetime exceeds/,
    );
  });

  it('401 for iat in the future beyond the clock skew, or not a number', async () => {
    // Attack stopped: tokens minted ahead of time (or on a wrong clock); "iat":"..." compared as text.
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '30' } });
    expect401(
      await post(`Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice","iat":${now() + 86_400},${claims()}}`)}`),
      'CV_TOKEN_INVALID',
      /iat/,
    );
    expect401(
      await post(`Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice","iat":"${now()}",${claims()}}`)}`),
      'CV_TOKEN_INVALID',
      /must be numbers/,
    );
    expect(
      await accepted(`Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice","iat":${now() + 10},${claims()}}`)}`),
    ).toBe(200);
  });

  it('401 for a kid that is not a string', async () => {
    // Attack stopped: ["k1"] or 7 matching a cached key "k1" / "7" through string coercion.
    h = await buildHarness();
    for (const kid of ['["k1"]', '7', '{"k":1}']) {
      expect401(
        await post(`Bearer ${await rawToken(`{"alg":"RS256","kid":${kid}}`, `{"sub":"alice",${claims()}}`)}`),
        'CV_TOKEN_INVALID',
        /kid must be a string/,
      );
    }
  });

  it('refuses an RSA public key under 2048 bits at start-up', async () => {
    // Attack stopped: a factorable configured key letting anyone mint tokens for as long as it runs.
    const weak = generateKeyPairSync('rsa', { modulusLength: 512 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    await expect(
      buildHarness({ issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], publicKey: weak, algorithms: ['RS256'] }] }),
    ).rejects.toThrow(/512 bits/);
  });

  it('400 problem+json for two Authorization headers', async () => {
    // Attack stopped: a proxy checking one header while we use the other (Node keeps the first).
    h = await buildHarness();
    const good = await h.token();
    const res = await post([`Bearer ${good}`, 'Bearer x.y.z']);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'CV_BAD_REQUEST', detail: 'send exactly one Authorization header' });
    expect(h.sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('401 for anything but spaces between Bearer and the token', async () => {
    // Attack stopped: NBSP or tab separators that an intermediary parses differently from us.
    h = await buildHarness();
    const token = await h.token();
    for (const sep of ['\u00a0', '\t', ''])
      expect401(await post(`Bearer${sep}${token}`), 'CV_TOKEN_INVALID', /expected "Authorization: Bearer <token>"/);
    expect401(await post(`Bearer ${token} extra`), 'CV_TOKEN_INVALID');
  });

  it('accepts what the RFCs allow: any case of "Bearer", and an aud array with one of ours', async () => {
    h = await buildHarness();
    const token = await h.token();
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) expect(await accepted(`${scheme} ${token}`)).toBe(200);
    expect(await accepted(`Bearer  ${token}`)).toBe(200); // RFC 9110: 1*SP
    expect(
      await accepted(
        `Bearer ${await rawToken('{"alg":"RS256"}', `{"sub":"alice","iss":"${ISSUER}","aud":["other","${AUDIENCE}"],"exp":${now() + 300}}`)}`,
      ),
    ).toBe(200);
  });

  it('never echoes caller-chosen text in the error detail', async () => {
    // Attack stopped: reflected content (log/HTML injection, oversized bodies) through the 401 detail.
    h = await buildHarness();
    const alg = `<script>alert(1)</script>${'A'.repeat(4000)}`;
    const res = await post(`Bearer ${await rawToken(JSON.stringify({ alg }), `{"sub":"alice",${claims()}}`)}`);
    expect401(res, 'CV_TOKEN_INVALID');
    expect(res.json().detail).toBe('The token was rejected: algorithm not allowed for this issuer');
    expect(res.body).not.toContain('<script>');
  });

  it("does not print fast-jwt's cache-key security warning (no custom cache key builder)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? w.name);
    process.on('warning', onWarning);
    try {
      h = await buildHarness();
      await accepted(`Bearer ${await h.token()}`);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('FAST_JWT_CACHE_KEY_BUILDER_SECURITY_RISK');
  });
});
