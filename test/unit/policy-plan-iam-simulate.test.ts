// What IAM would decide for vended credentials, per @cloud-copilot/iam-simulate: the session
// policies planIssuance builds allow exactly the requested objects and nothing next to them.
// See test/helpers/simulate.ts for how (two passes) and for the simulator's known limits.
import { describe, it, expect } from 'vitest';
import { loadConfig, type Profile } from '../../src/config/load.js';
import { planIssuance, type CredentialRequest } from '../../src/policy/plan.js';
import type { Caller } from '../../src/policy/caller.js';
import { evaluateSession, simulateValidated, type Context, type PolicyDocument } from '../helpers/simulate.js';

const ISSUER = 'https://gitlab.example.com';
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const OTHER_KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/ffffffff-12ab-34cd-56ef-1234567890ab';
const OBJ = 'arn:aws:s3:::tenant-bucket/uploads/alice/';

function profile(over: Record<string, unknown> = {}, kmsKeyArn?: string): Profile {
  const file = {
    issuers: [{ issuer: ISSUER, audiences: ['credvend'], jwksUri: `${ISSUER}/oauth/discovery/keys` }],
    profiles: {
      p: {
        roleArn: 'arn:aws:iam::123456789012:role/credvend-uploads',
        bucket: 'tenant-bucket',
        region: 'eu-west-1',
        prefix: 'uploads/{sub}/',
        match: { iss: ISSUER },
        ...over,
      },
    },
  };
  const p = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.json' }, () => JSON.stringify(file)).profiles.get('p');
  if (!p) throw new Error('profile not loaded');
  return kmsKeyArn ? { ...p, kmsKeyArn } : p;
}

const alice: Caller = { issuer: ISSUER, subject: 'alice', audiences: ['credvend'], claims: { sub: 'alice' } };

function sessionPolicy(req: CredentialRequest, p: Profile = profile()): PolicyDocument {
  return planIssuance(p, alice, req, 'req-1', { wildcardKeys: 'escape' }).policy.document;
}

function decide(policy: PolicyDocument, action: string, resource: string, context?: Context): string {
  return evaluateSession(policy, { action, resource, ...(context ? { context } : {}) });
}

describe('upload credentials', () => {
  const policy = sessionPolicy({ operation: 'upload', keys: ['report.pdf', 'img/a.png'] });

  it.each(['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'])(
    'allow %s on exactly the requested keys',
    (action) => {
      expect(decide(policy, action, `${OBJ}report.pdf`)).toBe('Allowed');
      expect(decide(policy, action, `${OBJ}img/a.png`)).toBe('Allowed');
    },
  );

  it.each([
    ['a sibling key', `${OBJ}other.pdf`],
    ['the key with a suffix (key.evil)', `${OBJ}report.pdf.evil`],
    ['a key below the key (key/x)', `${OBJ}report.pdf/x`],
    ['a key that is a prefix of the requested one', `${OBJ}report`],
    ['the prefix itself', OBJ],
    ['the sibling directory', `${OBJ}img/b.png`],
    ["another tenant's key", 'arn:aws:s3:::tenant-bucket/uploads/bob/report.pdf'],
    ['a tenant whose name extends ours (alice2)', 'arn:aws:s3:::tenant-bucket/uploads/alice2/report.pdf'],
    ['the same key at the bucket root', 'arn:aws:s3:::tenant-bucket/report.pdf'],
    ['the same key in another bucket', 'arn:aws:s3:::other-bucket/uploads/alice/report.pdf'],
    ['a bucket whose name extends ours', 'arn:aws:s3:::tenant-bucket2/uploads/alice/report.pdf'],
    ['the same key in another partition', 'arn:aws-cn:s3:::tenant-bucket/uploads/alice/report.pdf'],
    ['the key in another case', `${OBJ}REPORT.pdf`],
  ])('deny PutObject on %s', (_name, resource) => {
    // Attack: writing (overwriting) objects the caller did not ask for.
    expect(decide(policy, 's3:PutObject', resource)).not.toBe('Allowed');
  });

  it.each([
    's3:GetObject',
    's3:GetObjectVersion',
    's3:DeleteObject',
    's3:DeleteObjectVersion',
    's3:PutObjectAcl',
    's3:PutObjectTagging',
    's3:GetObjectAcl',
    's3:RestoreObject',
    's3:*',
  ])('deny %s on the requested key', (action) => {
    // Attack: an uploader reading, deleting, re-permissioning or publishing objects.
    expect(decide(policy, action, `${OBJ}report.pdf`)).not.toBe('Allowed');
  });

  it('deny s3:ListBucket on the bucket', () => {
    // Attack: enumerating other tenants' object names.
    expect(decide(policy, 's3:ListBucket', 'arn:aws:s3:::tenant-bucket')).not.toBe('Allowed');
  });

  it('agree with the simulator evaluating the session policy in its own slot', async () => {
    // Cross-checks the two-pass approach; also proves the policy passes the simulator's validation.
    expect(await simulateValidated(policy, { action: 's3:PutObject', resource: `${OBJ}report.pdf` })).toBe('Allowed');
    expect(await simulateValidated(policy, { action: 's3:PutObject', resource: `${OBJ}report.pdf.evil` })).toBe(
      'ImplicitlyDenied',
    );
    expect(await simulateValidated(policy, { action: 's3:GetObject', resource: `${OBJ}report.pdf` })).toBe(
      'ImplicitlyDenied',
    );
    expect(
      await simulateValidated(policy, {
        action: 's3:PutObject',
        resource: 'arn:aws:s3:::tenant-bucket/uploads/bob/report.pdf',
      }),
    ).toBe('ImplicitlyDenied');
  });
});

