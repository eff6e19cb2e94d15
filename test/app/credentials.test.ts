// POST /v1/credentials through buildApp + inject(), with the STS client mocked: the exact
// AssumeRole input is the contract with AWS, so each security rule asserts it.
import { AssumeRoleCommand, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHarness, type Harness } from '../helpers/app.js';

let h: Harness;
afterEach(async () => h?.close());

async function post(body: unknown, opts: { token?: string; query?: string } = {}) {
  const token = opts.token ?? (await h.token());
  return h.app.inject({
    method: 'POST',
    url: `/v1/credentials${opts.query ?? ''}`,
    headers: { authorization: `Bearer ${token}` },
    payload: body as Record<string, unknown>,
  });
}

function assumeInputs(): AssumeRoleCommandInput[] {
  return h.sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input);
}

const ciClaims = {
  sub: 'project_path:group/app:ref_type:branch:ref:main',
  project_path: 'group/app',
  ref_protected: 'true',
  environment: 'production',
};

describe('POST /v1/credentials', () => {
  it('issues upload credentials scoped to the exact object under the caller prefix', async () => {
    // Prepare
    h = await buildHarness();
    // Act
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['report.pdf'] });
    // Assess
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body).toMatchObject({
      bucket: 'tenant-bucket',
      region: 'eu-west-1',
      keys: ['uploads/alice/report.pdf'],
      operation: 'upload',
      profile: 'uploads',
    });
    expect(body.accessKeyId).toMatch(/^ASIA/);
    expect(body.requestId).toBe(res.headers['x-request-id']);
    const [input] = assumeInputs();
    expect(JSON.parse(input!.Policy!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
          Resource: 'arn:aws:s3:::tenant-bucket/uploads/alice/report.pdf',
        },
      ],
    });
    expect(input!.RoleArn).toBe('arn:aws:iam::123456789012:role/credvend-uploads');
    expect(input!.DurationSeconds).toBe(900);
  });

  it('download grants GetObject only', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'download', keys: ['a.txt', 'b.txt'] });
    expect(res.statusCode).toBe(200);
    const policy = JSON.parse(assumeInputs()[0]!.Policy!);
    expect(policy.Statement).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: ['arn:aws:s3:::tenant-bucket/uploads/alice/a.txt', 'arn:aws:s3:::tenant-bucket/uploads/alice/b.txt'],
      },
    ]);
  });

  it('always sends the inline policy, also when managed session policy ARNs are configured', async () => {
    // Attack stopped: a profile with PolicyArns whose inline policy was dropped would get the
    // union of the managed policies intersected with the role — far more than the named keys.
    h = await buildHarness();
    const res = await post(
      { profile: 'ci', operation: 'upload', keys: ['build.tar.gz'] },
      { token: await h.token(ciClaims) },
    );
    expect(res.statusCode).toBe(200);
    const [input] = assumeInputs();
    expect(input!.PolicyArns).toEqual([
      { arn: 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess' },
      { arn: 'arn:aws:iam::123456789012:policy/ci/boundary' },
    ]);
    expect(JSON.parse(input!.Policy!).Statement[0].Resource).toBe(
      'arn:aws:s3:::ci-artifacts/ci/group~2Fapp/build.tar.gz',
    );
  });

  it('templates session tags, transitive keys, SourceIdentity and ExternalId from the verified claims', async () => {
    h = await buildHarness();
    await post({ profile: 'ci', operation: 'upload', keys: ['x'] }, { token: await h.token(ciClaims) });
    const [input] = assumeInputs();
    expect(input!.Tags).toEqual([
      { Key: 'project', Value: 'group/app' },
      { Key: 'env', Value: 'production' },
    ]);
    expect(input!.TransitiveTagKeys).toEqual(['project']);
    expect(input!.ExternalId).toBe('credvend-ci');
    expect(input!.SourceIdentity).toBe('project_path-group-app-ref_type-branch-ref-main');
  });

  it('derives RoleSessionName from the verified token, never from the body', async () => {
    // Attack stopped: a caller naming its own session could impersonate another user in CloudTrail.
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'], roleSessionName: 'admin' });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('CV_BAD_REQUEST');
    expect(assumeInputs()).toHaveLength(0);

    const ok = await post(
      { profile: 'uploads', operation: 'upload', keys: ['a'] },
      { token: await h.token({ sub: 'bob' }) },
    );
    expect(ok.statusCode).toBe(200);
    const name = assumeInputs()[0]!.RoleSessionName!;
    expect(name).toMatch(/^bob\.[0-9a-f]{8}\./);
    expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(name).toContain(ok.json().requestId.slice(0, 8));
  });

  it('a body cannot choose the prefix or the bucket', async () => {
    // Attack stopped: escaping the tenant prefix through request fields.
    h = await buildHarness();
    for (const extra of [{ bucket: 'other' }, { roleArn: 'arn:aws:iam::123456789012:role/admin' }, { Policy: '{}' }]) {
      const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'], ...extra });
      expect(res.statusCode).toBe(400);
    }
    expect(assumeInputs()).toHaveLength(0);
  });

  it('clamps the duration to the profile maximum and to the 3600 s role-chaining cap', async () => {
    h = await buildHarness();
    await post({ profile: 'uploads', operation: 'upload', keys: ['a'], durationSeconds: 3600 }); // profile max 1800
    await post(
      { profile: 'ci', operation: 'upload', keys: ['a'], durationSeconds: 7200 },
      { token: await h.token(ciClaims) },
    ); // profile max 7200
    await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }); // default
    expect(assumeInputs().map((i) => i.DurationSeconds)).toEqual([1800, 3600, 900]);
    const short = await post({ profile: 'uploads', operation: 'upload', keys: ['a'], durationSeconds: 60 });
    expect(short.statusCode).toBe(400);
  });

  it('escapes IAM wildcards in keys instead of honouring them', async () => {
    // Attack stopped: key "*" would otherwise grant every object under the prefix.
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['*', 'a?c', 'x$y'] });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(assumeInputs()[0]!.Policy!).Statement[0].Resource).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/alice/${*}',
      'arn:aws:s3:::tenant-bucket/uploads/alice/a${?}c',
      'arn:aws:s3:::tenant-bucket/uploads/alice/x${$}y',
    ]);
  });

  it('refuses wildcard keys outright in reject mode (S3-compatible servers)', async () => {
    h = await buildHarness({ env: { CREDVEND_WILDCARD_KEYS: 'reject' } });
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a*'] });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('CV_INVALID_KEY');
    expect(assumeInputs()).toHaveLength(0);
  });

  it('encodes claim values so a subject cannot climb out of its prefix', async () => {
    // Attack stopped: an identity provider subject like "../bob" or "bob/x" reaching another tenant.
    h = await buildHarness();
    await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, { token: await h.token({ sub: '../bob' }) });
    await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, { token: await h.token({ sub: 'bob/*' }) });
    const resources = assumeInputs().map((i) => JSON.parse(i.Policy!).Statement[0].Resource as string);
    expect(resources).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/~2E~2E~2Fbob/a',
      'arn:aws:s3:::tenant-bucket/uploads/bob~2F~2A/a',
    ]);
  });

  it.each([
    ['empty key', [''], 'CV_INVALID_KEY'],
    ['leading slash', ['/etc'], 'CV_INVALID_KEY'],
    ['dot-dot segment', ['../bob/a'], 'CV_INVALID_KEY'],
    ['double slash', ['a//b'], 'CV_INVALID_KEY'],
    ['control character', ['a\u0000b'], 'CV_INVALID_KEY'],
    ['too long', ['k'.repeat(1020)], 'CV_INVALID_KEY'],
  ])('rejects an invalid key (%s) with a 4xx and makes no AWS call', async (_name, keys, code) => {
    // Attack stopped: path tricks that S3 clients normalise into another tenant's object.
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json().code).toBe(code);
    expect(assumeInputs()).toHaveLength(0);
  });

  it('refuses more keys than the profile allows', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a', 'b', 'c', 'd', 'e', 'f'] });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('CV_TOO_MANY_KEYS');
  });

  it('answers 422 when the policy would exceed 2048 characters, never a broader grant', async () => {
    h = await buildHarness({
      profiles: {
        big: {
          roleArn: 'arn:aws:iam::123456789012:role/r',
          bucket: 'b-bucket',
          region: 'eu-west-1',
          maxKeys: 100,
          match: {},
        },
      },
    });
    const keys = Array.from({ length: 40 }, (_, i) => `some/long/path/to/an/object/number-${i}.bin`);
    const res = await post({ profile: 'big', operation: 'upload', keys });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'CV_POLICY_TOO_LARGE', status: 422 });
    expect(res.json().detail).toMatch(/fewer or shorter keys/);
    expect(assumeInputs()).toHaveLength(0);
  });

  it('prefix grants only where the profile allows them', async () => {
    // Attack stopped: turning a named-object profile into a whole-prefix grant.
    h = await buildHarness();
    const denied = await post({ profile: 'uploads', operation: 'upload', prefix: 'dir/' });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().code).toBe('CV_PREFIX_FORBIDDEN');
    const ok = await post({ profile: 'ci', operation: 'upload', prefix: 'dist/' }, { token: await h.token(ciClaims) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().prefix).toBe('ci/group~2Fapp/dist/');
    expect(JSON.parse(assumeInputs()[0]!.Policy!).Statement[0].Resource).toBe(
      'arn:aws:s3:::ci-artifacts/ci/group~2Fapp/dist/*',
    );
    const noSlash = await post(
      { profile: 'ci', operation: 'upload', prefix: 'dist' },
      { token: await h.token(ciClaims) },
    );
    expect(noSlash.statusCode).toBe(400);
  });

  it('adds KMS statements bound to S3 in the region and to the object encryption context', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'kms', operation: 'upload', keys: ['f.bin'] });
    expect(res.statusCode).toBe(200);
    const kms = JSON.parse(assumeInputs()[0]!.Policy!).Statement[1];
    expect(kms).toEqual({
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      Condition: {
        StringEquals: {
          'kms:ViaService': 's3.eu-west-1.amazonaws.com',
          'kms:EncryptionContext:aws:s3:arn': 'arn:aws:s3:::secure-bucket/in/alice/f.bin',
        },
      },
    });
  });

  it('formats credential_process v1 JSON', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, { query: '?format=process' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual([
      'AccessKeyId',
      'Expiration',
      'SecretAccessKey',
      'SessionToken',
      'Version',
    ]);
    expect(body.Version).toBe(1);
    expect(new Date(body.Expiration).getTime()).toBeGreaterThan(Date.now());
  });

  it('formats shell exports that survive eval', async () => {
    h = await buildHarness();
    const res = await post(
      { profile: 'uploads', operation: 'upload', keys: ["it's here.txt"] },
      { query: '?format=env' },
    );
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.headers['cache-control']).toBe('no-store');
    const lines = res.body.trim().split('\n');
    expect(lines.every((l) => /^export [A-Z_]+='.*'$/.test(l))).toBe(true);
    expect(res.body).toContain(`export CREDVEND_KEY='uploads/alice/it'\\''s here.txt'`);
    expect(res.body).toMatch(/^export AWS_ACCESS_KEY_ID='ASIA/m);
  });

  it('rejects an unknown format', async () => {
    h = await buildHarness();
    const res = await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, { query: '?format=xml' });
    expect(res.statusCode).toBe(400);
  });
});
