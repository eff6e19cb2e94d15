// The audit log (docs/design.md §5): exactly one JSON line per decision, with every field the security team
// needs to answer "who got which credentials for what, and when", joinable to CloudTrail by the
// temporary accessKeyId, and never a secret key, a session token or a JWT.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssumeRoleCommand, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import type { InjectOptions } from 'fastify';
import { exportSPKI } from 'jose';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/app.js';
import { createAuditLog, type AuditEvent } from '../../src/audit/audit.js';
import { fileSink, streamSink } from '../../src/audit/sink.js';
import { loadConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createReadiness } from '../../src/readiness.js';
import {
  allSecretsSeen,
  baseProfiles,
  buildHarness,
  ISSUER,
  LineSink,
  ROLE_ARN,
  sign,
  testKeys,
  type Harness,
} from '../helpers/app.js';

let h: Harness;
afterEach(async () => {
  // Cleared so that a test without a harness does not close the previous test's one again.
  const open: Harness | undefined = h;
  h = undefined as unknown as Harness;
  await open?.close();
});

const UA = 'ci-runner/1.0';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ciClaims = {
  sub: 'project_path:group/app:ref_type:branch:ref:main',
  project_path: 'group/app',
  ref_protected: 'true',
  environment: 'production',
};

async function post(body: Record<string, unknown>, opts: { token?: string | null; ua?: string } = {}) {
  const token = opts.token === undefined ? await h.token() : opts.token;
  return h.app.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: { 'user-agent': opts.ua ?? UA, ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
    payload: body,
  });
}

function assumeInputs(): AssumeRoleCommandInput[] {
  return h.sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The record's own envelope; `time` is checked separately (it moves). */
function envelope(rec: Record<string, unknown>) {
  expect(rec.time).toMatch(ISO);
  expect(Math.abs(Date.parse(rec.time as string) - Date.now())).toBeLessThan(60_000);
  const { time: _time, ...rest } = rec;
  return rest;
}

function stsError(name: string, status: number): Error {
  const e = new Error(
    'User: arn:aws:sts::123456789012:assumed-role/credvend-task/x is not authorized detail-xyz',
  ) as Error & Record<string, unknown>;
  e.name = name;
  e.$metadata = { httpStatusCode: status };
  return e;
}

describe('credentials.issued', () => {
  it('holds every SPEC field, and the policy hash is the hash of the Policy sent to AssumeRole', async () => {
    // Prepare
    h = await buildHarness();
    const token = await h.token(ciClaims);
    // Act
    const res = await post({ profile: 'ci', operation: 'upload', keys: ['build.tar.gz', 'logs/test.xml'] }, { token });
    // Assess
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const [input] = assumeInputs();
    const records = h.audit.records();
    expect(records).toHaveLength(1);
    expect(envelope(records[0]!)).toEqual({
      level: 30,
      log: 'audit',
      event: 'credentials.issued',
      requestId: res.headers['x-request-id'],
      subject: {
        iss: ISSUER,
        sub: ciClaims.sub,
        claims: { project_path: 'group/app', ref_protected: 'true', environment: 'production' },
      },
      profile: 'ci',
      operation: 'upload',
      clientIp: '127.0.0.1',
      userAgent: UA,
      bucket: 'ci-artifacts',
      keys: ['ci/group~2Fapp/build.tar.gz', 'ci/group~2Fapp/logs/test.xml'],
      roleArn: 'arn:aws:iam::123456789012:role/ci-prod',
      roleSessionName: input!.RoleSessionName,
      sourceIdentity: input!.SourceIdentity,
      sessionTags: { project: 'group/app', env: 'production' },
      durationSeconds: input!.DurationSeconds,
      policySha256: sha256(input!.Policy!),
      accessKeyId: body.accessKeyId,
      expiration: body.expiration,
      packedPolicySize: 12,
    });
    // The CloudTrail join: our request id is inside the session name STS records.
    expect(input!.RoleSessionName).toContain(String(res.headers['x-request-id']).slice(0, 12));
    expect(body.accessKeyId).toMatch(/^ASIA/);
    // Never a secret: neither the issued ones nor the caller's token, in any form.
    const text = h.audit.lines.join('\n');
    for (const secret of [body.secretAccessKey, body.sessionToken, token, token.split('.')[2]])
      expect(text).not.toContain(secret);
    expect(text).not.toMatch(/secretAccessKey|sessionToken|authorization/i);
  });

  it('a prefix grant records the granted prefix and no keys', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'ci', operation: 'upload', prefix: 'dist/' }, { token: await h.token(ciClaims) });
    expect(res.statusCode).toBe(200);
    const [rec] = h.audit.records();
    expect(rec).toMatchObject({ event: 'credentials.issued', prefix: 'ci/group~2Fapp/dist/' });
    expect(rec).not.toHaveProperty('keys');
  });

  it('subject.claims holds the claims the templates read too, not only the match rules, and no other claim', async () => {
    // Without the template claims a reader cannot tell why the prefix or a tag came out as it did.
    const profiles = {
      tmpl: {
        roleArn: ROLE_ARN,
        bucket: 'tenant-bucket',
        region: 'eu-west-1',
        prefix: 'home/{email}/',
        sessionTags: { team: '{team}' },
        sourceIdentity: '{uid}',
        match: { iss: ISSUER, claims: { tier: 'gold' } },
      },
    };
    h = await buildHarness({ profiles });
    const token = await h.token({
      sub: 'u-1',
      tier: 'gold',
      email: 'ann@example.com',
      team: 'blue',
      uid: 'u1234',
      unrelated: 'not-for-the-audit',
    });
    const res = await post({ profile: 'tmpl', operation: 'download', keys: ['a'] }, { token });
    expect(res.statusCode).toBe(200);
    const [rec] = h.audit.records();
    expect(rec!.subject).toEqual({
      iss: ISSUER,
      sub: 'u-1',
      claims: { tier: 'gold', email: 'ann@example.com', team: 'blue', uid: 'u1234' },
    });
    expect(rec).toMatchObject({
      sourceIdentity: 'u1234',
      sessionTags: { team: 'blue' },
      keys: ['home/ann@example.com/a'],
    });
  });
});

