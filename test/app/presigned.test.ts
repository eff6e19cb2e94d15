// POST /v1/presigned (presigned mode, docs/design.md §7) through buildApp + inject(), STS mocked: URLs are
// signed locally from one cached signing session per subject, profile and operation. What each
// test proves is what a URL can reach (parsed, not pattern-matched), what the session may do (the
// AssumeRole input), and what the audit log and the answer hold (never a secret key).
import { AssumeRoleCommand, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditSink } from '../../src/audit/sink.js';
import { allSecretsSeen, baseProfiles, buildHarness, ISSUER, ROLE_ARN, type Harness } from '../helpers/app.js';

let h: Harness | undefined;
afterEach(async () => {
  const open = h;
  h = undefined;
  await open?.close();
});

const MAX_BYTES = 1_048_576;

function profiles(): Record<string, unknown> {
  const presigned = {
    roleArn: ROLE_ARN,
    bucket: 'tenant-bucket',
    region: 'eu-west-1',
    operations: ['upload', 'download'],
    maxKeys: 5,
    delivery: 'presigned',
    maxDurationSeconds: 1800,
    match: { iss: ISSUER },
  };
  return {
    ...baseProfiles(),
    drop: { ...presigned, prefix: 'drop/{sub}/' },
    capped: { ...presigned, prefix: 'capped/{sub}/', maxObjectBytes: MAX_BYTES },
  };
}

// Sessions as STS makes them: they live DurationSeconds (or `lifetimeSeconds` when set).
let minted = 0;
function fakeSts(harness: Harness, lifetimeSeconds?: number) {
  harness.sts.on(AssumeRoleCommand).callsFake((input: AssumeRoleCommandInput) => {
    minted += 1;
    const n = String(minted).padStart(6, '0');
    const c = {
      AccessKeyId: `ASIAPRESIGN${n}XYZ`,
      SecretAccessKey: `presign-secret/${n}+Zm9vYmFyYmF6cXV4cXV1eHF1dXgxMjM0`,
      SessionToken: `IQoJpresignToken${n}Zm9vYmFyYmF6cXV4cXV1eHF1dXgxMjM0NTY3ODkw`,
      Expiration: new Date(Date.now() + (lifetimeSeconds ?? input.DurationSeconds ?? 900) * 1000),
    };
    allSecretsSeen.add(c.SecretAccessKey);
    allSecretsSeen.add(c.SessionToken);
    return { Credentials: c, PackedPolicySize: 9 };
  });
}

async function harness(opts: { lifetimeSeconds?: number; auditSink?: AuditSink } = {}): Promise<Harness> {
  const x = await buildHarness({
    profiles: profiles(),
    env: { CREDVEND_S3_FORCE_PATH_STYLE: 'true' },
    ...(opts.auditSink ? { auditSink: opts.auditSink } : {}),
  });
  fakeSts(x, opts.lifetimeSeconds);
  return x;
}

async function presign(harness: Harness, body: Record<string, unknown>, sub = 'alice') {
  return harness.app.inject({
    method: 'POST',
    url: '/v1/presigned',
    headers: { authorization: `Bearer ${await harness.token({ sub })}` },
    payload: body,
  });
}

const assumeInputs = (harness: Harness): AssumeRoleCommandInput[] =>
  harness.sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input);

interface Obj {
  key: string;
  method: string;
  url: string;
  fields?: Record<string, string>;
  maxObjectBytes?: number;
}

/** What a presigned URL reaches and how long: parsed, as S3 reads it. */
function parse(url: string) {
  const u = new URL(url);
  const q = u.searchParams;
  return {
    host: u.host,
    path: decodeURIComponent(u.pathname),
    expires: Number(q.get('X-Amz-Expires')),
    accessKeyId: (q.get('X-Amz-Credential') ?? '').split('/')[0],
    token: q.get('X-Amz-Security-Token'),
    signature: q.get('X-Amz-Signature'),
    signedHeaders: q.get('X-Amz-SignedHeaders'),
  };
}

