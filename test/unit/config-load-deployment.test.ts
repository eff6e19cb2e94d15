// loadConfig at start-up: every problem in one pass, each named by profile and field, so an
// operator fixes a bad deployment in one round trip. ARN rules are security rules: a value that
// does not parse strictly must stop the service, never be guessed at.
import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/load.js';
import { CONFIG_ISSUER as ISSUER, CONFIG_ROLE as ROLE, configProfile, problemsOf } from '../helpers/config.js';

const ACCT = '123456789012';

function profile(over: Record<string, unknown> = {}): Record<string, unknown> {
  return configProfile({ prefix: 'u/{sub}/', ...over });
}

function load(profiles: Record<string, unknown>, env: Record<string, string> = {}): Config {
  return loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.json', ...env }, () =>
    JSON.stringify({ issuers: [ISSUER], profiles }),
  );
}

describe('loadConfig lists every problem at once', () => {
  // One table of bad profiles loaded together: each row must be reported, with its path, in the
  // same ConfigError. A loader that stopped at the first bad profile would pass any single row.
  const rows: Array<[profileName: string, override: Record<string, unknown>, expected: string]> = [
    // A managed policy ARN in the role slot: the profile would not assume what the operator meant.
    [
      'policy-as-role',
      { roleArn: `arn:aws:iam::${ACCT}:policy/Boundary` },
      'profiles.policy-as-role.roleArn: expected an IAM role ARN, got an IAM policy ARN',
    ],
    // AWS mode is strict: a role ARN without an account is a typo or an S3-compatible leftover.
    [
      'no-account',
      { roleArn: 'arn:aws:iam:::role/NoAccount' },
      'profiles.no-account.roleArn: account is missing (must be 12 digits)',
    ],
    [
      's3-as-role',
      { roleArn: 'arn:aws:s3:::bucket' },
      'profiles.s3-as-role.roleArn: expected an IAM role ARN, got an S3 ARN',
    ],
    // A role ARN among the session policies: never a "managed policy", never silently dropped.
    [
      'role-as-policy',
      { sessionPolicyArns: [`arn:aws:iam::aws:policy/ReadOnlyAccess`, ROLE] },
      'profiles.role-as-policy.sessionPolicyArns.1: expected an IAM policy ARN, got an IAM role ARN',
    ],
    // ':policy/' hidden inside a role path must not make a role ARN pass as a policy.
    [
      'hidden-policy',
      { sessionPolicyArns: [`arn:aws:iam::${ACCT}:role/x:policy/Admin`] },
      'profiles.hidden-policy.sessionPolicyArns.0: expected an IAM policy ARN, got an IAM role ARN',
    ],
    [
      'empty-policy-name',
      { sessionPolicyArns: [`arn:aws:iam::${ACCT}:policy/path/`] },
      'profiles.empty-policy-name.sessionPolicyArns.0: policy name is empty',
    ],
    [
      'too-many-policies',
      { sessionPolicyArns: Array.from({ length: 11 }, (_, i) => `arn:aws:iam::${ACCT}:policy/p${i}`) },
      'profiles.too-many-policies.sessionPolicyArns: at most 10 managed session policy ARNs',
    ],
    // A KMS "key" that is an S3 ARN: the policy's KMS statement would name the wrong resource.
    [
      'kms-s3-arn',
      { kmsKeyId: 'arn:aws:s3:::bucket' },
      'profiles.kms-s3-arn.kmsKeyId: expected a KMS ARN, got an S3 ARN',
    ],
    [
      'kms-no-region',
      { kmsKeyId: `arn:aws:kms::${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab` },
      'profiles.kms-no-region.kmsKeyId: KMS ARNs must have a region',
    ],
    ['kms-empty-alias', { kmsKeyId: 'alias/' }, 'profiles.kms-empty-alias.kmsKeyId: alias must be alias/<name>'],
    [
      'kms-garbage',
      { kmsKeyId: 'my key' },
      'profiles.kms-garbage.kmsKeyId: must be a KMS key ARN, an alias ARN, alias/<name> or a key id',
    ],
    [
      'bad-template',
      { prefix: 'u/{sub/' },
      'profiles.bad-template.prefix: template "u/{sub/": placeholders must look like {claim_name}',
    ],
  ];

  it('reports every bad profile, each with its path, in one ConfigError', () => {
    // Prepare
    const profiles = Object.fromEntries([['good', profile()], ...rows.map(([name, over]) => [name, profile(over)])]);
    // Act
    const problems = problemsOf(() => load(profiles));
    // Assess
    for (const [, , expected] of rows) {
      expect(
        problems.some((p) => p.startsWith(expected)),
        `missing: ${expected}\ngot:\n${problems.join('\n')}`,
      ).toBe(true);
    }
    expect(problems.filter((p) => p.startsWith('profiles.good'))).toEqual([]);
    expect(problems).toHaveLength(rows.length);
  });

  it.each(rows)('reports %s on its own too', (name, over, expected) => {
    const problems = problemsOf(() => load({ [name]: profile(over) }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });

  it('still checks ARNs in a profile that also has a type error', () => {
    // zod skips object-level refinements after a type error; the ARN checks must not be skipped
    // with them, or fixing the type error would reveal a second round of problems.
    const problems = problemsOf(() =>
      load({ mixed: profile({ maxKeys: 'ten', roleArn: 'arn:aws:iam::1:role/x', sessionPolicyArns: [ROLE] }) }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^profiles\.mixed\.maxKeys: /),
        'profiles.mixed.roleArn: account must be 12 digits',
        'profiles.mixed.sessionPolicyArns.0: expected an IAM policy ARN, got an IAM role ARN',
      ]),
    );
  });

  it('lists environment and file problems together', () => {
    const problems = problemsOf(() =>
      load(
        { bad: profile({ roleArn: 'nope' }) },
        { CREDVEND_PORT: 'eighty', AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_ROLE_ARN: ROLE },
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^env\.CREDVEND_PORT: /),
        expect.stringMatching(/^env\.AWS_ACCESS_KEY_ID: static keys and a role setting \(AWS_ROLE_ARN\)/),
        "profiles.bad.roleArn: not an ARN (must start with 'arn:')",
      ]),
    );
  });
});