describe('credentials.denied', () => {
  it('401 without a token: the request facts, no subject and no token', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, { token: null });
    expect(res.statusCode).toBe(401);
    const records = h.audit.records();
    expect(records).toHaveLength(1);
    expect(envelope(records[0]!)).toEqual({
      level: 30,
      log: 'audit',
      event: 'credentials.denied',
      requestId: res.headers['x-request-id'],
      clientIp: '127.0.0.1',
      userAgent: UA,
      errorCode: 'CV_TOKEN_MISSING',
      reason: 'unauthenticated',
    });
  });

  it('401 for a token with a bad signature: one record, and no part of the token in it', async () => {
    h = await buildHarness();
    const [head, payload, sig] = (await h.token()).split('.');
    const forged = `${head}.${payload}.${sig!.slice(0, -4)}AAAA`;
    allSecretsSeen.add(forged);
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, { token: forged });
    expect(res.statusCode).toBe(401);
    expect(h.audit.records()).toMatchObject([
      { event: 'credentials.denied', errorCode: 'CV_TOKEN_INVALID', reason: 'unauthenticated' },
    ]);
    for (const part of [payload!, sig!.slice(0, -4)]) expect(h.audit.lines[0]).not.toContain(part);
  });

  it('403 profile mismatch: subject with the values (or null) of every claim the profile reads, and what was asked', async () => {
    h = await buildHarness();
    const res = await post(
      { profile: 'ci', operation: 'upload', keys: ['x.bin'] },
      { token: await h.token({ sub: 'mallory', project_path: 'evilgroup/app' }) },
    );
    expect(res.statusCode).toBe(403);
    const [rec] = h.audit.records();
    expect(envelope(rec!)).toEqual({
      level: 30,
      log: 'audit',
      event: 'credentials.denied',
      requestId: res.headers['x-request-id'],
      subject: {
        iss: ISSUER,
        sub: 'mallory',
        claims: { project_path: 'evilgroup/app', ref_protected: null, environment: null },
      },
      profile: 'ci',
      operation: 'upload',
      clientIp: '127.0.0.1',
      userAgent: UA,
      requestedKeys: ['x.bin'],
      requestedKeyCount: 1,
      errorCode: 'CV_PROFILE_FORBIDDEN',
      reason: 'profile_mismatch',
    });
  });

  it('403 operation not allowed by the profile', async () => {
    h = await buildHarness();
    const res = await post(
      { profile: 'ci', operation: 'download', prefix: 'dist/' },
      { token: await h.token(ciClaims) },
    );
    expect(res.statusCode).toBe(403);
    expect(h.audit.records()).toMatchObject([
      {
        event: 'credentials.denied',
        reason: 'operation_not_allowed',
        errorCode: 'CV_OPERATION_FORBIDDEN',
        operation: 'download',
        requestedPrefix: 'dist/',
      },
    ]);
  });

  it.each([
    ['invalid_key', 'CV_INVALID_KEY', ['../bob/secret.txt']],
    ['too_many_keys', 'CV_TOO_MANY_KEYS', Array.from({ length: 12 }, (_, i) => `k${i}`)],
  ])('400 %s: the attempted keys are recorded, at most ten of them', async (reason, code, keys) => {
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys });
    expect(res.statusCode).toBe(400);
    const records = h.audit.records();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ event: 'credentials.denied', reason, errorCode: code, profile: 'uploads' });
    expect(records[0]!.subject).toEqual({ iss: ISSUER, sub: 'alice', claims: { sub: 'alice' } });
    expect(records[0]!.requestedKeys).toEqual(keys.slice(0, 10));
    expect(records[0]!.requestedKeyCount).toBe(keys.length);
    expect(assumeInputs()).toHaveLength(0);
  });
});

