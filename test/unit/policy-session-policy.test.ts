import { describe, it, expect } from 'vitest';
import { PolicyError } from '../../src/policy/errors.js';
import { buildSessionPolicy, MAX_POLICY_CHARS, type PolicyInput } from '../../src/policy/session-policy.js';

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

interface Statement {
  Effect: string;
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

function input(over: Partial<PolicyInput> = {}): PolicyInput {
  return {
    partition: 'aws',
    bucket: 'tenant-bucket',
    region: 'eu-west-1',
    operation: 'upload',
    target: { keys: ['uploads/alice/report.pdf'] },
    versionedReads: false,
    bucketKeyEnabled: false,
    ...over,
  };
}

function statements(i: PolicyInput): Statement[] {
  return buildSessionPolicy(i).document.Statement as Statement[];
}

function s3Statement(i: PolicyInput): Statement {
  const s = statements(i)[0];
  if (!s) throw new Error('no statement');
  return s;
}

function kmsStatement(i: PolicyInput): Statement {
  const s = statements(i).find((st) => st.Action.some((a) => a.startsWith('kms:')));
  if (!s) throw new Error('no KMS statement');
  return s;
}

describe('buildSessionPolicy', () => {
  it('uses policy language version 2012-10-17', () => {
    // Attack: under version 2008-10-17 the ${*} escapes are not understood, so an escaped key
    // would name the literal text "${*}" and, worse, policy variables would not work as designed.
    expect(buildSessionPolicy(input()).document.Version).toBe('2012-10-17');
  });

  it('grants upload exactly PutObject, AbortMultipartUpload and ListMultipartUploadParts', () => {
    // Attack: any extra action (GetObject, DeleteObject, PutObjectAcl) lets an uploader read,
    // destroy or publish objects.
    expect(s3Statement(input()).Action).toEqual([
      's3:PutObject',
      's3:AbortMultipartUpload',
      's3:ListMultipartUploadParts',
    ]);
    expect(s3Statement(input({ versionedReads: true })).Action).toEqual([
      's3:PutObject',
      's3:AbortMultipartUpload',
      's3:ListMultipartUploadParts',
    ]);
  });

  it('grants download only GetObject, plus GetObjectVersion only with versionedReads', () => {
    // Attack: reading old versions of an object (e.g. before a secret was scrubbed) unless allowed.
    expect(s3Statement(input({ operation: 'download' })).Action).toEqual(['s3:GetObject']);
    expect(s3Statement(input({ operation: 'download', versionedReads: true })).Action).toEqual([
      's3:GetObject',
      's3:GetObjectVersion',
    ]);
  });

  it('names exact object ARNs with wildcards escaped', () => {
    // Attack: a requested key "*" becoming a bucket-wide grant.
    // Act
    const s = s3Statement(input({ target: { keys: ['uploads/alice/*', 'uploads/alice/a?$'] } }));
    // Assess
    expect(s.Effect).toBe('Allow');
    expect(s.Resource).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/alice/${*}',
      'arn:aws:s3:::tenant-bucket/uploads/alice/a${?}${$}',
    ]);
  });

  it('collapses duplicate keys', () => {
    expect(s3Statement(input({ target: { keys: ['k/a', 'k/a'] } })).Resource).toBe('arn:aws:s3:::tenant-bucket/k/a');
  });

  it('gives a prefix grant exactly one trailing wildcard, after the escaped prefix', () => {
    // Attack: a "*" inside the requested prefix widening it ("team*/" covering "team-secrets/").
    expect(s3Statement(input({ target: { prefix: 'uploads/alice/team/' } })).Resource).toBe(
      'arn:aws:s3:::tenant-bucket/uploads/alice/team/*',
    );
    expect(s3Statement(input({ target: { prefix: 'uploads/alice/t*m/' } })).Resource).toBe(
      'arn:aws:s3:::tenant-bucket/uploads/alice/t${*}m/*',
    );
  });

  it.each(['aws-cn', 'aws-us-gov'] as const)('uses the %s partition in every ARN', (partition) => {
    // Attack (or outage): an aws-partition ARN never matches in China/GovCloud; a mismatched
    // partition either breaks issuance or, in a hand-made fix, invites a wildcard partition.
    // Act
    const i = input({
      partition,
      kmsKeyArn: `arn:${partition}:kms:eu-west-1:123456789012:key/k1`,
      target: { keys: ['a'] },
    });
    const json = buildSessionPolicy(i).json;
    // Assess
    expect(s3Statement(i).Resource).toBe(`arn:${partition}:s3:::tenant-bucket/a`);
    expect(kmsStatement(i).Condition?.StringEquals?.['kms:EncryptionContext:aws:s3:arn']).toBe(
      `arn:${partition}:s3:::tenant-bucket/a`,
    );
    expect(json).not.toMatch(/arn:aws:s3/);
  });