describe('kmsKeyId forms', () => {
  it.each([
    `arn:aws:kms:eu-west-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    `arn:aws:kms:eu-west-1:${ACCT}:alias/uploads`,
    'alias/uploads',
    'alias/aws/s3',
    '1234abcd-12ab-34cd-56ef-1234567890ab',
    'mrk-1234abcd12ab34cd56ef1234567890ab',
  ])('accepts %s (resolved to a key ARN at start-up)', (kmsKeyId) => {
    expect(load({ p: profile({ kmsKeyId }) }).profiles.get('p')?.kmsKeyId).toBe(kmsKeyId);
  });

  it.each([
    ['alias//x', 'alias must be alias/<name>'],
    ['alias/has space', 'alias must be alias/<name>'],
    ['uploads', 'must be a KMS key ARN'],
    [`arn:aws:kms:eu-west-1:${ACCT}:secret/x`, 'resource must be key/<id> or alias/<name>'],
    [`arn:aws:kms:eu-west-1:${ACCT}:key/`, 'key id is empty'],
  ])('rejects %s', (kmsKeyId, message) => {
    expect(problemsOf(() => load({ p: profile({ kmsKeyId }) }))[0]).toContain(`profiles.p.kmsKeyId: ${message}`);
  });
});

describe('S3-compatible mode and role ARNs', () => {
  const accountless = 'arn:aws:iam:::role/rgw-uploads';

  it('accepts a role ARN without account id when CREDVEND_S3_COMPATIBLE=true (Ceph RGW issues them)', () => {
    const config = load({ rgw: profile({ roleArn: accountless }) }, { CREDVEND_S3_COMPATIBLE: 'true' });
    expect(config.profiles.get('rgw')).toMatchObject({ roleArn: accountless, partition: 'aws' });
  });

  it('refuses the same ARN in AWS mode: a real AWS role ARN always names its account', () => {
    expect(problemsOf(() => load({ rgw: profile({ roleArn: accountless }) }))).toEqual([
      'profiles.rgw.roleArn: account is missing (must be 12 digits)',
    ]);
  });

  it('keeps the other role ARN rules in S3-compatible mode', () => {
    const problems = problemsOf(() =>
      load(
        { p: profile({ roleArn: 'arn:aws:iam::12:role/x' }), q: profile({ roleArn: 'arn:aws:iam:::policy/x' }) },
        { CREDVEND_S3_COMPATIBLE: 'true' },
      ),
    );
    expect(problems).toEqual([
      'profiles.p.roleArn: account must be 12 digits',
      'profiles.q.roleArn: expected an IAM role ARN, got an IAM policy ARN',
    ]);
  });

  it('uses the mode even when another environment variable is invalid', () => {
    const problems = problemsOf(() =>
      load({ rgw: profile({ roleArn: accountless }) }, { CREDVEND_S3_COMPATIBLE: 'true', CREDVEND_PORT: '-1' }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^env\.CREDVEND_PORT: /);
  });
});

describe('one credential source', () => {
  // Static keys win in the SDK chain: next to a role setting they would silently replace the
  // task or pod role the operator configured. Refused, whichever was meant.
  it.each([
    ['AWS_ROLE_ARN', ROLE],
    ['AWS_WEB_IDENTITY_TOKEN_FILE', '/var/run/secrets/eks.amazonaws.com/serviceaccount/token'],
    ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'http://169.254.170.23/v1/credentials'],
    ['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', '/v2/credentials/abc'],
  ])('refuses static keys together with %s', (name, value) => {
    const problems = problemsOf(() =>
      load({ p: profile() }, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x', [name]: value }),
    );
    expect(problems).toEqual([
      `env.AWS_ACCESS_KEY_ID: static keys and a role setting (${name}) are both set: keep only one credential source`,
    ]);
  });

  it('refuses it in S3-compatible mode too', () => {
    const problems = problemsOf(() =>
      load({ p: profile() }, { CREDVEND_S3_COMPATIBLE: 'true', AWS_ACCESS_KEY_ID: 'rgwkey', AWS_ROLE_ARN: ROLE }),
    );
    expect(problems[0]).toMatch(/^env\.AWS_ACCESS_KEY_ID: static keys and a role setting/);
  });

  it.each([
    ['static keys alone', { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x' }],
    ['a role alone', { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: '/token' }],
    ['an empty key variable next to a role', { AWS_ACCESS_KEY_ID: '', AWS_ROLE_ARN: ROLE }],
  ])('accepts %s (the service identity is checked at start-up)', (_name, env) => {
    expect(() => load({ p: profile() }, env)).not.toThrow();
  });
});