describe('credentials.failed', () => {
  it('an STS error: the plan that was attempted, the mapped and upstream codes, no credentials and no SDK text', async () => {
    h = await buildHarness();
    h.sts.on(AssumeRoleCommand).rejects(stsError('AccessDenied', 403));
    const res = await post({ profile: 'uploads', operation: 'download', keys: ['report.pdf'] });
    expect(res.statusCode).toBe(502);
    const [input] = assumeInputs();
    const records = h.audit.records();
    expect(records).toHaveLength(1);
    expect(envelope(records[0]!)).toEqual({
      level: 30,
      log: 'audit',
      event: 'credentials.failed',
      requestId: res.headers['x-request-id'],
      // The uploads prefix is `uploads/{sub}/`: the claim the template read is listed too.
      subject: { iss: ISSUER, sub: 'alice', claims: { sub: 'alice' } },
      profile: 'uploads',
      operation: 'download',
      clientIp: '127.0.0.1',
      userAgent: UA,
      bucket: 'tenant-bucket',
      keys: ['uploads/alice/report.pdf'],
      roleArn: ROLE_ARN,
      roleSessionName: input!.RoleSessionName,
      sourceIdentity: 'alice',
      sessionTags: {},
      durationSeconds: 900,
      policySha256: sha256(input!.Policy!),
      errorCode: 'CV_STS_ACCESS_DENIED',
      upstreamCode: 'AccessDenied',
    });
    expect(h.audit.lines[0]).not.toContain('detail-xyz');
  });
});