  it('adds no KMS statement without a KMS key', () => {
    expect(statements(input())).toHaveLength(1);
    expect(buildSessionPolicy(input()).json).not.toContain('kms:');
  });

  it('limits KMS to the key, to S3 in the region (kms:ViaService) and to the object ARN (encryption context)', () => {
    // Attack: using the data key outside S3 (kms:Decrypt on any ciphertext the role can reach), from
    // another region, or to decrypt other objects encrypted under the same key.
    // Act
    const s = kmsStatement(input({ kmsKeyArn: KEY_ARN }));
    // Assess
    expect(s).toEqual({
      Effect: 'Allow',
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: KEY_ARN,
      Condition: {
        StringEquals: {
          'kms:ViaService': 's3.eu-west-1.amazonaws.com',
          'kms:EncryptionContext:aws:s3:arn': 'arn:aws:s3:::tenant-bucket/uploads/alice/report.pdf',
        },
      },
    });
  });

  it('lists every object ARN in the encryption context for several keys', () => {
    const s = kmsStatement(input({ kmsKeyArn: KEY_ARN, target: { keys: ['k/a', 'k/b*'] } }));
    expect(s.Condition?.StringEquals?.['kms:EncryptionContext:aws:s3:arn']).toEqual([
      'arn:aws:s3:::tenant-bucket/k/a',
      'arn:aws:s3:::tenant-bucket/k/b${*}',
    ]);
  });

  it('gives download kms:Decrypt only', () => {
    // Attack: GenerateDataKey on a read-only session lets it mint data keys for its own use.
    expect(kmsStatement(input({ operation: 'download', kmsKeyArn: KEY_ARN })).Action).toEqual(['kms:Decrypt']);
  });

  it('uses the bucket ARN as encryption context when the bucket uses S3 Bucket Keys', () => {
    // With Bucket Keys S3 passes the bucket ARN, so that is the narrowest context available; the
    // S3 statement still confines the objects.
    // Act
    const i = input({ kmsKeyArn: KEY_ARN, bucketKeyEnabled: true });
    // Assess
    expect(kmsStatement(i).Condition).toEqual({
      StringEquals: {
        'kms:ViaService': 's3.eu-west-1.amazonaws.com',
        'kms:EncryptionContext:aws:s3:arn': 'arn:aws:s3:::tenant-bucket',
      },
    });
    expect(s3Statement(i).Resource).toBe('arn:aws:s3:::tenant-bucket/uploads/alice/report.pdf');
  });

  it('matches the encryption context with StringLike under a prefix grant', () => {
    const s = kmsStatement(input({ kmsKeyArn: KEY_ARN, target: { prefix: 'uploads/alice/team/' } }));
    expect(s.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' },
      StringLike: { 'kms:EncryptionContext:aws:s3:arn': 'arn:aws:s3:::tenant-bucket/uploads/alice/team/*' },
    });
  });

  it('returns compact JSON, exactly the document sent to STS', () => {
    // Prepare
    const p = buildSessionPolicy(input({ kmsKeyArn: KEY_ARN }));
    // Assess
    expect(p.json).toBe(JSON.stringify(p.document));
    expect(p.json).not.toMatch(/\s/);
  });

  it('accepts a policy of exactly 2048 characters and refuses 2049 with policy_too_large', () => {
    // Attack: silently falling back to a broader grant (a prefix, the bucket) to fit STS's limit.
    // Prepare: JSON length grows one for one with an ASCII key.
    const base = buildSessionPolicy(input({ target: { keys: ['x'] } })).json.length;
    const exact = 'x'.repeat(1 + MAX_POLICY_CHARS - base);
    // Act
    const fits = buildSessionPolicy(input({ target: { keys: [exact] } }));
    const tooLarge = (): unknown => buildSessionPolicy(input({ target: { keys: [`${exact}y`] } }));
    // Assess
    expect(fits.json).toHaveLength(MAX_POLICY_CHARS);
    expect(tooLarge).toThrow(PolicyError);
    expect(tooLarge).toThrow(/2049 characters/);
    try {
      tooLarge();
    } catch (e) {
      expect(e instanceof PolicyError && e.reason).toBe('policy_too_large');
    }
  });

  it('refuses too many keys rather than merging them into a wildcard', () => {
    const keys = Array.from({ length: 60 }, (_, i) => `uploads/alice/file-${i}.bin`);
    expect(() => buildSessionPolicy(input({ target: { keys } }))).toThrow(
      expect.objectContaining({ reason: 'policy_too_large' }),
    );
  });
});