describe('download credentials', () => {
  it('allow GetObject on the key only, and nothing that writes', () => {
    // Attack: a reader overwriting or deleting the object it may read.
    // Prepare
    const policy = sessionPolicy({ operation: 'download', keys: ['report.pdf'] });
    // Assess
    expect(decide(policy, 's3:GetObject', `${OBJ}report.pdf`)).toBe('Allowed');
    expect(decide(policy, 's3:GetObject', `${OBJ}report.pdf.evil`)).not.toBe('Allowed');
    expect(decide(policy, 's3:GetObject', 'arn:aws:s3:::tenant-bucket/uploads/bob/report.pdf')).not.toBe('Allowed');
    for (const action of [
      's3:PutObject',
      's3:DeleteObject',
      's3:AbortMultipartUpload',
      's3:PutObjectAcl',
      's3:GetObjectVersion',
    ]) {
      expect(decide(policy, action, `${OBJ}report.pdf`), action).not.toBe('Allowed');
    }
  });

  it('allow GetObjectVersion only when the profile sets versionedReads', () => {
    const policy = sessionPolicy({ operation: 'download', keys: ['report.pdf'] }, profile({ versionedReads: true }));
    expect(decide(policy, 's3:GetObjectVersion', `${OBJ}report.pdf`)).toBe('Allowed');
    expect(decide(policy, 's3:GetObjectVersion', `${OBJ}other.pdf`)).not.toBe('Allowed');
  });
});

describe('keys with IAM wildcard characters', () => {
  const policy = sessionPolicy({ operation: 'upload', keys: ['a*', 'q?', 'x${aws:username}'] });

  it('the grant for literal key a* does not reach abc, a or a/b', () => {
    // Attack: key "a*" granting every object whose name starts with "a".
    // (The simulator reads a '*' in the REQUEST as a wildcard, so "allowed on the literal a*" is
    // checked structurally: the Resource is the escaped a${*}.)
    expect(JSON.stringify(policy)).toContain(`"${OBJ}a\${*}"`);
    for (const key of ['abc', 'a', 'a/b', 'aa'])
      expect(decide(policy, 's3:PutObject', `${OBJ}${key}`), key).not.toBe('Allowed');
  });

  it('the grant for literal key q? allows q? and not qX', () => {
    // Attack: key "q?" granting every two-character name starting with "q".
    expect(decide(policy, 's3:PutObject', `${OBJ}q?`)).toBe('Allowed');
    expect(decide(policy, 's3:PutObject', `${OBJ}qX`)).not.toBe('Allowed');
    expect(decide(policy, 's3:PutObject', `${OBJ}q`)).not.toBe('Allowed');
  });

  it('a key naming a policy variable stays literal', () => {
    // Attack: "${aws:username}" resolving at evaluation time to a name the caller picks.
    expect(decide(policy, 's3:PutObject', `${OBJ}x\${aws:username}`, { 'aws:username': 'alice' })).toBe('Allowed');
    expect(decide(policy, 's3:PutObject', `${OBJ}xalice`, { 'aws:username': 'alice' })).not.toBe('Allowed');
  });
});