describe('credentials.failed before any AWS call', () => {
  it('an internal error while planning (a KMS key left unresolved) is one failed record and an opaque 500', async () => {
    // Prepare: the config as loaded, without the start-up KMS resolution the harness does.
    const { publicKey } = await testKeys();
    const file = {
      issuers: [
        { issuer: ISSUER, audiences: ['credvend'], publicKey: await exportSPKI(publicKey), algorithms: ['RS256'] },
      ],
      profiles: baseProfiles(),
    };
    const config = loadConfig({ CREDVEND_CONFIG_FILE: 'p.json', CREDVEND_RATE_LIMIT_MAX: '0' }, () =>
      JSON.stringify(file),
    );
    const sink = new LineSink();
    const assumeRole = vi.fn();
    const app = await buildApp({
      config,
      sts: { assumeRole, serviceIdentity: vi.fn() },
      audit: createAuditLog(streamSink(sink)),
      metrics: createMetrics({ version: 'test', defaultMetrics: false }),
      logger: pino({ level: 'silent' }),
      readiness: createReadiness('ready'),
      now: Date.now,
    });
    try {
      // Act
      const res = await app.inject({
        method: 'POST',
        url: '/v1/credentials',
        headers: { authorization: `Bearer ${await sign({ sub: 'alice' }, (await testKeys()).privateKey)}` },
        payload: { profile: 'kms', operation: 'upload', keys: ['a'] },
      });
      // Assess
      expect(res.statusCode).toBe(500);
      expect(res.json().code).toBe('CV_INTERNAL');
      expect(assumeRole).not.toHaveBeenCalled();
      expect(sink.records()).toMatchObject([
        {
          event: 'credentials.failed',
          errorCode: 'CV_INTERNAL',
          profile: 'kms',
          requestId: res.headers['x-request-id'],
          subject: { iss: ISSUER, sub: 'alice' },
        },
      ]);
      expect(sink.lines).toHaveLength(1);
    } finally {
      await app.close();
    }
  });
});

