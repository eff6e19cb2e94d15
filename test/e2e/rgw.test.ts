// End-to-end: the built service, as its own process, vends credentials from a real STS (Ceph RGW)
// and a real S3 server enforces them. Every check here is made by S3 itself, with the vended
// credentials, through real clients: the AWS SDK, the SDK's default credential chain reading
// `credential_process` and container-credentials settings, and `eval "$(curl ...)"` in bash.
//
// What RGW cannot show (managed PolicyArns, session tags in conditions, KMS) is covered by the
// app suite's exact AssumeRole input and the IAM policy simulator tests.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUCKET,
  cleanEnv,
  credsOf,
  ensureBuilt,
  findSecrets,
  OTHER_BUCKET,
  remember,
  removeTempRoot,
  ROOT,
  run,
  s3Client,
  secrets,
  sleep,
  startIssuer,
  startRgw,
  tempRoot,
  vend,
  vendRaw,
  type Issuer,
  type Rgw,
} from '../helpers/e2e.js';
import { startService, type Service } from '../helpers/service-process.js';

const FIXTURE = join(ROOT, 'test/e2e/fixtures/s3-put.mjs');

let root: string;
let rgw: Rgw;
let issuer: Issuer;
let svc: Service;
let second: Service | undefined; // CREDVEND_WILDCARD_KEYS=escape, also stopped by the shutdown test
let admin: S3Client;
let alice: string;

beforeAll(async () => {
  root = tempRoot();
  // The build (when stale), RGW and the issuer start side by side: ~5 s instead of ~10 s. Each is
  // assigned as soon as it is up, so afterAll stops it even when another one failed.
  const started = await Promise.allSettled([
    ensureBuilt(),
    startRgw(root).then((r) => (rgw = r)),
    startIssuer().then((i) => (issuer = i)),
  ]);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  svc = await startService({ dir: root, rgw, issuer, name: 'svc' });
  admin = s3Client(rgw, { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
  alice = await issuer.sign({ sub: 'alice' });
});

afterAll(async () => {
  await Promise.allSettled([svc?.stop(), second?.stop()]);
  await Promise.allSettled([rgw?.stop(), issuer?.close()]);
  if (root) removeTempRoot(root);
});

// ---------------------------------------------------------------------------------------------

interface S3Failure {
  name: string;
  status: number | undefined;
}

async function failureOf(p: Promise<unknown>): Promise<S3Failure | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name ?? 'Error', status: e.$metadata?.httpStatusCode };
  }
}

/** S3 itself must refuse: AccessDenied (403), not a 404 or a network error. */
async function expectDenied(p: Promise<unknown>, what: string): Promise<void> {
  expect(await failureOf(p), what).toEqual({ name: 'AccessDenied', status: 403 });
}

const put = (s3: S3Client, Key: string, Body: string | Uint8Array = `body of ${Key}`, Bucket = BUCKET) =>
  s3.send(new PutObjectCommand({ Bucket, Key, Body }));
const getText = async (s3: S3Client, Key: string, Bucket = BUCKET): Promise<string> => {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return out.Body!.transformToString();
};

async function seed(Key: string, Body = `seeded ${Key}`): Promise<void> {
  await put(admin, Key, Body);
}

// ---------------------------------------------------------------------------------------------

describe('upload credentials', () => {
  const key = 'report.pdf';
  const full = `uploads/alice/${key}`;
  let s3: S3Client;

  beforeAll(async () => {
    const v = await vend(svc, alice, { profile: 'uploads', operation: 'upload', keys: [key] });
    expect(v.keys).toEqual([full]);
    s3 = s3Client(rgw, credsOf(v));
  });

  it('PutObject on the granted key succeeds', async () => {
    await put(s3, full, 'first upload');
    expect(await getText(admin, full)).toBe('first upload');
  });

  it('a multipart upload (11 MiB in 5 MiB parts) to the granted key succeeds', async () => {
    const body = Buffer.alloc(11 * 1024 * 1024, 7);
    const upload = new Upload({
      client: s3,
      params: { Bucket: BUCKET, Key: full, Body: body },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    let parts = 0;
    upload.on('httpUploadProgress', (p) => (parts = Math.max(parts, p.part ?? 0)));
    await upload.done();
    expect(parts).toBe(3);
    const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: full }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.ETag).toMatch(/-3"$/); // S3's multipart ETag: <md5 of md5s>-<parts>
  });

  it('a write to any other key is denied: sibling, key + suffix, key/x, another subject, another bucket', async () => {
    await expectDenied(put(s3, 'uploads/alice/other.pdf'), 'sibling key');
    await expectDenied(put(s3, `${full}.evil`), 'key + suffix');
    await expectDenied(put(s3, `${full}/x`), 'key as a folder');
    await expectDenied(put(s3, `uploads/bob/${key}`), "another subject's prefix");
    await expectDenied(put(s3, key), 'the bare key, outside the prefix');
    await expectDenied(put(s3, full, 'x', OTHER_BUCKET), 'same key in another bucket');
    const mp = new Upload({
      client: s3,
      params: { Bucket: BUCKET, Key: 'uploads/alice/other-multipart.bin', Body: Buffer.alloc(6 * 1024 * 1024) },
      partSize: 5 * 1024 * 1024,
    });
    await expectDenied(mp.done(), 'multipart upload to another key');
  });

  it('read, list and delete are denied, even on the granted key', async () => {
    await expectDenied(getText(s3, full), 'GetObject');
    await expectDenied(
      s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'uploads/alice/' })),
      'ListObjectsV2',
    );
    await expectDenied(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: full })), 'DeleteObject');
    // Still there: the denied delete did nothing.
    expect(await failureOf(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: full })))).toBeUndefined();
  });
});