describe('prefix grants', () => {
  const policy = sessionPolicy({ operation: 'upload', prefix: 'team/' }, profile({ allowPrefixGrants: true }));

  it('allow objects under the prefix', () => {
    expect(decide(policy, 's3:PutObject', `${OBJ}team/a`)).toBe('Allowed');
    expect(decide(policy, 's3:PutObject', `${OBJ}team/deep/b.bin`)).toBe('Allowed');
  });

  it('deny the sibling prefix team2/ and everything else', () => {
    // Attack: "team/" also covering "team2/", "teammate/" or the other tenant's "team/".
    for (const key of ['team2/a', 'teammate/a', 'team', 'other/a'])
      expect(decide(policy, 's3:PutObject', `${OBJ}${key}`), key).not.toBe('Allowed');
    expect(decide(policy, 's3:PutObject', 'arn:aws:s3:::tenant-bucket/uploads/bob/team/a')).not.toBe('Allowed');
    expect(decide(policy, 's3:GetObject', `${OBJ}team/a`)).not.toBe('Allowed');
  });
});

describe('partitions', () => {
  it.each([
    ['aws-cn', 'cn-north-1'],
    ['aws-us-gov', 'us-gov-west-1'],
  ] as const)('grant in %s only', (partition, region) => {
    // Attack/outage: an aws-partition ARN that never matches there, or a grant leaking across.
    // Prepare
    const p = profile({ roleArn: `arn:${partition}:iam::123456789012:role/r`, region });
    const policy = sessionPolicy({ operation: 'upload', keys: ['k'] }, p);
    // Assess
    expect(decide(policy, 's3:PutObject', `arn:${partition}:s3:::tenant-bucket/uploads/alice/k`)).toBe('Allowed');
    expect(decide(policy, 's3:PutObject', 'arn:aws:s3:::tenant-bucket/uploads/alice/k')).not.toBe('Allowed');
  });
});

