// Fail closed, and answer everyone: the audit record lands before the credential leaves; an
// unwritable audit log, unusable base credentials, overload and shutdown each get their own 503
// problem (never an STS code); every error the HTTP layer sends is problem+json with a CV_ code.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditSink } from '../../src/audit/sink.js';
import { ShuttingDown } from '../../src/errors.js';
import { BaseCredentialsUnavailableError } from '../../src/sts/base-credentials.js';
import { gateSts } from '../../src/sts/gate.js';
import type { Sts } from '../../src/sts/sts.js';
import { allSecretsSeen, buildHarness, type Harness } from '../helpers/app.js';

let h: Harness | undefined;
afterEach(async () => {
  const open = h;
  h = undefined;
  await open?.close();
});

const body = { profile: 'uploads', operation: 'upload', keys: ['a.txt'] };
async function post(harness: Harness) {
  return harness.app.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: { authorization: `Bearer ${await harness.token()}` },
    payload: body,
  });
}

/** An audit destination the test controls: fails with `failWith` while set, else keeps lines. */
function controlledSink() {
  const lines: string[] = [];
  const state = { failWith: undefined as string | undefined, hold: undefined as Promise<void> | undefined, writes: 0 };
  const sink: AuditSink = {
    async write(chunk) {
      state.writes += 1;
      if (state.hold) await state.hold;
      if (state.failWith) return { written: 0, error: { code: state.failWith } };
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      return { written: chunk.length };
    },
    async close() {},
  };
  return { sink, lines, state, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function hasNoSecret(text: string) {
  for (const s of allSecretsSeen) expect(text).not.toContain(s);
}

describe('audit: fail closed', () => {
  it('the answer waits until its record has been written', async () => {
    // Attack stopped: a credential released before its record lands is lost to the security
    // team if the process dies (SIGKILL, OOM) between the two.
    const audit = controlledSink();
    let release!: () => void;
    audit.state.hold = new Promise<void>((r) => (release = r));
    h = await buildHarness({ auditSink: audit.sink });
    let answered = false;
    const pending = post(h).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    release();
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(audit.records()).toMatchObject([{ event: 'credentials.issued', accessKeyId: res.json().accessKeyId }]);
  });

  it('an unwritable audit log (ENOSPC) withholds the credential: 503 CV_AUDIT_UNAVAILABLE, not ready, recovers by itself', async () => {
    // Attack stopped: filling the audit disk to get credentials issued that nobody can see.
    const audit = controlledSink();
    audit.state.failWith = 'ENOSPC';
    h = await buildHarness({ auditSink: audit.sink });
    const res = await post(h);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'CV_AUDIT_UNAVAILABLE', status: 503 });
    expect(res.headers['retry-after']).toBeDefined();
    hasNoSecret(res.body); // the minted credential never leaves
    expect(h.metrics.registry.getSingleMetric('credvend_audit_writable')).toBeDefined();
    const metricsText = await h.metrics.registry.metrics();
    expect(metricsText).toMatch(/credvend_audit_writable 0/);
    expect(metricsText).toMatch(/credvend_audit_write_failures_total\{code="ENOSPC"\} 1/);
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ failing: ['audit_log'] });

    // The destination recovers: the owed record (the refusal, naming the withheld key) is
    // written without any traffic, and issuance resumes.
    audit.state.failWith = undefined;
    const until = Date.now() + 5000;
    while (audit.lines.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(audit.records()).toMatchObject([
      {
        event: 'credentials.failed',
        errorCode: 'CV_AUDIT_UNAVAILABLE',
        withheld: true,
        requestId: res.json().requestId,
      },
    ]);
    expect(audit.records()[0]!.accessKeyId).toMatch(/^ASIA/);
    expect((await h.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await post(h)).statusCode).toBe(200);
  });

  it('a refusal is still answered while the audit log is unwritable (it carries no credential)', async () => {
    const audit = controlledSink();
    audit.state.failWith = 'EIO';
    h = await buildHarness({ auditSink: audit.sink });
    const res = await h.app.inject({ method: 'POST', url: '/v1/credentials', payload: body });
    expect(res.statusCode).toBe(401);
  });
});