describe('download credentials', () => {
  const full = 'uploads/alice/photo.jpg';
  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 10, 13, 0]);
  let s3: S3Client;

  beforeAll(async () => {
    const up = await vend(svc, alice, { profile: 'uploads', operation: 'upload', keys: ['photo.jpg'] });
    await put(s3Client(rgw, credsOf(up)), full, bytes);
    await seed('uploads/alice/private.txt');
    await seed('uploads/bob/photo.jpg');
    const down = await vend(svc, alice, { profile: 'uploads', operation: 'download', keys: ['photo.jpg'] });
    s3 = s3Client(rgw, credsOf(down));
  });

  it('GetObject on the granted key returns the uploaded bytes', async () => {
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: full }));
    expect(Buffer.from(await out.Body!.transformToByteArray())).toEqual(bytes);
  });

  it('PutObject on the granted key is denied and the object is unchanged', async () => {
    await expectDenied(put(s3, full, 'overwritten'), 'PutObject with download credentials');
    const out = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: full }));
    expect(Buffer.from(await out.Body!.transformToByteArray())).toEqual(bytes);
  });

  it('other keys are denied (they exist, so this is not a 404)', async () => {
    await expectDenied(getText(s3, 'uploads/alice/private.txt'), 'sibling');
    await expectDenied(getText(s3, 'uploads/bob/photo.jpg'), "another subject's object");
    await expectDenied(s3.send(new ListObjectsV2Command({ Bucket: BUCKET })), 'ListObjectsV2');
  });
});

describe('keys with IAM wildcards', () => {
  it('escape mode (explicit CREDVEND_WILDCARD_KEYS=escape): a grant for "star*.txt" never admits what the wildcard would match', async () => {
    second = await startService({ dir: root, rgw, issuer, name: 'escape', env: { CREDVEND_WILDCARD_KEYS: 'escape' } });
    const v = await vend(second, alice, { profile: 'uploads', operation: 'upload', keys: ['star*.txt', 'q?.txt'] });
    expect(v.keys).toEqual(['uploads/alice/star*.txt', 'uploads/alice/q?.txt']);
    const s3 = s3Client(rgw, credsOf(v));
    for (const k of ['starXYZ.txt', 'star.txt', 'star-anything/x.txt', 'qX.txt', 'q.txt']) {
      await expectDenied(put(s3, `uploads/alice/${k}`), `wildcard match ${k}`);
    }
    // What the literal names do depends on the server. On AWS the escaped Resource `star${*}.txt`
    // matches exactly the object `star*.txt`. Ceph RGW 16 does not implement the `${*}` escapes:
    // it matches `$`, `{`, `}` literally and the `*` inside as a wildcard, so the caller's own
    // `star*.txt` is DENIED and names of the form `star${...}.txt` (in the caller's own prefix)
    // are ALLOWED. The grant never leaves the caller's prefix, but against such a server use
    // reject mode, the default in S3-compatible mode (next test), rather than hand out such credentials.
    const literal = await failureOf(put(s3, 'uploads/alice/star*.txt'));
    const rgwShape = await failureOf(put(s3, 'uploads/alice/star${*}.txt'));
    const rgwWidened = await failureOf(put(s3, 'uploads/alice/star${x}.txt'));
    console.info(
      `e2e: escaped grant "star\${*}.txt" on this server: "star*.txt" ${literal ? 'denied' : 'allowed'}, "star\${*}.txt" ${rgwShape ? 'denied' : 'allowed'}, "star\${x}.txt" ${rgwWidened ? 'denied' : 'allowed'}`,
    );
    expect(
      literal === undefined || (rgwShape === undefined && rgwWidened === undefined),
      'AWS semantics, or RGW 16 semantics as measured',
    ).toBe(true);
  });

  it('S3-compatible mode refuses "*", "?" and "$" keys by default: 400 CV_INVALID_KEY', async () => {
    // Attack stopped: on RGW an escaped `${*}` is still a wildcard, so escaping would widen the grant.
    for (const key of ['star*.txt', 'q?.txt', 'cost$.txt']) {
      const r = await vendRaw(svc, alice, { profile: 'uploads', operation: 'upload', keys: [key] });
      expect(r.status, key).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.body).toMatchObject({ code: 'CV_INVALID_KEY', status: 400 });
    }
    const ok = await vendRaw(svc, alice, { profile: 'uploads', operation: 'upload', keys: ['plain.txt'] });
    expect(ok.status).toBe(200);
  });
});