// KMS: pass 1 (inside evaluateSession) checks the broad role policy allows the call; pass 2 checks
// the session policy alone, with kms:ViaService and kms:EncryptionContext:aws:s3:arn supplied as
// S3 would supply them. Unsafe mode evaluates both context keys (verified: a wrong value denies).
describe('SSE-KMS', () => {
  const VIA = 's3.eu-west-1.amazonaws.com';
  // via null: no kms:ViaService at all, as on a direct KMS call.
  const ctx = (objectArn: string, via: string | null = VIA): Context => ({
    'kms:EncryptionContext:aws:s3:arn': objectArn,
    ...(via === null ? {} : { 'kms:ViaService': via }),
  });

  describe('upload', () => {
    const policy = sessionPolicy({ operation: 'upload', keys: ['report.pdf', 'b.bin'] }, profile({}, KEY_ARN));

    it.each(['kms:GenerateDataKey', 'kms:Decrypt'])(
      'allow %s through S3 in the region, for the requested objects',
      (action) => {
        expect(decide(policy, action, KEY_ARN, ctx(`${OBJ}report.pdf`))).toBe('Allowed');
        expect(decide(policy, action, KEY_ARN, ctx(`${OBJ}b.bin`))).toBe('Allowed');
      },
    );

    it.each([
      ['S3 in another region', ctx(`${OBJ}report.pdf`, 's3.us-east-1.amazonaws.com')],
      ['another service (SQS) in the region', ctx(`${OBJ}report.pdf`, 'sqs.eu-west-1.amazonaws.com')],
      ['a direct KMS call (no kms:ViaService)', ctx(`${OBJ}report.pdf`, null)],
      ["another object's ARN", ctx(`${OBJ}other.pdf`)],
      ["another tenant's object", ctx('arn:aws:s3:::tenant-bucket/uploads/bob/report.pdf')],
      ['the bucket ARN', ctx('arn:aws:s3:::tenant-bucket')],
      ['no encryption context', { 'kms:ViaService': VIA }],
    ])('deny kms:Decrypt via %s', (_name, context) => {
      // Attack: using the vended session to decrypt data keys of objects it was not given, or
      // outside S3 (e.g. ciphertext from another service encrypted under the same key).
      expect(decide(policy, 'kms:Decrypt', KEY_ARN, context)).not.toBe('Allowed');
      expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, context)).not.toBe('Allowed');
    });

    it('deny another KMS key', () => {
      expect(decide(policy, 'kms:Decrypt', OTHER_KEY_ARN, ctx(`${OBJ}report.pdf`))).not.toBe('Allowed');
    });

    it.each([
      'kms:Encrypt',
      'kms:ReEncryptFrom',
      'kms:ReEncryptTo',
      'kms:GenerateDataKeyWithoutPlaintext',
      'kms:CreateGrant',
      'kms:DescribeKey',
      'kms:ScheduleKeyDeletion',
    ])('deny %s', (action) => {
      // Attack: encrypting or re-encrypting arbitrary data, or managing the key, with S3 credentials.
      expect(decide(policy, action, KEY_ARN, ctx(`${OBJ}report.pdf`))).not.toBe('Allowed');
    });
  });

  it('download gets kms:Decrypt but not kms:GenerateDataKey', () => {
    const policy = sessionPolicy({ operation: 'download', keys: ['report.pdf'] }, profile({}, KEY_ARN));
    expect(decide(policy, 'kms:Decrypt', KEY_ARN, ctx(`${OBJ}report.pdf`))).toBe('Allowed');
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx(`${OBJ}report.pdf`))).not.toBe('Allowed');
    expect(decide(policy, 'kms:Decrypt', KEY_ARN, ctx(`${OBJ}other.pdf`))).not.toBe('Allowed');
  });

  it('with S3 Bucket Keys, match the bucket ARN context (the narrowest S3 sends) and keep ViaService', () => {
    const policy = sessionPolicy(
      { operation: 'upload', keys: ['report.pdf'] },
      profile({ bucketKeyEnabled: true }, KEY_ARN),
    );
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx('arn:aws:s3:::tenant-bucket'))).toBe('Allowed');
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx('arn:aws:s3:::other-bucket'))).not.toBe('Allowed');
    expect(
      decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx('arn:aws:s3:::tenant-bucket', 's3.us-east-1.amazonaws.com')),
    ).not.toBe('Allowed');
    // The objects themselves stay confined by the S3 statement.
    expect(decide(policy, 's3:PutObject', `${OBJ}other.pdf`)).not.toBe('Allowed');
  });

  it('under a prefix grant, allow objects under the prefix and deny the sibling prefix', () => {
    const policy = sessionPolicy(
      { operation: 'upload', prefix: 'team/' },
      profile({ allowPrefixGrants: true }, KEY_ARN),
    );
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx(`${OBJ}team/x`))).toBe('Allowed');
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx(`${OBJ}team2/x`))).not.toBe('Allowed');
  });

  it('for a key with a literal *, deny the objects the * would otherwise match', () => {
    // The simulator keeps ${*} literal in StringEquals, so it cannot confirm the allow for the
    // literal object "a*" (AWS substitutes ${*} → * in condition values); either way nothing wider
    // than the object is allowed, which is what this checks.
    const policy = sessionPolicy({ operation: 'upload', keys: ['a*'] }, profile({}, KEY_ARN));
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx(`${OBJ}abc`))).not.toBe('Allowed');
    expect(decide(policy, 'kms:GenerateDataKey', KEY_ARN, ctx(`${OBJ}a`))).not.toBe('Allowed');
  });
});