describe('exactly one record per request for credentials', () => {
  it('for every outcome (issued, 401, 403, 404, 400 policy, 400 schema, bad JSON, 413, 429, 503, STS failure), and none for other routes', async () => {
    // Prepare: a rate limit of two requests per subject, so the third one of "busy" is refused.
    h = await buildHarness({ env: { CREDVEND_RATE_LIMIT_MAX: '2', CREDVEND_RATE_LIMIT_WINDOW: '1 minute' } });
    const tok = (sub: string) => h.token({ sub });
    const json = (body: unknown, token?: string) => ({
      method: 'POST' as const,
      url: '/v1/credentials',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const ok = { profile: 'uploads', operation: 'upload', keys: ['a'] };
    const busy = await tok('busy');
    const cases: [string, InjectOptions, number, string, string][] = [
      ['issued', json(ok, await tok('u1')), 200, 'credentials.issued', ''],
      [
        'issued (container)',
        {
          method: 'GET',
          url: '/v1/container-credentials/uploads?operation=download&key=a',
          headers: { authorization: await tok('u2') },
        },
        200,
        'credentials.issued',
        '',
      ],
      ['no token', json(ok), 401, 'credentials.denied', 'CV_TOKEN_MISSING'],
      [
        'bad token (container)',
        {
          method: 'GET',
          url: '/v1/container-credentials/uploads?operation=download&key=a',
          headers: { authorization: 'garbage' },
        },
        401,
        'credentials.denied',
        'CV_TOKEN_INVALID',
      ],
      ['mismatch', json({ ...ok, profile: 'ci' }, await tok('u3')), 403, 'credentials.denied', 'CV_PROFILE_FORBIDDEN'],
      [
        'unknown profile',
        {
          method: 'GET',
          url: '/v1/container-credentials/nope?operation=download&key=a',
          headers: { authorization: await tok('u4') },
        },
        404,
        'credentials.denied',
        'CV_PROFILE_UNKNOWN',
      ],
      ['policy 400', json({ ...ok, keys: ['a//b'] }, await tok('u5')), 400, 'credentials.denied', 'CV_INVALID_KEY'],
      [
        'schema 400',
        json({ ...ok, roleSessionName: 'admin' }, await tok('u6')),
        400,
        'credentials.denied',
        'CV_BAD_REQUEST',
      ],
      ['bad JSON', json('{"profile":', await tok('u7')), 400, 'credentials.denied', 'CV_BAD_REQUEST'],
      [
        'too large',
        json({ ...ok, keys: Array.from({ length: 40 }, () => 'k'.repeat(2000)) }, await tok('u8')),
        413,
        'credentials.denied',
        'CV_BODY_TOO_LARGE',
      ],
      ['busy 1', json(ok, busy), 200, 'credentials.issued', ''],
      ['busy 2', json(ok, busy), 200, 'credentials.issued', ''],
      ['busy 3', json(ok, busy), 429, 'credentials.denied', 'CV_RATE_LIMITED'],
    ];
    const requestIds: string[] = [];
    // Act + Assess, case by case
    for (const [name, req, status, event, code] of cases) {
      const res = await h.app.inject(req);
      expect(res.statusCode, name).toBe(status);
      const id = String(res.headers['x-request-id']);
      requestIds.push(id);
      const mine = h.audit.records().filter((r) => r.requestId === id);
      expect(mine, name).toHaveLength(1);
      expect(mine[0]!.event, name).toBe(event);
      if (code) expect(mine[0]!.errorCode, name).toBe(code);
    }
    // The denials recorded around the vendor carry their own reason, in the audit and the metric.
    const reasons = h.audit
      .records()
      .filter((r) => r.event === 'credentials.denied')
      .map((r) => r.reason);
    expect(reasons.filter((r) => r === 'rate_limited')).toHaveLength(1);
    expect(reasons.filter((r) => r === 'invalid_request')).toHaveLength(3); // schema, bad JSON, too large
    const counted = Object.fromEntries((await h.metrics.denied.get()).values.map((v) => [v.labels.reason, v.value]));
    expect(counted).toMatchObject({ rate_limited: 1, invalid_request: 3, unauthenticated: 2 });
    // Not ready (starting or draining): a failure, not a denial.
    h.readiness.set('starting');
    const notReady = await h.app.inject(json(ok, await tok('u9')));
    h.readiness.set('ready');
    expect(notReady.statusCode).toBe(503);
    // An STS failure.
    h.sts.on(AssumeRoleCommand).rejects(stsError('Throttling', 400));
    const failed = await h.app.inject(json(ok, await tok('u10')));
    expect(failed.statusCode).toBe(503);
    for (const [res, code] of [
      [notReady, 'CV_NOT_READY'],
      [failed, 'CV_STS_THROTTLED'],
    ] as const) {
      const id = String(res.headers['x-request-id']);
      requestIds.push(id);
      expect(h.audit.records().filter((r) => r.requestId === id)).toMatchObject([
        { event: 'credentials.failed', errorCode: code },
      ]);
    }
    // Routes that vend nothing are not decisions.
    for (const url of ['/healthz', '/readyz', '/v1/profiles', '/v1/credentialsX', '/random/path'])
      await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${await tok('u11')}` } });
    // Every line is one valid record, and there is one per request, no more.
    expect(h.audit.lines).toHaveLength(requestIds.length);
    expect(
      h.audit
        .records()
        .map((r) => r.requestId)
        .sort(),
    ).toEqual([...requestIds].sort());
  });

  it('a rate-limited or schema-refused request names a configured profile and operation, never an unknown one', async () => {
    h = await buildHarness();
    const token = await h.token();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'], extra: 1 }, { token });
    const bad = await post({ profile: 'x'.repeat(60), operation: 'delete', keys: ['a'] }, { token });
    expect([res.statusCode, bad.statusCode]).toEqual([400, 400]);
    const [first, second] = h.audit.records();
    expect(first).toMatchObject({
      event: 'credentials.denied',
      reason: 'invalid_request',
      profile: 'uploads',
      operation: 'upload',
    });
    expect(first!.subject).toEqual({ iss: ISSUER, sub: 'alice', claims: {} });
    expect(second).toMatchObject({ event: 'credentials.denied', reason: 'invalid_request' });
    expect(second).not.toHaveProperty('profile');
    expect(second).not.toHaveProperty('operation');
  });
});

describe('forged records', () => {
  const forgedLine = JSON.stringify({
    level: 30,
    log: 'audit',
    event: 'credentials.issued',
    requestId: 'x',
    accessKeyId: 'ASIAFORGED',
  });

  it('a key with a newline and a JSON record after it is refused, and the audit stays one valid line', async () => {
    // Attack: a caller writes a key that, logged naively, starts a second "issued" record.
    h = await buildHarness();
    const key = `a\n${forgedLine}\r\u0000`;
    const res = await post({ profile: 'uploads', operation: 'upload', keys: [key] });
    expect(res.statusCode).toBe(400);
    expect(h.audit.lines).toHaveLength(1);
    const rec = JSON.parse(h.audit.lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ event: 'credentials.denied', reason: 'invalid_key' });
    expect(rec.requestedKeys).toEqual([key]); // recorded faithfully, as an escaped JSON string
    expect(h.audit.lines[0]).not.toMatch(/[\n\r\u0000]/);
  });

  it('characters other readers take as line breaks (U+2028, U+2029, U+0085) are escaped, so no reader sees two lines', async () => {
    // U+2028 is valid in a key and JSON leaves it raw; Python's splitlines() and some log
    // shippers split on it (and on U+0085, which a User-Agent can carry as a Latin-1 byte).
    h = await buildHarness();
    const key = `a\u2028${forgedLine}\u2029b`;
    const res = await post(
      { profile: 'uploads', operation: 'upload', keys: [key] },
      { ua: `agent\u0085${forgedLine}` },
    );
    expect(res.statusCode).toBe(200);
    const [line] = h.audit.lines;
    expect(h.audit.lines).toHaveLength(1);
    expect(line!.split(/\r\n|[\n\v\f\r\u001c-\u001e\u0085\u2028\u2029]/)).toHaveLength(1);
    const rec = JSON.parse(line!) as Record<string, unknown>;
    expect(rec.keys).toEqual([`uploads/alice/${key}`]);
    expect(rec.userAgent).toBe(`agent\u0085${forgedLine}`);
  });
});

describe('the audit log on its own', () => {
  const issued: AuditEvent = {
    event: 'credentials.issued',
    requestId: 'r-1',
    clientIp: '10.0.0.1',
    bucket: 'b',
    keys: ['k'],
    roleArn: ROLE_ARN,
    roleSessionName: 'alice.1234abcd.r-1',
    sourceIdentity: 'alice',
    sessionTags: {},
    durationSeconds: 900,
    policySha256: 'ab'.repeat(32),
    accessKeyId: 'ASIAEXAMPLE',
    expiration: '2030-01-01T00:00:00.000Z',
  };

  it('redacts secret-named fields should one be passed in by mistake', async () => {
    const sink = new LineSink();
    const audit = createAuditLog(streamSink(sink));
    await audit.record({
      ...issued,
      secretAccessKey: 'SECRET-1',
      sessionToken: 'TOKEN-1',
      subject: { iss: ISSUER, sub: 'a', claims: {}, jwt: 'JWT-1' },
    } as unknown as AuditEvent);
    expect(sink.lines).toHaveLength(1);
    for (const s of ['SECRET-1', 'TOKEN-1', 'JWT-1']) expect(sink.lines[0]).not.toContain(s);
    expect(sink.records()[0]).toMatchObject({
      secretAccessKey: '[REDACTED]',
      sessionToken: '[REDACTED]',
      accessKeyId: 'ASIAEXAMPLE',
    });
  });

  it('fileSink(path) appends JSON lines to a file, creating its directory; a record resolves once written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'credvend-audit-'));
    try {
      const path = join(dir, 'nested', 'audit.log');
      const sink = fileSink(path);
      writeFileSync(path, '{"earlier":"record"}\n', { flag: 'a' });
      const audit = createAuditLog(sink);
      await Promise.all([
        audit.record(issued),
        audit.record({
          event: 'credentials.denied',
          requestId: 'r-2',
          clientIp: '10.0.0.2',
          errorCode: 'CV_TOKEN_MISSING',
          reason: 'unauthenticated',
        }),
      ]);
      // Handed to the OS when the promise resolved: readable now, before close.
      expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
      await audit.close();
      const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
      const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(parsed).toHaveLength(3);
      expect(parsed[0]).toEqual({ earlier: 'record' }); // appended, not truncated
      expect(parsed[1]).toMatchObject({
        log: 'audit',
        event: 'credentials.issued',
        requestId: 'r-1',
        accessKeyId: 'ASIAEXAMPLE',
      });
      expect(parsed[2]).toMatchObject({ log: 'audit', event: 'credentials.denied', requestId: 'r-2' });
      expect(parsed[1]!.time).toMatch(ISO);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
