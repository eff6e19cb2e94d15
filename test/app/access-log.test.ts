// Request logging a busy service can afford: at most one access line per request, at the level
// CREDVEND_ACCESS_LOG names (off | info | debug), no "incoming request" / "request completed"
// pair, and never the Authorization header. A 5xx is still logged once, at error level.
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHarness, type Harness } from '../helpers/app.js';

let h: Harness;
afterEach(async () => h?.close());

/** Ten requests of every kind a busy instance sees; returns the request ids and the token used. */
async function traffic() {
  const token = await h.token({ sub: 'alice' });
  const auth = { authorization: `Bearer ${token}` };
  const requests = [
    {
      method: 'POST' as const,
      url: '/v1/credentials',
      headers: auth,
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    },
    {
      method: 'POST' as const,
      url: '/v1/credentials',
      headers: auth,
      payload: { profile: 'uploads', operation: 'download', keys: ['b'] },
    },
    {
      method: 'GET' as const,
      url: '/v1/container-credentials/uploads?operation=download&key=c',
      headers: { authorization: token },
    },
    {
      method: 'POST' as const,
      url: '/v1/credentials',
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    },
    {
      method: 'POST' as const,
      url: '/v1/credentials',
      headers: { authorization: 'Bearer not.a.jwt' },
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    },
    {
      method: 'POST' as const,
      url: '/v1/credentials',
      headers: auth,
      payload: { profile: 'ci', operation: 'upload', keys: ['a'] },
    },
    {
      method: 'POST' as const,
      url: '/v1/credentials',
      headers: auth,
      payload: { profile: 'uploads', operation: 'upload', keys: ['../x'] },
    },
    { method: 'GET' as const, url: '/v1/profiles', headers: auth },
    { method: 'GET' as const, url: '/healthz' },
    { method: 'GET' as const, url: `/no/such/route/${crypto.randomUUID()}` },
  ];
  const ids: string[] = [];
  for (const r of requests) ids.push(String((await h.app.inject(r)).headers['x-request-id']));
  return { ids, token };
}

const records = () => h.log.records();

describe('access log', () => {
  it('info (default): exactly one line per request, and nothing else', async () => {
    // Prepare
    h = await buildHarness();
    // Act
    const { ids, token } = await traffic();
    // Assess
    expect(h.log.lines).toHaveLength(ids.length);
    const lines = records();
    expect(lines.every((l) => l.msg === 'request' && l.level === 30)).toBe(true);
    expect(lines.map((l) => l.reqId)).toEqual(ids);
    expect(lines.map((l) => [l.method, l.route, l.status])).toEqual([
      ['POST', '/v1/credentials', 200],
      ['POST', '/v1/credentials', 200],
      ['GET', '/v1/container-credentials/:profile', 200],
      ['POST', '/v1/credentials', 401],
      ['POST', '/v1/credentials', 401],
      ['POST', '/v1/credentials', 403],
      ['POST', '/v1/credentials', 400],
      ['GET', '/v1/profiles', 200],
      ['GET', '/healthz', 200],
      ['GET', 'unmatched', 404],
    ]);
    for (const l of lines) {
      expect(typeof l.ms).toBe('number');
      expect(l.ip).toBe('127.0.0.1');
    }
    const text = h.log.lines.join('\n');
    expect(text).not.toMatch(/incoming request|request completed/);
    expect(text).not.toMatch(/authorization|bearer/i);
    expect(text).not.toContain(token.split('.')[2]);
    // The route is the template: no key, profile value or random path reaches the line.
    expect(text).not.toMatch(/no\/such\/route|\.\.\/x|key=c/);
  });

  it('debug: the same single line per request, at debug level', async () => {
    h = await buildHarness({ env: { CREDVEND_ACCESS_LOG: 'debug' } });
    const { ids } = await traffic();
    expect(records().map((l) => [l.reqId, l.level, l.msg])).toEqual(ids.map((id) => [id, 20, 'request']));
  });

  it('off: no line at all for requests that did not fail', async () => {
    h = await buildHarness({ env: { CREDVEND_ACCESS_LOG: 'off' } });
    await traffic();
    expect(h.log.lines).toEqual([]);
  });

  it.each(['info', 'off'])(
    'a 5xx is one line at error level with the problem code (CREDVEND_ACCESS_LOG=%s), without SDK text',
    async (level) => {
      h = await buildHarness({ env: { CREDVEND_ACCESS_LOG: level } });
      const e = Object.assign(
        new Error('User: arn:aws:sts::123456789012:assumed-role/x is not authorized detail-xyz'),
        { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } },
      );
      h.sts.on(AssumeRoleCommand).rejects(e);
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/credentials',
        headers: { authorization: `Bearer ${await h.token()}` },
        payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
      });
      expect(res.statusCode).toBe(502);
      expect(records()).toEqual([
        expect.objectContaining({
          level: 50,
          msg: 'request',
          reqId: res.headers['x-request-id'],
          route: '/v1/credentials',
          status: 502,
          problem: 'CV_STS_ACCESS_DENIED',
          err: { name: 'StsError', code: 'AccessDenied', kind: 'access_denied' },
        }),
      ]);
      expect(h.log.lines[0]).not.toMatch(/detail-xyz|assumed-role/);
    },
  );
});

describe('what a log line never carries', () => {
  it('a 5xx line names the error by bounded fields only: free text in name, code or kind is dropped', async () => {
    // Threat: a library's error (not STS's) whose name or code carries request details or a
    // secret, here a session token, reaching log storage through the access line.
    const leaky = Object.assign(new Error('boom'), {
      name: 'Error: with spaces',
      code: 'token=IQoJleakysecret',
      kind: 'a kind with spaces',
    });
    h = await buildHarness({ wrapSts: (sts) => ({ ...sts, assumeRole: () => Promise.reject(leaky) }) });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${await h.token()}` },
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    });
    expect(res.statusCode).toBe(500);
    const line = h.log.lines.find((l) => l.includes('"msg":"request"'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 50, status: 500, err: {} });
    expect(line).not.toMatch(/IQoJleakysecret|with spaces/);
  });

  it('the app logger censors secret-named fields at the top of a line and under err', async () => {
    // Threat: a session token, secret key or JWT logged as a field of a log call or of an error.
    h = await buildHarness();
    h.app.log.error(
      {
        token: 'T-SECRET',
        sessionToken: 'S-SECRET',
        jwt: 'J-SECRET',
        err: { secretAccessKey: 'K-SECRET', Token: 'U-SECRET' },
      },
      'probe',
    );
    const line = h.log.lines.find((l) => l.includes('"msg":"probe"'));
    expect(line).toBeDefined();
    expect(line).not.toMatch(/SECRET/);
    expect(JSON.parse(line!)).toMatchObject({ token: '[Redacted]', err: { secretAccessKey: '[Redacted]' } });
  });
});