describe('several keys in one request', () => {
  it('each requested key is writable and a key not requested is denied', async () => {
    const keys = ['batch/a.txt', 'batch/b.txt', 'batch/sub/c.txt'];
    const v = await vend(svc, alice, { profile: 'uploads', operation: 'upload', keys });
    const s3 = s3Client(rgw, credsOf(v));
    for (const k of keys) await put(s3, `uploads/alice/${k}`, k);
    for (const k of keys) expect(await getText(admin, `uploads/alice/${k}`)).toBe(k);
    await expectDenied(put(s3, 'uploads/alice/batch/d.txt'), 'a key not requested');
    await expectDenied(put(s3, 'uploads/alice/batch/sub/'), 'the folder of a requested key');
  });
});

describe('output formats used by real clients', () => {
  it('?format=process works as credential_process for the SDK default chain', async () => {
    const r = await vendRaw(svc, alice, { profile: 'uploads', operation: 'upload', keys: ['process.txt'] }, 'process');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toEqual({
      Version: 1,
      AccessKeyId: expect.any(String),
      SecretAccessKey: expect.any(String),
      SessionToken: expect.any(String),
      Expiration: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
    });
    const dir = join(root, 'process');
    mkdirSync(dir, { recursive: true });
    const script = join(dir, 'credvend-creds.sh');
    writeFileSync(script, `#!/bin/sh\ncat <<'JSON'\n${r.text}\nJSON\n`, { mode: 0o700 });
    const config = join(dir, 'config');
    writeFileSync(config, `[profile vend]\ncredential_process = ${script}\nregion = ${rgw.region}\n`);

    const out = await run(
      process.execPath,
      [FIXTURE, rgw.endpoint, BUCKET, 'uploads/alice/process.txt', 'via credential_process'],
      {
        env: cleanEnv({
          AWS_CONFIG_FILE: config,
          AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
          AWS_PROFILE: 'vend',
        }),
      },
    );
    const result = parseFixture(out.stdout);
    expect(result, out.stderr).toMatchObject({ ok: true, credentials: { accessKeyId: r.body?.AccessKeyId } });
    expect(await getText(admin, 'uploads/alice/process.txt')).toBe('via credential_process');
  });

  const envScript = (then: string) => `set -eu
eval "$(curl -sSf -X POST "$CV_URL/v1/credentials?format=env" -H "Authorization: Bearer $CV_TOKEN" -H 'content-type: application/json' -d "$CV_BODY")"
${then}`;

  it('?format=env: eval "$(curl ...)" in bash, then an SDK client with no other configuration uploads', async () => {
    const body = JSON.stringify({ profile: 'uploads', operation: 'upload', keys: ['from-env.txt'] });
    const out = await run(
      'bash',
      ['-c', envScript('exec node "$FIXTURE" "$S3_ENDPOINT" "$CREDVEND_BUCKET" "$CREDVEND_KEY" "via eval"')],
      {
        env: cleanEnv({
          CV_URL: svc.url,
          CV_TOKEN: alice,
          CV_BODY: body,
          FIXTURE,
          S3_ENDPOINT: rgw.endpoint,
          AWS_CONFIG_FILE: '/nonexistent',
          AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
        }),
      },
    );
    const result = parseFixture(out.stdout);
    expect(result, out.stderr).toMatchObject({ ok: true });
    expect(await getText(admin, 'uploads/alice/from-env.txt')).toBe('via eval');
    await svc.waitForAudit(
      (a) => a.event === 'credentials.issued' && a.accessKeyId === result.credentials?.accessKeyId,
    );
  });

  it.skipIf(!onPath('aws'))('?format=env with the AWS CLI, as the README prints it', async () => {
    const dir = join(root, 'cli');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'hello.txt'), 'via aws cli');
    const body = JSON.stringify({ profile: 'uploads', operation: 'upload', keys: ['from-cli.txt'] });
    const cmd =
      envScript(`AWS_REQUEST_CHECKSUM_CALCULATION=when_required aws --endpoint-url "$S3_ENDPOINT" s3 cp "$DIR/hello.txt" "s3://$CREDVEND_BUCKET/$CREDVEND_KEY"
printf '%s\\n%s\\n' "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" > "$DIR/seen"`);
    const out = await run('bash', ['-c', cmd], {
      env: cleanEnv({
        CV_URL: svc.url,
        CV_TOKEN: alice,
        CV_BODY: body,
        DIR: dir,
        S3_ENDPOINT: rgw.endpoint,
        AWS_CONFIG_FILE: '/nonexistent',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      }),
    });
    if (existsSync(join(dir, 'seen'))) remember(...readFileSync(join(dir, 'seen'), 'utf8').split('\n'));
    expect(out.code, out.stderr).toBe(0);
    expect(await getText(admin, 'uploads/alice/from-cli.txt')).toBe('via aws cli');
  });
});

