// Authentication through the real @fastify/jwt plugin: every way a token can be wrong is a 401
// problem+json, audited, and reaches no AWS call.
import { createServer, type Server } from 'node:http';
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
const post = (authorization: string | undefined) =>
  h.app.inject({ method: 'POST', url: '/v1/credentials', headers: authorization === undefined ? {} : { authorization }, payload: body });

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
    expect401(await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { expiresIn: exp })}`), 'CV_TOKEN_INVALID', /expired/);
  });

  it('accepts a token expired by less than the clock skew', async () => {
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '30' } });
    const { privateKey } = await testKeys();
    const exp = Math.floor(Date.now() / 1000) - 5;
    const res = await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { expiresIn: exp })}`);
    expect(res.statusCode).toBe(200);
  });

  it('a verified token is remembered for speed, but never past its exp', async () => {
    // Attack stopped: the verification cache turning an expired token back into a valid one.
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '0' } });
    const { privateKey } = await testKeys();
    const token = await sign({ sub: 'alice' }, privateKey, { expiresIn: Math.floor(Date.now() / 1000) + 2 });
    expect((await post(`Bearer ${token}`)).statusCode).toBe(200);
    expect((await post(`Bearer ${token}`)).statusCode).toBe(200); // served from the cache
    await new Promise((r) => setTimeout(r, 2600));
    const late = await post(`Bearer ${token}`);
    expect(late.statusCode).toBe(401);
    expect(late.json()).toMatchObject({ code: 'CV_TOKEN_INVALID', detail: expect.stringMatching(/expired/) });
  });

  it('401 for a token not valid yet (nbf beyond the skew)', async () => {
    h = await buildHarness({ env: { CREDVEND_CLOCK_SKEW_SECONDS: '5' } });
    const { privateKey } = await testKeys();
    const res = await post(`Bearer ${await sign({ sub: 'alice', nbf: Math.floor(Date.now() / 1000) + 600 }, privateKey)}`);
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
    expect401(await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { audience: 'some-other-service' })}`), 'CV_TOKEN_INVALID', /audience/);
  });

  it('401 for an issuer outside the allow-list, even with a valid signature', async () => {
    h = await buildHarness();
    const { privateKey } = await testKeys();
    expect401(await post(`Bearer ${await sign({ sub: 'alice' }, privateKey, { issuer: 'https://evil.example.com' })}`), 'CV_TOKEN_INVALID', /issuer/);
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
    const forged = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').sign(new TextEncoder().encode(pem));
    expect401(await post(`Bearer ${forged}`), 'CV_TOKEN_INVALID', /algorithm/);
  });

  it('401 for a token with a tampered payload', async () => {
    h = await buildHarness();
    const [head, , sig] = (await h.token({ sub: 'alice' })).split('.');
    const now = Math.floor(Date.now() / 1000);
    expect401(await post(`Bearer ${head}.${b64url({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: now + 300 })}.${sig}`), 'CV_TOKEN_INVALID');
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
    expect(records[0]).toMatchObject({ event: 'credentials.denied', reason: 'unauthenticated', errorCode: 'CV_TOKEN_INVALID' });
    expect(h.audit.lines.join('\n')).not.toContain(token.split('.')[2]);
    expect(h.log.lines.join('\n')).not.toContain(token.split('.')[2]);
  });

  it('accepts an HMAC issuer only with HS* (local development)', async () => {
    const secret = 'dev-secret-dev-secret-dev-secret-0123';
    h = await buildHarness({ issuers: [{ issuer: 'http://dev.local', audiences: ['credvend'], hmacSecret: secret }], profiles: { dev: { roleArn: 'arn:aws:iam::123456789012:role/dev', bucket: 'dev-bucket', region: 'eu-west-1', prefix: 'dev/{sub}/', match: {} } } });
    const hs = await new SignJWT({ sub: 'dev' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('http://dev.local').setAudience('credvend').setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const ok = await h.app.inject({ method: 'POST', url: '/v1/credentials', headers: { authorization: `Bearer ${hs}` }, payload: { profile: 'dev', operation: 'upload', keys: ['x'] } });
    expect(ok.statusCode).toBe(200);
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

  it('verifies with keys fetched from the JWKS URL, caches them, and refreshes once for an unknown kid', async () => {
    const k1 = await generateKeyPair('RS256', { extractable: true });
    const k2 = await generateKeyPair('RS256', { extractable: true });
    const published = [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
    const jwks = await serveJwks(() => published);
    h = await buildHarness({ issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwksUri: jwks.url }] });

    const t1 = await sign({ sub: 'alice' }, k1.privateKey, { kid: 'k1' });
    expect((await post(`Bearer ${t1}`)).statusCode).toBe(200);
    expect((await post(`Bearer ${t1}`)).statusCode).toBe(200);
    expect(jwks.hits()).toBe(1); // cached

    // Key rotation: the issuer publishes k2; a token with the new kid triggers one refresh.
    published.push({ ...(await exportJWK(k2.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' });
    const t2 = await sign({ sub: 'alice' }, k2.privateKey, { kid: 'k2' });
    expect((await post(`Bearer ${t2}`)).statusCode).toBe(200);
    expect(jwks.hits()).toBe(2);
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
