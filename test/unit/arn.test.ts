import { describe, it, expect } from 'vitest';
import { parseArn, parseRoleArn, parseManagedPolicyArn, parseKmsArn, s3ObjectArn, s3BucketArn } from '../../src/arn.js';

// Why these tests are paranoid: a misparsed ARN (a policy ARN taken as a role,
// a role "name" that smuggles in ':policy/...', a trimmed trailing space)
// could silently degrade a vended session to the role's full permissions.
// Every rejection below is a shape we have to refuse, not merely tolerate.

const ACCT = '123456789012';

describe('parseArn', () => {
  it.each<[string, { partition: string; service: string; region: string; account: string; resource: string }]>([
    [
      `arn:aws:iam::${ACCT}:role/VendRole`,
      { partition: 'aws', service: 'iam', region: '', account: ACCT, resource: 'role/VendRole' },
    ],
    // The resource keeps any further ':' (e.g. log groups, some legacy shapes).
    [
      `arn:aws:logs:us-east-1:${ACCT}:log-group:/app:*`,
      { partition: 'aws', service: 'logs', region: 'us-east-1', account: ACCT, resource: 'log-group:/app:*' },
    ],
    [
      'arn:aws-cn:s3:::bucket/key',
      { partition: 'aws-cn', service: 's3', region: '', account: '', resource: 'bucket/key' },
    ],
    [
      'arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/abc',
      { partition: 'aws-us-gov', service: 'kms', region: 'us-gov-west-1', account: ACCT, resource: 'key/abc' },
    ],
  ])('accepts %s', (text, expected) => {
    expect(parseArn(text)).toEqual({ ok: true, value: expected });
  });

  it.each<[string, string]>([
    ['', 'empty'],
    ['not-an-arn', "must start with 'arn:'"],
    [`ARN:aws:iam::${ACCT}:role/R`, "lowercase 'arn:'"],
    [`Arn:aws:iam::${ACCT}:role/R`, "lowercase 'arn:'"],
    [`arn:aws-iso:iam::${ACCT}:role/R`, "unknown partition 'aws-iso'"],
    [`arn:AWS:iam::${ACCT}:role/R`, "unknown partition 'AWS'"],
    [`arn::iam::${ACCT}:role/R`, "unknown partition ''"],
    [`arn:aws::${ACCT}::role/R`, 'service is empty'],
    [`arn:aws:IAM::${ACCT}:role/R`, 'service'],
    [`arn:aws:iam::${ACCT}`, 'arn:partition:service:region:account:resource'],
    [`arn:aws:iam::${ACCT}:`, 'resource is empty'],
    [` arn:aws:iam::${ACCT}:role/R`, 'whitespace'],
    [`arn:aws:iam::${ACCT}:role/R `, 'whitespace'],
    [`arn:aws:iam::${ACCT}:role/R\n`, 'whitespace'],
    [`arn:aws:iam::${ACCT}:role/R\u00a0`, 'whitespace'],
    [`arn:aws:iam::${ACCT}:role/My Role`, 'whitespace'],
    [`arn:aws:iam::${ACCT}:role/R\u0000`, 'control'],
    [`arn:aws:iam::${ACCT}:role/${'x'.repeat(2048)}`, 'longer than 2048'],
  ])('rejects %j', (text, error) => {
    const r = parseArn(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(error);
  });
});

describe('parseRoleArn', () => {
  it.each<[string, string, string]>([
    [`arn:aws:iam::${ACCT}:role/VendRole`, '/', 'VendRole'],
    [`arn:aws-cn:iam::${ACCT}:role/VendRole`, '/', 'VendRole'],
    [`arn:aws-us-gov:iam::${ACCT}:role/VendRole`, '/', 'VendRole'],
    [`arn:aws:iam::${ACCT}:role/app/prod/VendRole`, '/app/prod/', 'VendRole'],
    [`arn:aws:iam::${ACCT}:role/service-role/my+role=a,b.c@d-e_f`, '/service-role/', 'my+role=a,b.c@d-e_f'],
    // A path segment literally named 'policy' is still a role path.
    [`arn:aws:iam::${ACCT}:role/policy/Reader`, '/policy/', 'Reader'],
    [`arn:aws:iam::${ACCT}:role/${'n'.repeat(64)}`, '/', 'n'.repeat(64)],
  ])('accepts %s', (text, path, name) => {
    const r = parseRoleArn(text);
    expect(r).toMatchObject({ ok: true, value: { service: 'iam', region: '', account: ACCT, path, name } });
  });

  it('accepts an empty account only with allowMissingAccount (Ceph RGW shape)', () => {
    expect(parseRoleArn('arn:aws:iam:::role/VendRole', { allowMissingAccount: true })).toEqual({
      ok: true,
      value: {
        partition: 'aws',
        service: 'iam',
        region: '',
        account: '',
        resource: 'role/VendRole',
        path: '/',
        name: 'VendRole',
      },
    });
    expect(parseRoleArn('arn:aws:iam:::role/VendRole')).toEqual({
      ok: false,
      error: 'account is missing (must be 12 digits)',
    });
    expect(parseRoleArn('arn:aws:iam:::role/VendRole', { allowMissingAccount: false }).ok).toBe(false);
    // The option relaxes only the missing account, never a malformed one.
    expect(parseRoleArn('arn:aws:iam::12345:role/VendRole', { allowMissingAccount: true }).ok).toBe(false);
  });

  it.each<[string, string]>([
    // Wrong kind of ARN in a role slot.
    [`arn:aws:iam::${ACCT}:policy/VendPolicy`, 'expected an IAM role ARN, got an IAM policy ARN'],
    ['arn:aws:iam::aws:policy/AdministratorAccess', 'expected an IAM role ARN, got an IAM policy ARN'],
    [`arn:aws:iam::${ACCT}:user/alice`, 'expected an IAM role ARN, got an IAM user ARN'],
    [`arn:aws:iam::${ACCT}:instance-profile/VendRole`, 'got an IAM instance-profile ARN'],
    [`arn:aws:sts::${ACCT}:assumed-role/VendRole/session`, 'got an STS ARN'],
    ['arn:aws:s3:::bucket/key', 'got an S3 ARN'],
    [`arn:aws:kms:us-east-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`, 'got a KMS ARN'],
    // ':policy/' hidden inside a role resource must not be read as a role.
    [`arn:aws:iam::${ACCT}:role/x:policy/y`, "role path contains invalid character ':'"],
    [`arn:aws:iam::${ACCT}:role/VendRole:policy`, "role name contains invalid character ':'"],
    // Resource shape.
    [`arn:aws:iam::${ACCT}:role`, 'resource must be role/<path><name>'],
    [`arn:aws:iam::${ACCT}:roles/VendRole`, 'resource must be role/<path><name>'],
    [`arn:aws:iam::${ACCT}:Role/VendRole`, 'resource must be role/<path><name>'],
    [`arn:aws:iam::${ACCT}:role:VendRole`, 'resource must be role/<path><name>'],
    [`arn:aws:iam::${ACCT}:role/`, 'role name is empty'],
    [`arn:aws:iam::${ACCT}:role/app/`, 'role name is empty'],
    [`arn:aws:iam::${ACCT}:role//VendRole`, "role path must not contain empty segments ('//')"],
    [`arn:aws:iam::${ACCT}:role/app//VendRole`, "role path must not contain empty segments ('//')"],
    [`arn:aws:iam::${ACCT}:role/a*b`, "role name contains invalid character '*'"],
    [`arn:aws:iam::${ACCT}:role/*`, "role name contains invalid character '*'"],
    [`arn:aws:iam::${ACCT}:role/${'n'.repeat(65)}`, 'role name is longer than 64 characters'],
    [`arn:aws:iam::${ACCT}:role/${'p/'.repeat(256)}R`, 'role path is longer than 512 characters'],
    // Account and region.
    ['arn:aws:iam::12345678901:role/VendRole', 'account must be 12 digits'],
    ['arn:aws:iam::1234567890123:role/VendRole', 'account must be 12 digits'],
    ['arn:aws:iam::12345678901a:role/VendRole', 'account must be 12 digits'],
    ['arn:aws:iam::aws:role/VendRole', 'account must be 12 digits'],
    ['arn:aws:iam:::role/VendRole', 'account is missing'],
    [`arn:aws:iam:us-east-1:${ACCT}:role/VendRole`, 'IAM ARNs must not have a region'],
    // Envelope problems surface from parseArn.
    [`arn:aws-iso:iam::${ACCT}:role/VendRole`, 'unknown partition'],
    [`ARN:aws:iam::${ACCT}:role/VendRole`, "lowercase 'arn:'"],
    [`arn:aws:iam::${ACCT}:role/VendRole `, 'whitespace'],
    [` arn:aws:iam::${ACCT}:role/VendRole`, 'whitespace'],
    ['VendRole', 'not an ARN'],
  ])('rejects %j', (text, error) => {
    const r = parseRoleArn(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(error);
  });
});

describe('parseManagedPolicyArn', () => {
  it.each<[string, string, string, string, boolean]>([
    ['arn:aws:iam::aws:policy/AdministratorAccess', 'aws', '/', 'AdministratorAccess', true],
    [
      'arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy',
      'aws',
      '/service-role/',
      'AmazonECSTaskExecutionRolePolicy',
      true,
    ],
    ['arn:aws-cn:iam::aws:policy/ReadOnlyAccess', 'aws', '/', 'ReadOnlyAccess', true],
    ['arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess', 'aws', '/', 'ReadOnlyAccess', true],
    [`arn:aws:iam::${ACCT}:policy/VendPolicy`, ACCT, '/', 'VendPolicy', false],
    [
      `arn:aws:iam::${ACCT}:policy/team/vend/Upload+Only=1,v.2@x-y_z`,
      ACCT,
      '/team/vend/',
      'Upload+Only=1,v.2@x-y_z',
      false,
    ],
    [`arn:aws:iam::${ACCT}:policy/${'n'.repeat(128)}`, ACCT, '/', 'n'.repeat(128), false],
  ])('accepts %s', (text, account, path, name, awsManaged) => {
    expect(parseManagedPolicyArn(text)).toMatchObject({
      ok: true,
      value: { service: 'iam', region: '', account, path, name, awsManaged },
    });
  });

  it.each<[string, string]>([
    [`arn:aws:iam::${ACCT}:role/VendRole`, 'expected an IAM policy ARN, got an IAM role ARN'],
    [`arn:aws:iam::${ACCT}:user/alice`, 'expected an IAM policy ARN, got an IAM user ARN'],
    ['arn:aws:s3:::bucket/key', 'expected an IAM policy ARN, got an S3 ARN'],
    [`arn:aws:kms:us-east-1:${ACCT}:key/abc`, 'got a KMS ARN'],
    [`arn:aws:iam::${ACCT}:policy/`, 'policy name is empty'],
    ['arn:aws:iam::aws:policy/service-role/', 'policy name is empty'],
    [`arn:aws:iam::${ACCT}:policy`, 'resource must be policy/<path><name>'],
    [`arn:aws:iam::${ACCT}:policies/P`, 'resource must be policy/<path><name>'],
    [`arn:aws:iam::${ACCT}:policy:P`, 'resource must be policy/<path><name>'],
    [`arn:aws:iam::${ACCT}:policy//P`, "policy path must not contain empty segments ('//')"],
    [`arn:aws:iam::${ACCT}:policy/a:b/P`, "policy path contains invalid character ':'"],
    [`arn:aws:iam::${ACCT}:policy/P*`, "policy name contains invalid character '*'"],
    [`arn:aws:iam::${ACCT}:policy/${'n'.repeat(129)}`, 'policy name is longer than 128 characters'],
    ['arn:aws:iam:::policy/P', "account must be 12 digits or 'aws'"],
    ['arn:aws:iam::AWS:policy/P', "account must be 12 digits or 'aws'"],
    ['arn:aws:iam::amazon:policy/P', "account must be 12 digits or 'aws'"],
    ['arn:aws:iam::12345678901:policy/P', "account must be 12 digits or 'aws'"],
    ['arn:aws:iam:us-east-1:aws:policy/P', 'IAM ARNs must not have a region'],
    ['arn:aws-iso:iam::aws:policy/P', 'unknown partition'],
    ['arn:aws:iam::aws:policy/AdministratorAccess ', 'whitespace'],
  ])('rejects %j', (text, error) => {
    const r = parseManagedPolicyArn(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(error);
  });
});

describe('parseKmsArn', () => {
  it.each<[string, 'key' | 'alias', string]>([
    [
      `arn:aws:kms:us-east-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      'key',
      '1234abcd-12ab-34cd-56ef-1234567890ab',
    ],
    [
      `arn:aws:kms:eu-west-2:${ACCT}:key/mrk-1234abcd12ab34cd56ef1234567890ab`,
      'key',
      'mrk-1234abcd12ab34cd56ef1234567890ab',
    ],
    [`arn:aws-cn:kms:cn-north-1:${ACCT}:alias/vend`, 'alias', 'vend'],
    [`arn:aws-us-gov:kms:us-gov-west-1:${ACCT}:alias/aws/s3`, 'alias', 'aws/s3'],
  ])('accepts %s', (text, kind, id) => {
    expect(parseKmsArn(text)).toMatchObject({ ok: true, value: { service: 'kms', account: ACCT, kind, id } });
  });

  it.each<[string, string]>([
    [`arn:aws:iam::${ACCT}:role/VendRole`, 'expected a KMS ARN, got an IAM role ARN'],
    ['arn:aws:s3:::bucket', 'expected a KMS ARN, got an S3 ARN'],
    [`arn:aws:kms::${ACCT}:key/abc`, 'KMS ARNs must have a region'],
    [`arn:aws:kms:US-EAST-1:${ACCT}:key/abc`, 'region'],
    ['arn:aws:kms:us-east-1::key/abc', 'account must be 12 digits'],
    ['arn:aws:kms:us-east-1:aws:key/abc', 'account must be 12 digits'],
    [`arn:aws:kms:us-east-1:${ACCT}:key/`, 'key id is empty'],
    [`arn:aws:kms:us-east-1:${ACCT}:key/abc/def`, "key id contains invalid character '/'"],
    [`arn:aws:kms:us-east-1:${ACCT}:key/abc:def`, "key id contains invalid character ':'"],
    [`arn:aws:kms:us-east-1:${ACCT}:alias/`, 'alias name is empty'],
    [`arn:aws:kms:us-east-1:${ACCT}:alias//x`, "alias name must not contain empty segments ('//')"],
    [`arn:aws:kms:us-east-1:${ACCT}:alias/x*`, "alias name contains invalid character '*'"],
    [`arn:aws:kms:us-east-1:${ACCT}:key`, 'resource must be key/<id> or alias/<name>'],
    [`arn:aws:kms:us-east-1:${ACCT}:keys/abc`, 'resource must be key/<id> or alias/<name>'],
    [`arn:aws:kms:us-east-1:${ACCT}:key/abc `, 'whitespace'],
  ])('rejects %j', (text, error) => {
    const r = parseKmsArn(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(error);
  });
});

describe('S3 ARN builders', () => {
  it('builds bucket and object ARNs per partition, without escaping', () => {
    expect(s3BucketArn('aws', 'my-bucket')).toBe('arn:aws:s3:::my-bucket');
    expect(s3BucketArn('aws-cn', 'my-bucket')).toBe('arn:aws-cn:s3:::my-bucket');
    expect(s3ObjectArn('aws-us-gov', 'my-bucket', 'users/42/*')).toBe('arn:aws-us-gov:s3:::my-bucket/users/42/*');
    // Round-trips through the generic parser.
    expect(parseArn(s3ObjectArn('aws', 'b', 'k/x:y'))).toEqual({
      ok: true,
      value: { partition: 'aws', service: 's3', region: '', account: '', resource: 'b/k/x:y' },
    });
  });
});
