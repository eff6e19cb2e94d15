// Error mapping (docs/design.md §4): caller mistakes are 4xx with a stable CV_* code; upstream failures
// are 5xx without SDK text; every body is problem+json with a requestId and no stack trace.
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHarness, type Harness } from '../helpers/app.js';

let h: Harness;
afterEach(async () => h?.close());

const SDK_SECRET_TEXT =
  'User: arn:aws:sts::123456789012:assumed-role/credvend-task/i-0abc is not authorized internal-detail-xyz';

function sdkError(name: string, status: number | undefined, extra: Record<string, unknown> = {}): Error {
  const e = new Error(SDK_SECRET_TEXT) as Error & Record<string, unknown>;
  e.name = name;
  if (status !== undefined) e.$metadata = { httpStatusCode: status };
  Object.assign(e, extra);
  return e;
}

async function issueWith(err: Error) {
  h = await buildHarness();
  h.sts.on(AssumeRoleCommand).rejects(err);
  return h.app.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: { authorization: `Bearer ${await h.token()}` },
    payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
  });
}

describe('STS failures map to 5xx (or 422) without SDK text', () => {
  it.each([
    ['AccessDenied', 403, 502, 'CV_STS_ACCESS_DENIED'],
    ['Throttling', 400, 503, 'CV_STS_THROTTLED'],
    ['PackedPolicyTooLarge', 400, 422, 'CV_STS_POLICY_TOO_LARGE'],
    ['TimeoutError', undefined, 504, 'CV_STS_TIMEOUT'],
    ['MalformedPolicyDocument', 400, 502, 'CV_STS_REJECTED'],
    // S3-compatible servers (Ceph RGW) answer in S3's XML shape: the SDK names these by status.
    ['NotFound', 404, 502, 'CV_STS_REJECTED'],
    ['Unknown', 400, 502, 'CV_STS_REJECTED'],
    ['Unknown', 403, 502, 'CV_STS_ACCESS_DENIED'],
    ['InternalFailure', 500, 502, 'CV_STS_UNAVAILABLE'],
    ['ECONNREFUSED', undefined, 502, 'CV_STS_UNAVAILABLE'],
  ])('%s (HTTP %s) -> %s %s', async (name, status, expected, code) => {
    const res = await issueWith(sdkError(name, status));
    expect(res.statusCode).toBe(expected);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json();
    expect(body).toMatchObject({ status: expected, code });
    expect(body.requestId).toBe(res.headers['x-request-id']);
    expect(res.body).not.toContain('internal-detail-xyz');
    expect(res.body).not.toContain('assumed-role');
    expect(res.body).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
    expect(h.audit.records().filter((r) => r.event === 'credentials.failed')).toHaveLength(1);
  });

  it('throttling answers Retry-After', async () => {
    const res = await issueWith(sdkError('ThrottlingException', 400, { $retryable: { throttling: true } }));
    expect(res.statusCode).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('an unexpected internal error is an opaque 500', async () => {
    h = await buildHarness();
    h.sts.on(AssumeRoleCommand).resolves({}); // no Credentials in the answer
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${await h.token()}` },
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(502);
    expect(res.json().code).toBe('CV_STS_UNAVAILABLE');
  });
});

describe('caller mistakes are 4xx problem+json', () => {
  const auth = async () => ({ authorization: `Bearer ${await h.token()}` });

  it('403 before any AWS call when the token matches no rule of the profile', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: await auth(),
      payload: { profile: 'ci', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('CV_PROFILE_FORBIDDEN');
    expect(h.sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    expect(h.audit.records()).toMatchObject([
      { event: 'credentials.denied', reason: 'profile_mismatch', profile: 'ci' },
    ]);
  });

  it('403 for another team: a glob does not match a look-alike project path', async () => {
    // Attack stopped: project "evilgroup/app" passing the rule `project_path: group/*`.
    h = await buildHarness();
    const token = await h.token({
      sub: 'x',
      project_path: 'evilgroup/app',
      ref_protected: 'true',
      environment: 'production',
    });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${token}` },
      payload: { profile: 'ci', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(403);
  });

  it('403 when a claim the rules need is missing (fail closed)', async () => {
    h = await buildHarness();
    const token = await h.token({ sub: 'x', project_path: 'group/app', environment: 'production' }); // no ref_protected
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${token}` },
      payload: { profile: 'ci', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(403);
    expect(h.sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('403 for an operation the profile does not allow', async () => {
    h = await buildHarness();
    const token = await h.token({
      sub: 'x',
      project_path: 'group/app',
      ref_protected: 'true',
      environment: 'production',
    });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${token}` },
      payload: { profile: 'ci', operation: 'download', keys: ['a'] },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('CV_OPERATION_FORBIDDEN');
  });

  it('404 for an unknown profile', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: await auth(),
      payload: { profile: 'nope', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('CV_PROFILE_UNKNOWN');
  });

  it.each([
    ['no body', undefined],
    ['both keys and prefix', { profile: 'uploads', operation: 'upload', keys: ['a'], prefix: 'p/' }],
    ['neither keys nor prefix', { profile: 'uploads', operation: 'upload' }],
    ['bad operation', { profile: 'uploads', operation: 'delete', keys: ['a'] }],
    ['keys not an array', { profile: 'uploads', operation: 'upload', keys: 'a' }],
    ['duration not an integer', { profile: 'uploads', operation: 'upload', keys: ['a'], durationSeconds: 1000.5 }],
  ])('400 CV_BAD_REQUEST for %s', async (_n, payload) => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { ...(await auth()), 'content-type': 'application/json' },
      ...(payload ? { payload } : {}),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'CV_BAD_REQUEST', status: 400 });
  });

  it('400 for malformed JSON without echoing it', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { ...(await auth()), 'content-type': 'application/json' },
      payload: '{"profile": "uploads", oops',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('CV_BAD_REQUEST');
    expect(res.body).not.toContain('oops');
  });

  it('413 for a body over the limit', async () => {
    h = await buildHarness({ env: { CREDVEND_BODY_LIMIT_BYTES: '2048' } });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: await auth(),
      payload: { profile: 'uploads', operation: 'upload', keys: ['k'.repeat(4000)] },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('CV_BODY_TOO_LARGE');
  });

  it('415 for a non-JSON body', async () => {
    h = await buildHarness();
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { ...(await auth()), 'content-type': 'text/xml' },
      payload: '<x/>',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('CV_UNSUPPORTED_MEDIA_TYPE');
  });

  it('404 problem for an unknown route', async () => {
    h = await buildHarness();
    const res = await h.app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('CV_NOT_FOUND');
  });
});