describe('the service cannot answer: its own 503 codes', () => {
  it('base credentials unavailable -> 503 CV_BASE_CREDENTIALS_UNAVAILABLE, never an STS code', async () => {
    // Mistake stopped: expired base keys read as "role trust broken" (CV_STS_ACCESS_DENIED).
    h = await buildHarness({
      wrapSts: (i) => ({
        ...i,
        assumeRole: async () => Promise.reject(new BaseCredentialsUnavailableError('Expired')),
      }),
    });
    const res = await post(h);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'CV_BASE_CREDENTIALS_UNAVAILABLE' });
    expect(h.audit.records()).toMatchObject([
      { event: 'credentials.failed', errorCode: 'CV_BASE_CREDENTIALS_UNAVAILABLE' },
    ]);
  });

  it('over capacity -> 503 CV_OVERLOADED with Retry-After, at once, one record each', async () => {
    let releaseAll!: () => void;
    const stuck = new Promise<void>((r) => (releaseAll = r));
    h = await buildHarness({
      wrapSts: (i) =>
        gateSts(
          { ...i, assumeRole: async (plan, signal) => stuck.then(() => i.assumeRole(plan, signal)) },
          { maxInFlight: 1, maxQueue: 1, queueTimeoutMs: 60_000 },
        ),
    });
    const first = post(h); // in flight
    const second = post(h); // queued
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const third = await post(h); // shed
    expect(Date.now() - started).toBeLessThan(1000);
    expect(third.statusCode).toBe(503);
    expect(third.json()).toMatchObject({ code: 'CV_OVERLOADED' });
    expect(third.headers['retry-after']).toBe('1');
    releaseAll();
    expect((await first).statusCode).toBe(200);
    expect((await second).statusCode).toBe(200);
    expect(
      h.audit
        .records()
        .map((r) => r.event)
        .sort(),
    ).toEqual(['credentials.failed', 'credentials.issued', 'credentials.issued']);
  });

  it('shutdown deadline: a request stuck on STS gets 503 CV_SHUTTING_DOWN and a failed record, reason shutdown', async () => {
    // What it stops: callers left with a dropped socket and no record when the process exits.
    const hang: Sts['assumeRole'] = (_plan, signal) =>
      new Promise((_resolve, reject) =>
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
    h = await buildHarness({ wrapSts: (i) => ({ ...i, assumeRole: hang }) });
    const pending = Promise.all([post(h), post(h), post(h)]);
    await new Promise((r) => setTimeout(r, 100));
    h.app.abortDecisions(new ShuttingDown());
    const answers = await pending;
    for (const res of answers) {
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'CV_SHUTTING_DOWN' });
    }
    expect(h.audit.records()).toHaveLength(3);
    for (const r of h.audit.records())
      expect(r).toMatchObject({ event: 'credentials.failed', errorCode: 'CV_SHUTTING_DOWN', reason: 'shutdown' });
  });

  it("while closing, new requests get a problem+json 503 CV_SHUTTING_DOWN (not Fastify's own body)", async () => {
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    h = await buildHarness({
      wrapSts: (i) => ({ ...i, assumeRole: async (plan, signal) => stuck.then(() => i.assumeRole(plan, signal)) }),
    });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as { port: number };
    const token = await h.token();
    const payload = JSON.stringify(body);
    // A credential request stuck on STS keeps close() waiting; meanwhile a second connection
    // that had begun its request before close() finishes sending it.
    const stuckSocket = connect(port, '127.0.0.1');
    stuckSocket.write(
      `POST /v1/credentials HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n${payload}`,
    );
    const late = connect(port, '127.0.0.1');
    let out = '';
    late.on('data', (d: Buffer) => (out += d.toString()));
    late.write('GET /v1/profiles HTTP/1.1\r\nhost: x\r\n');
    await new Promise((r) => setTimeout(r, 100));
    const closing = h.app.close();
    await new Promise((r) => setTimeout(r, 20));
    late.write('\r\n');
    await new Promise((r) => late.on('close', r));
    release();
    await closing;
    stuckSocket.destroy();
    const answers = [out];
    expect(answers[0]).toMatch(/^HTTP\/1\.1 503/);
    expect(answers[0]).toContain('application/problem+json');
    expect(answers[0]).toContain('"code":"CV_SHUTTING_DOWN"');
  });
});

describe('every error is problem+json with a CV_ code', () => {
  it('405 for a known path with another method, naming the allowed ones', async () => {
    h = await buildHarness();
    const res = await h.app.inject({ method: 'DELETE', url: '/v1/credentials' });
    expect(res.statusCode).toBe(405);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'CV_METHOD_NOT_ALLOWED' });
    expect(res.headers.allow).toContain('POST');
  });

  it('414 for an over-long request target', async () => {
    h = await buildHarness();
    const res = await h.app.inject({ method: 'GET', url: `/v1/profiles?x=${'a'.repeat(9000)}` });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toMatchObject({ code: 'CV_URI_TOO_LONG' });
  });

  it("431 from Node's parser (headers over 16 KiB) is problem+json too", async () => {
    h = await buildHarness();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as { port: number };
    const res = await new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/healthz', headers: { 'x-big': 'a'.repeat(20_000) } },
        (r) => {
          let text = '';
          r.on('data', (d) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, type: String(r.headers['content-type']), text }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(431);
    expect(res.type).toContain('application/problem+json');
    expect(JSON.parse(res.text)).toMatchObject({ code: 'CV_HEADERS_TOO_LARGE', status: 431 });
  });

  it('a malformed request line gets a 400 problem, and the process carries on', async () => {
    h = await buildHarness();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as { port: number };
    const text = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('GARBAGE\r\n\r\n'));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
    });
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    expect(text).toContain('"code":"CV_BAD_REQUEST"');
  });
});
