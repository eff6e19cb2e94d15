// KMS key resolution at start-up, against a mocked KMSClient. Each refusal is a key that S3 could
// not use (every upload would fail with a confusing AccessDenied) or that the session policy must
// not be granted on; each is reported with its profile, and all of them at once.
import { DescribeKeyCommand, KMSClient, NotFoundException, type KeyMetadata } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/load.js';
import { createKmsDescriber, resolveKmsKeys } from '../../src/kms/resolve.js';
import { problemsOfAsync as problemsOf } from '../helpers/config.js';

const ACCT = '123456789012';
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:eu-west-1:${ACCT}:key/${KEY_ID}`;
const GOOD: KeyMetadata = {
  KeyId: KEY_ID,
  Arn: KEY_ARN,
  KeyState: 'Enabled',
  Enabled: true,
  KeySpec: 'SYMMETRIC_DEFAULT',
  KeyUsage: 'ENCRYPT_DECRYPT',
};

function config(profiles: Record<string, { kmsKeyId?: string; region?: string }>): Config {
  const file = {
    issuers: [{ issuer: 'https://idp.example.com', audiences: ['credvend'], jwksUri: 'https://idp.example.com/jwks' }],
    profiles: Object.fromEntries(
      Object.entries(profiles).map(([name, p]) => [
        name,
        {
          roleArn: `arn:aws:iam::${ACCT}:role/r`,
          bucket: 'tenant-bucket',
          region: p.region ?? 'eu-west-1',
          match: {},
          ...(p.kmsKeyId ? { kmsKeyId: p.kmsKeyId } : {}),
        },
      ]),
    ),
  };
  return loadConfig({ CREDVEND_CONFIG_FILE: 'p.json' }, () => JSON.stringify(file));
}

describe('resolveKmsKeys over a KMSClient', () => {
  const kms = mockClient(KMSClient);
  const regions: string[] = [];
  const describer = () =>
    createKmsDescriber((region) => {
      regions.push(region);
      return new KMSClient({ region, credentials: { accessKeyId: 'ASIATEST', secretAccessKey: 'x' } });
    });

  beforeEach(() => {
    kms.reset();
    regions.length = 0;
  });
  afterEach(() => kms.reset());

  it('resolves an alias to the key ARN the session policy will name', async () => {
    // Prepare
    kms.on(DescribeKeyCommand, { KeyId: 'alias/uploads' }).resolves({ KeyMetadata: GOOD });
    // Act
    const checked = await resolveKmsKeys(config({ p: { kmsKeyId: 'alias/uploads' }, plain: {} }), describer());
    // Assess
    expect(checked.profiles.get('p')).toMatchObject({ kmsKeyId: 'alias/uploads', kmsKeyArn: KEY_ARN });
    expect(checked.profiles.get('plain')?.kmsKeyArn).toBeUndefined();
    expect(Object.isFrozen(checked.profiles.get('p'))).toBe(true);
  });

  it('resolves bare key ids and key ARNs too', async () => {
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: GOOD });
    const checked = await resolveKmsKeys(config({ id: { kmsKeyId: KEY_ID }, arn: { kmsKeyId: KEY_ARN } }), describer());
    expect(checked.profiles.get('id')?.kmsKeyArn).toBe(KEY_ARN);
    expect(checked.profiles.get('arn')?.kmsKeyArn).toBe(KEY_ARN);
  });

  it.each<[string, Partial<KeyMetadata>, string]>([
    // S3 refuses a disabled key: every upload and download would fail.
    ['refuses a disabled key', { KeyState: 'Disabled', Enabled: false }, 'is Disabled, not Enabled'],
    // Objects written with a key pending deletion become unreadable once it is deleted.
    [
      'refuses a key pending deletion',
      { KeyState: 'PendingDeletion', Enabled: false },
      'is PendingDeletion, not Enabled',
    ],
    [
      'refuses a key pending import (no key material)',
      { KeyState: 'PendingImport', Enabled: false },
      'is PendingImport, not Enabled',
    ],
    // SSE-KMS works with symmetric keys only; an asymmetric key in the policy grants nothing usable.
    [
      'refuses an asymmetric key',
      { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' },
      'is RSA_2048, not SYMMETRIC_DEFAULT',
    ],
    [
      'refuses a signing key',
      { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' },
      'has usage SIGN_VERIFY, not ENCRYPT_DECRYPT',
    ],
    [
      'refuses an HMAC key',
      { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' },
      'has usage GENERATE_VERIFY_MAC, not ENCRYPT_DECRYPT',
    ],
    // S3 uses keys in the bucket's region only; kms:ViaService in the policy names that region.
    [
      'refuses a key in another region than the bucket',
      { Arn: `arn:aws:kms:us-east-1:${ACCT}:key/${KEY_ID}` },
      'is in us-east-1, the bucket in eu-west-1',
    ],
    [
      'refuses a key in another partition than the role',
      { Arn: `arn:aws-cn:kms:eu-west-1:${ACCT}:key/${KEY_ID}` },
      'is in partition aws-cn, the role in aws',
    ],
    ['refuses an answer without a key ARN', { Arn: undefined }, 'DescribeKey returned no usable key ARN'],
  ])('%s', async (_name, meta, message) => {
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { ...GOOD, ...meta } });
    const problems = await problemsOf(resolveKmsKeys(config({ p: { kmsKeyId: 'alias/uploads' } }), describer()));
    expect(problems.every((p) => p.startsWith('profiles.p.kmsKeyId: '))).toBe(true);
    expect(problems.filter((p) => p.includes(message))).toHaveLength(1);
  });

  it('turns NotFound and AccessDenied into problems without the SDK message', async () => {
    kms.on(DescribeKeyCommand, { KeyId: 'alias/missing' }).rejects(
      new NotFoundException({
        message: 'Alias arn:aws:kms:eu-west-1:123456789012:alias/missing is not found.',
        $metadata: {},
      }),
    );
    kms.on(DescribeKeyCommand, { KeyId: 'alias/secret' }).rejects(
      Object.assign(new Error('User: arn:aws:sts::123456789012:assumed-role/x is not authorized'), {
        name: 'AccessDeniedException',
      }),
    );
    const problems = await problemsOf(
      resolveKmsKeys(config({ a: { kmsKeyId: 'alias/missing' }, b: { kmsKeyId: 'alias/secret' } }), describer()),
    );
    expect(problems).toEqual([
      'profiles.a.kmsKeyId: alias/missing: key not found in this region and account (or not visible to the service)',
      "profiles.b.kmsKeyId: alias/secret: access denied: the service's role needs kms:DescribeKey on this key",
    ]);
  });

  it('reports every bad profile, in profile order, not just the first', async () => {
    kms.on(DescribeKeyCommand, { KeyId: 'alias/ok' }).resolves({ KeyMetadata: GOOD });
    kms.on(DescribeKeyCommand, { KeyId: 'alias/off' }).resolves({ KeyMetadata: { ...GOOD, KeyState: 'Disabled' } });
    kms
      .on(DescribeKeyCommand, { KeyId: 'alias/rsa' })
      .resolves({ KeyMetadata: { ...GOOD, KeySpec: 'RSA_4096', KeyUsage: 'SIGN_VERIFY' } });
    kms.on(DescribeKeyCommand, { KeyId: 'alias/gone' }).rejects(new NotFoundException({ message: 'x', $metadata: {} }));
    const problems = await problemsOf(
      resolveKmsKeys(
        config({
          ok: { kmsKeyId: 'alias/ok' },
          off: { kmsKeyId: 'alias/off' },
          rsa: { kmsKeyId: 'alias/rsa' },
          gone: { kmsKeyId: 'alias/gone' },
        }),
        describer(),
      ),
    );
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'profiles.off.kmsKeyId',
      'profiles.rsa.kmsKeyId',
      'profiles.rsa.kmsKeyId',
      'profiles.gone.kmsKeyId',
    ]);
  });

  it('creates one client per region, lazily, and describes a shared key once', async () => {
    kms.on(DescribeKeyCommand).callsFake((input: { KeyId?: string }) => ({
      KeyMetadata: {
        ...GOOD,
        Arn: input.KeyId?.startsWith('arn:aws:kms:us-east-1') ? `arn:aws:kms:us-east-1:${ACCT}:key/${KEY_ID}` : KEY_ARN,
      },
    }));
    const d = describer();
    expect(regions).toEqual([]); // nothing created before the first describe
    const usKey = `arn:aws:kms:us-east-1:${ACCT}:key/${KEY_ID}`;
    await resolveKmsKeys(
      config({
        a: { kmsKeyId: 'alias/shared' },
        b: { kmsKeyId: 'alias/shared' },
        c: { kmsKeyId: usKey, region: 'us-east-1' },
      }),
      d,
    );
    expect(regions.sort()).toEqual(['eu-west-1', 'us-east-1']);
    expect(
      kms
        .commandCalls(DescribeKeyCommand)
        .map((c) => c.args[0].input.KeyId)
        .sort(),
    ).toEqual(['alias/shared', usKey]);
  });

  it("describes a key given as an ARN in the ARN's region, so a wrong region is named as such", async () => {
    const usKey = `arn:aws:kms:us-east-1:${ACCT}:key/${KEY_ID}`;
    kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { ...GOOD, Arn: usKey } });
    const problems = await problemsOf(resolveKmsKeys(config({ p: { kmsKeyId: usKey } }), describer()));
    expect(regions).toEqual(['us-east-1']);
    expect(problems).toEqual([`profiles.p.kmsKeyId: key ${usKey} is in us-east-1, the bucket in eu-west-1`]);
  });
});