describe('container-credentials endpoint', () => {
  it('the SDK default chain uses AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN', async () => {
    const out = await run(
      process.execPath,
      [FIXTURE, rgw.endpoint, BUCKET, 'uploads/alice/cc.txt', 'via container credentials'],
      {
        env: cleanEnv({
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `${svc.url}/v1/container-credentials/uploads?operation=upload&key=cc.txt`,
          AWS_CONTAINER_AUTHORIZATION_TOKEN: alice,
          AWS_REGION: rgw.region,
          AWS_CONFIG_FILE: '/nonexistent',
          AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
        }),
      },
    );
    const result = parseFixture(out.stdout);
    expect(result, out.stderr).toMatchObject({ ok: true });
    expect(await getText(admin, 'uploads/alice/cc.txt')).toBe('via container credentials');
    const record = await svc.waitForAudit(
      (a) => a.event === 'credentials.issued' && a.accessKeyId === result.credentials?.accessKeyId,
    );
    expect(record).toMatchObject({ profile: 'uploads', operation: 'upload', keys: ['uploads/alice/cc.txt'] });

    // The same credentials are scoped like any other.
    const c = result.credentials!;
    const s3 = s3Client(rgw, {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
    });
    await expectDenied(put(s3, 'uploads/alice/cc-other.txt'), 'container credentials, other key');
  });
});

describe('refusals and failures are answered, audited and never reach AWS', () => {
  it('a token signed by an unknown key: 401 CV_TOKEN_INVALID, audited as credentials.denied', async () => {
    // Same kid as the real key, so the service does not even refetch the JWKS: the signature fails.
    const forged = await issuer.sign({ sub: 'alice' }, { key: await issuer.strangerKey() });
    const r = await vendRaw(svc, forged, { profile: 'uploads', operation: 'upload', keys: ['x.txt'] });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ code: 'CV_TOKEN_INVALID', status: 401, requestId: expect.any(String) });
    const rec = await svc.waitForAudit((a) => a.requestId === r.body?.requestId);
    expect(rec).toMatchObject({
      event: 'credentials.denied',
      errorCode: 'CV_TOKEN_INVALID',
      reason: 'unauthenticated',
    });

    const wrongAud = await issuer.sign({ sub: 'alice' }, { audience: 'another-service' });
    const r2 = await vendRaw(svc, wrongAud, { profile: 'uploads', operation: 'upload', keys: ['x.txt'] });
    expect(r2.status).toBe(401);
    expect(r2.body).toMatchObject({ code: 'CV_TOKEN_INVALID' });
    expect(
      (await vendRaw(svc, undefined, { profile: 'uploads', operation: 'upload', keys: ['x.txt'] })).body,
    ).toMatchObject({ code: 'CV_TOKEN_MISSING' });
  });

  it("another team's claims on profile team-a: 403, audited; team a itself gets credentials that work", async () => {
    const teamB = await issuer.sign({ sub: 'mallory', team: 'b' });
    const r = await vendRaw(svc, teamB, { profile: 'team-a', operation: 'upload', keys: ['plan.txt'] });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'CV_PROFILE_FORBIDDEN' });
    const rec = await svc.waitForAudit((a) => a.requestId === r.body?.requestId);
    expect(rec).toMatchObject({
      event: 'credentials.denied',
      profile: 'team-a',
      errorCode: 'CV_PROFILE_FORBIDDEN',
      subject: { sub: 'mallory', claims: { team: 'b' } },
    });

    const noClaim = await issuer.sign({ sub: 'nobody' });
    expect((await vendRaw(svc, noClaim, { profile: 'team-a', operation: 'upload', keys: ['plan.txt'] })).status).toBe(
      403,
    );

    const teamA = await issuer.sign({ sub: 'ann', team: 'a' });
    const v = await vend(svc, teamA, { profile: 'team-a', operation: 'upload', keys: ['plan.txt'] });
    await put(s3Client(rgw, credsOf(v)), 'teams/a/plan.txt', 'team a plan');
    expect(await getText(admin, 'teams/a/plan.txt')).toBe('team a plan');
  });

  it('a profile whose role does not exist: 502 CV_STS_REJECTED without upstream text, audited as credentials.failed', async () => {
    const r = await vendRaw(svc, alice, { profile: 'missing-role', operation: 'upload', keys: ['x.txt'] });
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'CV_STS_REJECTED', status: 502 });
    expect(r.text).not.toMatch(/NoSuchEntity|DoesNotExist|<Error>|at .*\.js/);
    const rec = await svc.waitForAudit((a) => a.requestId === r.body?.requestId);
    expect(rec).toMatchObject({
      event: 'credentials.failed',
      profile: 'missing-role',
      errorCode: 'CV_STS_REJECTED',
      roleArn: 'arn:aws:iam::123456789012:role/DoesNotExist',
      keys: ['missing/alice/x.txt'],
    });
  });

  it('an issued credential is audited with its accessKeyId, keys, role and session name', async () => {
    const v = await vend(svc, alice, { profile: 'uploads', operation: 'download', keys: ['audit-me.txt'] });
    const rec = await svc.waitForAudit((a) => a.requestId === v.requestId);
    expect(rec).toMatchObject({
      event: 'credentials.issued',
      accessKeyId: v.accessKeyId,
      expiration: v.expiration,
      profile: 'uploads',
      operation: 'download',
      bucket: BUCKET,
      keys: ['uploads/alice/audit-me.txt'],
      roleArn: rgw.roleArn,
      roleSessionName: expect.stringMatching(/^alice\./),
      subject: { iss: expect.any(String), sub: 'alice' },
      policySha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(JSON.stringify(rec)).not.toContain(v.secretAccessKey);
  });
});

