// The other routes: profiles, AWS container-credentials, health/readiness, CORS, security
// headers and the per-subject rate limit.
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHarness, type Harness } from '../helpers/app.js';

let h: Harness;
afterEach(async () => h?.close());

const ciClaims = { sub: 'ci-job', project_path: 'group/app', ref_protected: 'true', environment: 'staging' };

describe('GET /v1/profiles', () => {
  it('lists only the profiles this token matches, with the prefix it would get', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/profiles',
      headers: { authorization: `Bearer ${await h.token({ sub: 'alice' })}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const names = res.json().profiles.map((p: { name: string }) => p.name);
    expect(names).toEqual(['uploads', 'kms']);
    expect(res.json().profiles[0]).toMatchObject({
      prefix: 'uploads/alice/',
      operations: ['upload', 'download'],
      maxDurationSeconds: 1800,
    });

    const ci = await h.app.inject({
      method: 'GET',
      url: '/v1/profiles',
      headers: { authorization: `Bearer ${await h.token(ciClaims)}` },
    });
    expect(ci.json().profiles.map((p: { name: string }) => p.name)).toEqual(['uploads', 'ci', 'kms']);
    expect(ci.json().profiles[1]).toMatchObject({ prefix: 'ci/group~2Fapp/', maxDurationSeconds: 3600 });
  });

  it('401 without a token', async () => {
    h = await buildHarness();
    expect((await h.app.inject({ method: 'GET', url: '/v1/profiles' })).statusCode).toBe(401);
  });
});

describe('GET /v1/container-credentials/:profile', () => {
  it('answers the AWS container-credentials shape for the bare token the SDKs send', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/container-credentials/uploads?operation=upload&key=a.txt&key=b.txt',
      headers: { authorization: await h.token() },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(Object.keys(res.json()).sort()).toEqual(['AccessKeyId', 'Expiration', 'SecretAccessKey', 'Token']);
    const policy = JSON.parse(h.sts.commandCalls(AssumeRoleCommand)[0]!.args[0].input.Policy!);
    expect(policy.Statement[0].Resource).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/alice/a.txt',
      'arn:aws:s3:::tenant-bucket/uploads/alice/b.txt',
    ]);
  });

  it('accepts Bearer too, and applies the same rules (prefix grants refused here)', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/container-credentials/uploads?operation=upload&prefix=x/',
      headers: { authorization: `Bearer ${await h.token()}` },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('CV_PREFIX_FORBIDDEN');
  });

  it('400 without key or prefix', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/container-credentials/uploads?operation=upload',
      headers: { authorization: await h.token() },
    });
    expect(res.statusCode).toBe(400);
  });
});

describe('health and readiness', () => {
  it('/healthz is always 200; /readyz and issuance are 503 until ready', async () => {
    h = await buildHarness();
    h.readiness.set('starting');
    expect((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${await h.token()}` },
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('CV_NOT_READY');
    h.readiness.set('ready');
    expect((await h.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});

describe('browser support', () => {
  it('CORS: allow-listed origins only', async () => {
    h = await buildHarness({ env: { CREDVEND_CORS_ORIGINS: 'https://app.example.com' } });
    const pre = await h.app.inject({
      method: 'OPTIONS',
      url: '/v1/credentials',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const evil = await h.app.inject({
      method: 'OPTIONS',
      url: '/v1/credentials',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
    });
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  // Attack: a web page on any origin calling the API from a victim's browser. With no origin
  // listed (the default) no answer carries a CORS grant, so the browser withholds every answer.
  it('CORS: none listed, no origin is granted', async () => {
    h = await buildHarness();
    const pre = await h.app.inject({
      method: 'OPTIONS',
      url: '/v1/credentials',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(pre.statusCode).toBeGreaterThanOrEqual(400);
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/profiles',
      headers: { origin: 'https://app.example.com' },
    });
    for (const r of [pre, res])
      expect(Object.keys(r.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });

  it('sends security headers', async () => {
    h = await buildHarness();
    const res = await h.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers['strict-transport-security']).toBeDefined();
  });
});

describe('rate limit', () => {
  it('limits per verified subject, not per address', async () => {
    h = await buildHarness({ env: { CREDVEND_RATE_LIMIT_MAX: '2', CREDVEND_RATE_LIMIT_WINDOW: '1 minute' } });
    const call = async (sub: string) =>
      h.app.inject({
        method: 'POST',
        url: '/v1/credentials',
        headers: { authorization: `Bearer ${await h.token({ sub })}` },
        payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
      });
    expect((await call('alice')).statusCode).toBe(200);
    expect((await call('alice')).statusCode).toBe(200);
    const limited = await call('alice');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('CV_RATE_LIMITED');
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await call('bob')).statusCode).toBe(200); // same address, other subject
    expect(h.sts.commandCalls(AssumeRoleCommand)).toHaveLength(3);
  });
});