/** The answer without the session tokens a URL or form carries by design (X-Amz-Security-Token). */
function withoutSessionTokens(body: { objects: Obj[] }): string {
  const objects = body.objects.map((o) => {
    const u = new URL(o.url);
    u.searchParams.delete('X-Amz-Security-Token');
    const { 'X-Amz-Security-Token': _token, ...fields } = o.fields ?? {};
    return { ...o, url: u.toString(), fields };
  });
  return JSON.stringify({ ...body, objects });
}

describe('POST /v1/presigned', () => {
  it('signs URLs for many keys of one subject from ONE AssumeRole; each URL pins its key', async () => {
    // Prepare
    h = await harness();
    // Act: three sequential requests and four concurrent ones (single flight), all different keys.
    const first = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a.txt', 'dir/b.txt'] });
    const second = await presign(h, { profile: 'drop', operation: 'upload', keys: ['c.txt'] });
    const concurrent = await Promise.all(
      ['d', 'e', 'f', 'g'].map((k) => presign(h!, { profile: 'drop', operation: 'upload', keys: [`${k}.bin`] })),
    );
    // Assess
    for (const r of [first, second, ...concurrent]) expect(r.statusCode).toBe(200);
    expect(assumeInputs(h)).toHaveLength(1);
    const [input] = assumeInputs(h);
    // The session: the subject's whole prefix (never leaves the process), one hour.
    expect(JSON.parse(input!.Policy!).Statement).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: 'arn:aws:s3:::tenant-bucket/drop/alice/*',
      },
    ]);
    expect(input!.DurationSeconds).toBe(3600);
    expect(first.headers['cache-control']).toBe('no-store');

    const body = first.json();
    expect(body).toMatchObject({
      profile: 'drop',
      operation: 'upload',
      bucket: 'tenant-bucket',
      region: 'eu-west-1',
      expiresInSeconds: 900,
      requestId: first.headers['x-request-id'],
    });
    expect(body.objects.map((o: Obj) => [o.key, o.method])).toEqual([
      ['drop/alice/a.txt', 'PUT'],
      ['drop/alice/dir/b.txt', 'PUT'],
    ]);
    const keyIds = new Set<string>();
    for (const o of [
      ...body.objects,
      ...second.json().objects,
      ...concurrent.flatMap((r) => r.json().objects),
    ] as Obj[]) {
      const u = parse(o.url);
      expect(u.host).toBe('s3.eu-west-1.amazonaws.com');
      expect(u.path).toBe(`/tenant-bucket/${o.key}`); // the signature covers this path: the key
      expect(u.expires).toBeGreaterThan(0);
      expect(u.expires).toBeLessThanOrEqual(1800);
      expect(u.token).toMatch(/^IQoJpresignToken/);
      expect(u.signature).toMatch(/^[0-9a-f]{64}$/);
      expect(u.signedHeaders).toBe('host');
      keyIds.add(u.accessKeyId!);
    }
    expect(keyIds.size).toBe(1);
    expect(Date.parse(body.expiration) - Date.now()).toBeGreaterThan(890_000);
  });

  it('another subject, another operation: another session', async () => {
    h = await harness();
    const alice = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a.txt'] });
    const bob = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a.txt'] }, 'bob');
    const download = await presign(h, { profile: 'drop', operation: 'download', keys: ['a.txt'] });
    const aliceAgain = await presign(h, { profile: 'drop', operation: 'upload', keys: ['z.txt'] });
    expect([alice, bob, download, aliceAgain].map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
    const ids = [alice, bob, download, aliceAgain].map((r) => parse(r.json().objects[0].url).accessKeyId);
    expect(new Set(ids).size).toBe(3);
    expect(ids[3]).toBe(ids[0]);
    expect(assumeInputs(h).map((i) => JSON.parse(i.Policy!).Statement[0].Resource)).toEqual([
      'arn:aws:s3:::tenant-bucket/drop/alice/*',
      'arn:aws:s3:::tenant-bucket/drop/bob/*',
      'arn:aws:s3:::tenant-bucket/drop/alice/*',
    ]);
    expect(JSON.parse(assumeInputs(h)[2]!.Policy!).Statement[0].Action).toEqual(['s3:GetObject']);
    const bobUrl = parse(bob.json().objects[0].url);
    expect(bobUrl.path).toBe('/tenant-bucket/drop/bob/a.txt');
    expect(download.json().objects[0].method).toBe('GET');
  });

  it('refuses a key outside the rules before any STS call (400), and audits the denial', async () => {
    // Attack stopped: a path trick or a second tenant's key signed with this subject's session.
    h = await harness();
    for (const keys of [['../bob/x.txt'], ['/etc/passwd'], ['a//b'], ['ok.txt', './x']]) {
      const res = await presign(h, { profile: 'drop', operation: 'upload', keys });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('CV_INVALID_KEY');
    }
    const tooMany = await presign(h, { profile: 'drop', operation: 'upload', keys: ['1', '2', '3', '4', '5', '6'] });
    expect(tooMany.json().code).toBe('CV_TOO_MANY_KEYS');
    expect(assumeInputs(h)).toHaveLength(0);
    expect(h.audit.records()[0]).toMatchObject({
      event: 'credentials.denied',
      delivery: 'presigned',
      profile: 'drop',
      requestedKeys: ['../bob/x.txt'],
      reason: 'invalid_key',
    });
  });

  it('one token, many requests: each is checked and signed for its own keys (plans memoised per token)', async () => {
    // Attack stopped: a request served the plan memoised for the same token's earlier request
    // (its keys, or its clean bill), e.g. a traversal key after a valid one.
    h = await harness();
    const token = await h.token({ sub: 'alice' });
    const send = (keys: string[]) =>
      h!.app.inject({
        method: 'POST',
        url: '/v1/presigned',
        headers: { authorization: `Bearer ${token}` },
        payload: { profile: 'drop', operation: 'upload', keys },
      });
    const a = await send(['a.txt']);
    const traversal = await send(['../bob/a.txt']);
    const again = await send(['a.txt']);
    const b = await send(['b.txt']);
    expect([a, traversal, again, b].map((r) => r.statusCode)).toEqual([200, 400, 200, 200]);
    expect(b.json().objects.map((o: Obj) => parse(o.url).path)).toEqual(['/tenant-bucket/drop/alice/b.txt']);
    expect(again.json().objects.map((o: Obj) => parse(o.url).path)).toEqual(['/tenant-bucket/drop/alice/a.txt']);
    expect(h.audit.records().map((r) => [r.event, (r.urls as { key: string }[] | undefined)?.[0]?.key])).toEqual([
      ['presigned.issued', 'drop/alice/a.txt'],
      ['credentials.denied', undefined],
      ['presigned.issued', 'drop/alice/a.txt'],
      ['presigned.issued', 'drop/alice/b.txt'],
    ]);
  });

  it('each profile delivers only its own way: no credentials for a presigned profile, no URLs for a credentials profile', async () => {
    // Attack stopped: credentials from a size-capped presigned profile (no cap binds them), or a
    // prefix-wide signing session for a profile whose operator never opted in.
    h = await harness();
    const token = await h.token();
    const creds = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${token}` },
      payload: { profile: 'capped', operation: 'upload', keys: ['a.bin'] },
    });
    const container = await h.app.inject({
      method: 'GET',
      url: '/v1/container-credentials/capped?operation=upload&key=a.bin',
      headers: { authorization: `Bearer ${token}` },
    });
    const urls = await presign(h, { profile: 'uploads', operation: 'upload', keys: ['a.bin'] });
    for (const r of [creds, container, urls]) {
      expect(r.statusCode).toBe(403);
      expect(r.json().code).toBe('CV_DELIVERY_MISMATCH');
    }
    expect(assumeInputs(h)).toHaveLength(0);
  });

  it('with maxObjectBytes, uploads get a POST form whose policy pins the exact key and the size range, never a PUT URL', async () => {
    h = await harness();
    const res = await presign(h, {
      profile: 'capped',
      operation: 'upload',
      keys: ['a.bin', 'b.bin'],
      expiresSeconds: 300,
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.expiresInSeconds).toBe(300);
    expect(body.objects.map((o: Obj) => o.method)).toEqual(['POST', 'POST']);
    const [form] = body.objects as Obj[];
    expect(form).toMatchObject({
      key: 'capped/alice/a.bin',
      maxObjectBytes: MAX_BYTES,
      url: 'https://s3.eu-west-1.amazonaws.com/tenant-bucket',
    });
    const fields = form!.fields!;
    expect(fields.key).toBe('capped/alice/a.bin');
    expect(fields['X-Amz-Signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(fields['X-Amz-Algorithm']).toBe('AWS4-HMAC-SHA256');
    const policy = JSON.parse(Buffer.from(fields.Policy!, 'base64').toString('utf8')) as {
      expiration: string;
      conditions: unknown[];
    };
    expect(policy.conditions).toContainEqual({ key: 'capped/alice/a.bin' }); // exact match, not starts-with
    expect(policy.conditions).toContainEqual(['content-length-range', 0, MAX_BYTES]);
    expect(policy.conditions).toContainEqual({ bucket: 'tenant-bucket' });
    expect(policy.conditions.filter((c) => Array.isArray(c) && c[0] === 'starts-with')).toEqual([]);
    const lifetime = Date.parse(policy.expiration) - Date.now();
    expect(lifetime).toBeGreaterThan(290_000);
    expect(lifetime).toBeLessThanOrEqual(300_000);
    // Downloads of the same profile are plain GET URLs.
    const download = await presign(h, { profile: 'capped', operation: 'download', keys: ['a.bin'] });
    expect(download.json().objects[0].method).toBe('GET');
  });

  it('refuses a key ending in ${filename} for a POST form (the SDK would make it a starts-with condition)', async () => {
    h = await harness();
    const res = await presign(h, { profile: 'capped', operation: 'upload', keys: ['x${filename}'] });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('CV_INVALID_KEY');
    expect(assumeInputs(h)).toHaveLength(0);
  });

  it('reuses a session only while it outlives the URL by the margin; a URL never outlives its session', async () => {
    // Sessions of 1000 s: a 900 s URL fits (1000 - 60 >= 900) and the session is kept; a 1800 s
    // URL does not, so it gets a fresh session, and is cut to that session's life minus the margin.
    h = await harness({ lifetimeSeconds: 1000 });
    const a = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a'], expiresSeconds: 900 });
    const b = await presign(h, { profile: 'drop', operation: 'upload', keys: ['b'], expiresSeconds: 900 });
    expect(assumeInputs(h)).toHaveLength(1);
    const long = await presign(h, { profile: 'drop', operation: 'upload', keys: ['c'], expiresSeconds: 1800 });
    expect(assumeInputs(h)).toHaveLength(2);
    expect([a, b].map((r) => r.json().expiresInSeconds)).toEqual([900, 900]);
    expect(long.json().expiresInSeconds).toBeLessThanOrEqual(940);
    expect(long.json().expiresInSeconds).toBeGreaterThan(930);
    expect(parse(long.json().objects[0].url).expires).toBe(long.json().expiresInSeconds);
  });

  it('does not cache a failure: a throttled AssumeRole fails that request only', async () => {
    h = await harness();
    h.sts
      .on(AssumeRoleCommand)
      .rejectsOnce(
        Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } }),
      );
    const failed = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a'] });
    expect(failed.statusCode).toBe(503);
    expect(failed.json().code).toBe('CV_STS_THROTTLED');
    fakeSts(h);
    const ok = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a'] });
    expect(ok.statusCode).toBe(200);
    expect(h.audit.records()[0]).toMatchObject({
      event: 'credentials.failed',
      delivery: 'presigned',
      upstreamCode: 'Throttling',
      prefix: 'drop/alice/',
    });
  });

  it('audits one presigned.issued record per request: keys, methods, expiry, the session accessKeyId; never a URL', async () => {
    h = await harness();
    const first = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a.txt', 'b.txt'] });
    await presign(h, { profile: 'drop', operation: 'upload', keys: ['c.txt'] });
    expect((await presign(h, { profile: 'capped', operation: 'upload', keys: ['d.bin'] })).statusCode).toBe(200);
    const records = h.audit.records();
    expect(records).toHaveLength(3);
    const accessKeyId = parse(first.json().objects[0].url).accessKeyId;
    expect(records[0]).toMatchObject({
      event: 'presigned.issued',
      delivery: 'presigned',
      requestId: first.json().requestId,
      profile: 'drop',
      operation: 'upload',
      bucket: 'tenant-bucket',
      prefix: 'drop/alice/', // the signing session's grant
      roleArn: ROLE_ARN,
      durationSeconds: 3600,
      accessKeyId,
      packedPolicySize: 9,
      sessionReused: false,
      sessionRequestId: first.json().requestId,
      urls: [
        { key: 'drop/alice/a.txt', method: 'PUT', expiration: first.json().expiration },
        { key: 'drop/alice/b.txt', method: 'PUT', expiration: first.json().expiration },
      ],
    });
    expect(records[1]).toMatchObject({
      event: 'presigned.issued',
      accessKeyId,
      sessionReused: true,
      sessionRequestId: first.json().requestId,
      roleSessionName: records[0]!.roleSessionName,
      urls: [{ key: 'drop/alice/c.txt', method: 'PUT' }],
    });
    expect(records[2]).toMatchObject({
      event: 'presigned.issued',
      maxObjectBytes: MAX_BYTES,
      urls: [{ key: 'capped/alice/d.bin', method: 'POST' }],
    });
    expect(String(records[0]!.roleSessionName)).toContain(first.json().requestId.slice(0, 12));
    const lines = [...h.audit.lines, ...h.log.lines].join('\n');
    expect(lines).not.toMatch(/X-Amz-Signature|X-Amz-Security-Token|amazonaws\.com/);
    for (const s of allSecretsSeen) expect(lines).not.toContain(s);

    const text = await h.metrics.registry.metrics();
    expect(text).toContain('credvend_presign_sessions_total{outcome="new"} 2');
    expect(text).toContain('credvend_presign_sessions_total{outcome="cached"} 1');
    expect(text).toContain('credvend_presigned_urls_total{profile="drop",operation="upload"} 3');
    expect(text).toContain('credvend_presigned_urls_total{profile="capped",operation="upload"} 1');
    expect(text).not.toMatch(/credvend_credentials_issued_total\{/);
  });

  it('an answer holds no secret key; the session token only where SigV4 needs it (X-Amz-Security-Token)', async () => {
    h = await harness();
    const put = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a.txt'] });
    const form = await presign(h, { profile: 'capped', operation: 'upload', keys: ['a.bin'] });
    const get = await presign(h, { profile: 'drop', operation: 'download', keys: ['a.txt'] });
    for (const r of [put, form, get]) {
      expect(r.statusCode).toBe(200);
      for (const s of allSecretsSeen) {
        if (s.includes('secret')) expect(r.body).not.toContain(s);
        expect(withoutSessionTokens(r.json())).not.toContain(s);
      }
    }
  });

  it('an unwritable audit log withholds the URLs: 503 CV_AUDIT_UNAVAILABLE, the owed record says withheld', async () => {
    const lines: string[] = [];
    const state = { fail: true };
    const sink: AuditSink = {
      async write(chunk) {
        if (state.fail) return { written: 0, error: { code: 'ENOSPC' } };
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        return { written: chunk.length };
      },
      async close() {},
    };
    h = await harness({ auditSink: sink });
    const res = await presign(h, { profile: 'drop', operation: 'upload', keys: ['a.txt'] });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'CV_AUDIT_UNAVAILABLE' });
    expect(res.body).not.toMatch(/X-Amz|https:/);
    state.fail = false;
    await new Promise((r) => setTimeout(r, 1200)); // the retry timer writes what is owed
    const owed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(owed).toMatchObject([
      {
        event: 'credentials.failed',
        errorCode: 'CV_AUDIT_UNAVAILABLE',
        withheld: true,
        delivery: 'presigned',
        urls: [{ key: 'drop/alice/a.txt', method: 'PUT' }],
      },
    ]);
    expect(owed[0]!.accessKeyId).toMatch(/^ASIAPRESIGN/);
  });
});