describe('credential lifetime', () => {
  it('durationSeconds 900 (the minimum) gives an expiration ~900 s after issue; shorter is refused', async () => {
    const v = await vend(svc, alice, {
      profile: 'uploads',
      operation: 'upload',
      keys: ['ttl.txt'],
      durationSeconds: 900,
    });
    const lifetime = (Date.parse(v.expiration) - v.issuedAt) / 1000;
    expect(lifetime).toBeGreaterThan(900 - 15);
    expect(lifetime).toBeLessThan(900 + 15);
    const short = await vendRaw(svc, alice, {
      profile: 'uploads',
      operation: 'upload',
      keys: ['ttl.txt'],
      durationSeconds: 60,
    });
    expect(short.status).toBe(400);
    expect(short.body).toMatchObject({ code: 'CV_BAD_REQUEST' });
  });

  // RGW enforces DurationSeconds >= 900 (rgw_sts_min_session_duration), so proving that S3 refuses
  // the credentials after expiry means waiting 15 minutes. The tampered-token test below is the
  // cheap real check that S3 validates the session token at all.
  it.skip('expired credentials are refused by S3 (needs 900 s, longer than the suite may wait)', () => {});
  console.info(
    'e2e: skipped "expired credentials are refused": credential expiry needs 900 s, longer than the suite may wait',
  );

  it('a tampered session token is refused by S3 (and the untampered one works)', async () => {
    const v = await vend(svc, alice, { profile: 'uploads', operation: 'upload', keys: ['tamper.txt'] });
    const t = v.sessionToken;
    const flip = (i: number) => t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
    for (const [what, token] of [
      ['first character', flip(0)],
      ['last block', t.slice(0, -4) + (t.endsWith('AAAA') ? 'BBBB' : 'AAAA')],
      ['truncated', t.slice(0, -8)],
    ] as const) {
      const f = await failureOf(
        put(s3Client(rgw, { ...credsOf(v), sessionToken: token }), 'uploads/alice/tamper.txt', 'tampered'),
      );
      expect(f, what).toBeDefined();
      expect(f!.status, what).toBeGreaterThanOrEqual(400);
    }
    expect(
      await failureOf(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'uploads/alice/tamper.txt' }))),
    ).toMatchObject({ status: 404 });
    await put(s3Client(rgw, credsOf(v)), 'uploads/alice/tamper.txt', 'genuine');
    expect(await getText(admin, 'uploads/alice/tamper.txt')).toBe('genuine');
  });

  // Not credvend's behaviour, measured here because it decides how far a deployment on Ceph RGW
  // may trust session policies: RGW 16 seals session tokens with AES-CBC and no MAC (upstream
  // ceph/ceph#70668 adds AES-GCM), so flipping a character inside the token can yield a token
  // that RGW accepts WITHOUT its session policy, i.e. with the role's full permissions. On RGW
  // the role's own policy is the real boundary against a credential holder; on AWS the token is
  // authenticated and this does not apply.
  it('documents RGW session-token malleability (characterisation, never fails the suite)', async () => {
    const v = await vend(svc, alice, { profile: 'uploads', operation: 'upload', keys: ['malleable.txt'] });
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const t = v.sessionToken;
    const escalations: number[] = [];
    let refused = 0;
    for (let i = 0; i < t.length; i += 16) {
      const c = t[i] ?? 'A';
      const token = t.slice(0, i) + B64[(B64.indexOf(c) + 1) % 64] + t.slice(i + 1);
      const f = await failureOf(
        put(s3Client(rgw, { ...credsOf(v), sessionToken: token }), 'uploads/bob/escalated.txt', 'x'),
      );
      if (f) refused += 1;
      else escalations.push(i);
    }
    if (escalations.length > 0) {
      console.warn(
        `e2e: RGW accepted ${escalations.length} tampered session token(s) that shed the session policy (wrote another subject's key); flipped positions ${escalations.join(',')} of ${t.length}. On RGW, scope the ROLE itself.`,
      );
      await admin.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'uploads/bob/escalated.txt' }));
    } else {
      console.info('e2e: RGW refused every tampered session token tried');
    }
    expect(refused).toBeGreaterThan(0);
  });
});

describe('presigned mode', () => {
  // The service signs from a cached session (never handed out); the URLs and forms are all a
  // caller gets, and RGW itself decides what each one can do.
  interface PresignedObject {
    key: string;
    method: string;
    url: string;
    fields?: Record<string, string>;
  }

  async function presign(
    body: Record<string, unknown>,
    token = alice,
  ): Promise<{ requestId: string; objects: PresignedObject[] }> {
    const res = await fetch(`${svc.url}/v1/presigned`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const parsed = JSON.parse(text) as { requestId: string; objects: PresignedObject[] };
    // The session token rides in every URL and form by design: it must still never be logged.
    for (const o of parsed.objects)
      remember(
        new URL(o.url).searchParams.get('X-Amz-Security-Token') ?? undefined,
        o.fields?.['X-Amz-Security-Token'],
      );
    return parsed;
  }

  /** The same URL (signature and all) aimed at another key: only the path changes. */
  function retarget(url: string, key: string): string {
    const u = new URL(url);
    u.pathname = `/${BUCKET}/${key}`;
    return u.toString();
  }

  const accessKeyOf = (url: string) => (new URL(url).searchParams.get('X-Amz-Credential') ?? '').split('/')[0];

  async function postForm(
    form: PresignedObject,
    bytes: number,
    fieldOverrides: Record<string, string> = {},
  ): Promise<{ status: number; text: string }> {
    const data = new FormData();
    for (const [k, v] of Object.entries({ ...form.fields, ...fieldOverrides })) data.append(k, v);
    data.append('file', new Blob([Buffer.alloc(bytes, 0x61)]), 'upload.bin');
    const res = await fetch(form.url, { method: 'POST', body: data });
    return { status: res.status, text: await res.text() };
  }

  it('a PUT URL uploads exactly its key; its signature on any other key is refused by RGW (403)', async () => {
    const { requestId, objects } = await presign({
      profile: 'drop',
      operation: 'upload',
      keys: ['one.txt', 'two.txt'],
    });
    const [one] = objects;
    expect(one!.method).toBe('PUT');
    const ok = await fetch(one!.url, { method: 'PUT', body: 'first' });
    expect(ok.status, await ok.text()).toBe(200);
    expect(await getText(admin, 'drop/alice/one.txt')).toBe('first');
    for (const other of ['drop/alice/two.txt', 'drop/alice/one.txt.bak', 'drop/bob/one.txt', 'uploads/alice/one.txt']) {
      const res = await fetch(retarget(one!.url, other), { method: 'PUT', body: 'forged' });
      expect(res.status, `${other}: ${await res.text()}`).toBe(403);
    }
    expect(
      await failureOf(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'drop/alice/two.txt' }))),
    ).toMatchObject({ status: 404 });
    const record = await svc.waitForAudit((r) => r.requestId === requestId);
    expect(record).toMatchObject({
      event: 'presigned.issued',
      delivery: 'presigned',
      accessKeyId: accessKeyOf(one!.url),
      urls: [
        { key: 'drop/alice/one.txt', method: 'PUT' },
        { key: 'drop/alice/two.txt', method: 'PUT' },
      ],
    });
  });

  it('a GET URL downloads its key; edited to another key it is refused', async () => {
    await put(admin, 'drop/alice/dl.txt', 'download me');
    await put(admin, 'drop/alice/private.txt', 'not granted');
    const { objects } = await presign({ profile: 'drop', operation: 'download', keys: ['dl.txt'] });
    const res = await fetch(objects[0]!.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('download me');
    const forged = await fetch(retarget(objects[0]!.url, 'drop/alice/private.txt'));
    expect(forged.status).toBe(403);
    // A download URL does not upload.
    expect((await fetch(objects[0]!.url, { method: 'PUT', body: 'x' })).status).toBe(403);
  });

  it('one AssumeRole serves the next requests of the same subject (same session accessKeyId)', async () => {
    const a = await presign({ profile: 'drop', operation: 'upload', keys: ['r1.txt'] });
    const b = await presign({ profile: 'drop', operation: 'upload', keys: ['r2.txt'] });
    expect(accessKeyOf(b.objects[0]!.url)).toBe(accessKeyOf(a.objects[0]!.url));
    expect(await svc.waitForAudit((r) => r.requestId === b.requestId)).toMatchObject({ sessionReused: true });
    const bob = await presign(
      { profile: 'drop', operation: 'upload', keys: ['r1.txt'] },
      await issuer.sign({ sub: 'bob' }),
    );
    expect(accessKeyOf(bob.objects[0]!.url)).not.toBe(accessKeyOf(a.objects[0]!.url));
    expect((await fetch(b.objects[0]!.url, { method: 'PUT', body: 'two' })).status).toBe(200);
  });

  // RGW 16 routes a POST before it authenticates, so a tenant's bucket (this suite's buckets
  // belong to tenant 123456789012) is found only as /<tenant>:<bucket> (plain /<bucket> answers
  // NoSuchBucket); the signed policy still names the bucket as it is. AWS needs none of this.
  const rgwPostUrl = (url: string) => url.replace(`/${BUCKET}`, `/${rgw.roleArn.split(':')[4]}:${BUCKET}`);

  function policyOf(fields: Record<string, string>): { expiration: string; conditions: unknown[] } {
    return JSON.parse(Buffer.from(fields.Policy!, 'base64').toString('utf8')) as {
      expiration: string;
      conditions: unknown[];
    };
  }

  it('RGW checks a session-signed form: edited to another key, a forged signature or a widened policy is refused (403)', async () => {
    const { objects } = await presign({ profile: 'capped', operation: 'upload', keys: ['small.bin'] });
    const form = { ...objects[0]!, url: rgwPostUrl(objects[0]!.url) };
    expect(form.method).toBe('POST');
    const elsewhere = await postForm(form, 10, { key: 'capped/alice/other.bin' });
    expect(elsewhere.status, elsewhere.text).toBe(403);
    expect(elsewhere.text).toMatch(/Policy check failed.*key/);
    const forgedSignature = await postForm(form, 10, { 'X-Amz-Signature': '0'.repeat(64) });
    expect(forgedSignature.status).toBe(403);
    const wider = Buffer.from(JSON.stringify({ ...policyOf(form.fields!), conditions: [] })).toString('base64');
    expect((await postForm(form, 10, { Policy: wider })).status).toBe(403);
    expect(
      await failureOf(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'capped/alice/other.bin' }))),
    ).toMatchObject({ status: 404 });
  });

  it("the form has the SDK's own createPresignedPost shape, and RGW refuses an oversized file sent with that shape (signed with static keys)", async () => {
    // RGW 16 enforces content-length-range only for forms signed with a user's static keys (see
    // the characterisation below): the cap is proven here on the same form shape, field by field.
    const { objects } = await presign({ profile: 'capped', operation: 'upload', keys: ['shape.bin'] });
    const ours = objects[0]!.fields!;
    const sdk = await createPresignedPost(admin, {
      Bucket: BUCKET,
      Key: 'capped/alice/shape.bin',
      Conditions: [['content-length-range', 0, 1024]],
      Expires: 900,
    });
    const { 'X-Amz-Security-Token': token, ...oursWithoutToken } = ours;
    expect(token).toBeTruthy();
    expect(Object.keys(oursWithoutToken).sort()).toEqual(Object.keys(sdk.fields).sort());
    expect(oursWithoutToken.key).toBe(sdk.fields.key);
    expect(oursWithoutToken.bucket).toBe(sdk.fields.bucket);
    const variable = new Set(['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Security-Token']);
    const stable = (conds: unknown[]) =>
      conds.filter(
        (c) =>
          !(typeof c === 'object' && c !== null && !Array.isArray(c) && Object.keys(c).some((k) => variable.has(k))),
      );
    expect(stable(policyOf(ours).conditions)).toEqual(stable(policyOf(sdk.fields).conditions));
    expect(policyOf(ours).conditions).toContainEqual({ 'X-Amz-Security-Token': token });
    const sdkForm = { key: 'capped/alice/shape.bin', method: 'POST', url: rgwPostUrl(sdk.url), fields: sdk.fields };
    const big = await postForm(sdkForm, 2048);
    expect(big.status, big.text).toBe(400);
    expect(big.text).toMatch(/EntityTooLarge/);
    expect((await postForm(sdkForm, 1024)).status).toBe(204);
    expect((await getText(admin, 'capped/alice/shape.bin')).length).toBe(1024);
  });

  it('documents RGW 16 with session-signed forms: 204 but nothing stored, size range unchecked (characterisation, never fails the suite)', async () => {
    const { objects } = await presign({ profile: 'capped', operation: 'upload', keys: ['in-cap.bin', 'too-big.bin'] });
    const [inCap, tooBig] = objects.map((o) => ({ ...o, url: rgwPostUrl(o.url) }));
    const ok = await postForm(inCap!, 100);
    const big = await postForm(tooBig!, 2048);
    const stored = async (key: string) =>
      (await failureOf(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })))) === undefined;
    // Measured on RGW 16.2.15: both 204 and neither object exists; AWS S3 stores the first and
    // answers 400 EntityTooLarge to the second.
    console.info(
      `RGW: session-signed POST in cap -> ${ok.status}, stored: ${await stored(inCap!.key)}; oversized -> ${big.status}, stored: ${await stored(tooBig!.key)}`,
    );
    expect([204, 400]).toContain(big.status);
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM while a request is in flight: the request completes, new ones are refused, exit 0', async () => {
    const target =
      second ??
      (second = await startService({
        dir: root,
        rgw,
        issuer,
        name: 'escape',
        env: { CREDVEND_WILDCARD_KEYS: 'escape' },
      }));
    // A key id the service has not seen makes it fetch the JWKS; the issuer holds that response,
    // which keeps the request in flight for as long as the test needs.
    const kid = await issuer.addKey();
    const carol = await issuer.sign({ sub: 'carol' }, { kid });
    // An unknown kid may trigger a JWKS fetch only once per cooldown (10 s) after the last fetch,
    // the one at start-up included: wait that out, so this request does fetch.
    await sleep(10_500);
    const gate = issuer.holdJwks();
    const pending = vendRaw(target, carol, { profile: 'uploads', operation: 'upload', keys: ['drain.txt'] });
    await gate.requested;
    target.signal('SIGTERM');
    await sleep(300);
    const during = await fetch(`${target.adminUrl}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    const fresh = await fetch(`${target.url}/healthz`).then(
      (r) => r.status,
      () => 0,
    );
    gate.release();
    const r = await pending;
    expect(r.status, r.text).toBe(200);
    expect(during, '/readyz while draining').toBe(503);
    expect(fresh, 'a new request while draining').not.toBe(200);
    expect(await target.exited).toBe(0);
    await put(
      s3Client(
        rgw,
        credsOf(r.body as unknown as { accessKeyId: string; secretAccessKey: string; sessionToken: string }),
      ),
      'uploads/carol/drain.txt',
      'drained',
    );
  });
});

describe('secrets', () => {
  it('no JWT, secret key or session token appears in stdout, stderr or the audit log of any instance', async () => {
    // Stopped first: pino buffers stdout, and everything must be on disk before the scan.
    await Promise.all([svc.stop(), second?.stop()]);
    const files = [svc, second]
      .filter((s): s is Service => s !== undefined)
      .flatMap((s) => [s.stdoutFile, s.stderrFile, s.auditFile]);
    expect(files.filter(existsSync).length).toBeGreaterThanOrEqual(4);
    expect(secrets.size, 'secrets recorded by the suite').toBeGreaterThan(20);
    expect(findSecrets(files)).toEqual([]);
    // The audit file is one JSON record per decision, and has the denials and failures seen above.
    const events = svc.auditRecords().map((a) => a.event);
    expect(events).toContain('credentials.issued');
    expect(events).toContain('credentials.denied');
    expect(events).toContain('credentials.failed');
  });
});

// ---------------------------------------------------------------------------------------------

interface FixtureResult {
  ok: boolean;
  name?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

function parseFixture(stdout: string): FixtureResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  let r: FixtureResult;
  try {
    r = JSON.parse(line) as FixtureResult;
  } catch {
    return { ok: false, name: `unparseable fixture output: ${stdout.slice(0, 300)}` };
  }
  remember(r.credentials?.secretAccessKey, r.credentials?.sessionToken);
  return r;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));
}
