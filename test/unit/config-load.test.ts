// loadConfig: a bad deployment must stop with EVERY problem listed, each with its path, so the
// operator fixes it in one round trip; and a half-valid configuration must never start.
import { describe, it, expect } from 'vitest';
import { ConfigError, loadConfig, type Config } from '../../src/config/load.js';
import {
  CONFIG_ISSUER as GOOD_ISSUER,
  CONFIG_ROLE as ROLE,
  configProfile as profile,
  problemsOf,
} from '../helpers/config.js';

const ACCT = '123456789012';
const PEM = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';

function loadJson(file: unknown, env: Record<string, string> = {}): Config {
  return loadConfig({ CREDVEND_CONFIG_FILE: '/etc/credvend/profiles.json', ...env }, () => JSON.stringify(file));
}

function expectAll(problems: readonly string[], expected: readonly string[]): void {
  for (const want of expected) {
    expect(
      problems.some((p) => p.startsWith(want)),
      `missing: ${want}\ngot:\n${problems.join('\n')}`,
    ).toBe(true);
  }
}

const eleven = Array.from({ length: 11 }, (_, i) => `arn:aws:iam::aws:policy/P${i}`);

describe('loadConfig: every problem at once', () => {
  it('lists every problem of the file with its path, across issuers and profiles', () => {
    // Attack/risk: fixing problems one restart at a time tempts operators to loosen settings
    // (e.g. drop the session policy ARNs) just to get the service up.
    // Prepare
    const file = {
      issuers: [
        GOOD_ISSUER,
        {
          issuer: 'https://two.example.com',
          audiences: ['credvend'],
          jwksUri: 'https://two.example.com/jwks',
          publicKey: PEM,
        },
        { issuer: 'https://hs.example.com', audiences: ['credvend'], publicKey: PEM, algorithms: ['RS256', 'HS256'] },
        { issuer: 'https://dev.example.com', audiences: ['credvend'], hmacSecret: 'too-short' },
      ],
      profiles: {
        good: profile(),
        badRole: profile({ roleArn: `arn:aws:iam::12345:role/x` }),
        badPolicy: profile({ sessionPolicyArns: [ROLE] }),
        tooManyPolicies: profile({ sessionPolicyArns: eleven }),
        noSlash: profile({ prefix: 'uploads/{sub}' }),
        unknownField: profile({ maxKey: 5 }),
        durations: profile({ defaultDurationSeconds: 3600, maxDurationSeconds: 1800 }),
        transitive: profile({ sessionTags: { project: '{project_path}' }, transitiveTagKeys: ['env'] }),
      },
    };
    // Act
    const problems = problemsOf(() => loadJson(file));
    // Assess
    expectAll(problems, [
      'issuers.1: set exactly one of jwksUri, discovery, publicKey, hmacSecret',
      'issuers.2.algorithms: HS* algorithms are only allowed with hmacSecret',
      'issuers.3.hmacSecret: must be at least 32 characters',
      'profiles.badRole.roleArn: account must be 12 digits',
      'profiles.badPolicy.sessionPolicyArns.0: expected an IAM policy ARN, got an IAM role ARN',
      'profiles.tooManyPolicies.sessionPolicyArns: at most 10 managed session policy ARNs',
      "profiles.noSlash.prefix: must be empty or end with '/'",
      'profiles.unknownField: Unrecognized key: "maxKey"',
      'profiles.durations.defaultDurationSeconds: must not exceed maxDurationSeconds',
      'profiles.transitive.transitiveTagKeys: "env" is not a key of sessionTags',
    ]);
    expect(problems.filter((p) => p.includes('profiles.good'))).toEqual([]);
    expect(problems).toHaveLength(10);
  });

  it('lists every problem of one profile too, cross-field checks included', () => {
    // Attack/risk: a type error or an over-long list hiding a duration or tag mistake until the
    // next restart, or an invalid ARN hidden behind "too many ARNs".
    // Prepare
    const file = {
      issuers: [GOOD_ISSUER],
      profiles: {
        all: profile({
          roleArn: `arn:aws:iam::${ACCT}:user/alice`,
          prefix: 'uploads/{sub}',
          maxKeys: 'ten',
          sessionPolicyArns: [ROLE, ...eleven.slice(1)],
          defaultDurationSeconds: 3600,
          maxDurationSeconds: 1800,
          sessionTags: { project: '{project_path}' },
          transitiveTagKeys: ['env'],
          unknown: true,
        }),
      },
    };
    // Act
    const problems = problemsOf(() => loadJson(file));
    // Assess
    expectAll(problems, [
      'profiles.all.roleArn: expected an IAM role ARN, got an IAM user ARN',
      "profiles.all.prefix: must be empty or end with '/'",
      'profiles.all.maxKeys:',
      'profiles.all.sessionPolicyArns: at most 10 managed session policy ARNs',
      'profiles.all.sessionPolicyArns.0: expected an IAM policy ARN, got an IAM role ARN',
      'profiles.all.defaultDurationSeconds: must not exceed maxDurationSeconds',
      'profiles.all.transitiveTagKeys: "env" is not a key of sessionTags',
      'profiles.all: Unrecognized key: "unknown"',
    ]);
  });

  it('reports bad YAML with the file name and the parser position, without loading anything', () => {
    // Prepare
    const yaml = 'issuers:\n  - issuer: https://gitlab.example.com\n    audiences: [credvend\n';
    // Act
    const problems = problemsOf(() => loadConfig({ CREDVEND_CONFIG_FILE: '/etc/credvend/profiles.yaml' }, () => yaml));
    // Assess
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^\/etc\/credvend\/profiles\.yaml: cannot be read or parsed \(.+\)/);
  });

  it('reports an unreadable file', () => {
    const problems = problemsOf(() =>
      loadConfig({ CREDVEND_CONFIG_FILE: '/nope.yaml' }, () => {
        throw new Error('ENOENT: no such file or directory');
      }),
    );
    expect(problems).toEqual(['/nope.yaml: cannot be read or parsed (ENOENT: no such file or directory)']);
  });

  it('lists environment problems together with file problems', () => {
    const problems = problemsOf(() =>
      loadJson({ issuers: [GOOD_ISSUER], profiles: { p: profile({ prefix: 'x' }) } }, { CREDVEND_PORT: 'http' }),
    );
    expectAll(problems, ['env.CREDVEND_PORT:', "profiles.p.prefix: must be empty or end with '/'"]);
  });

  it('requires CREDVEND_CONFIG_FILE', () => {
    expectAll(
      problemsOf(() => loadConfig({}, () => '')),
      ['env.CREDVEND_CONFIG_FILE:'],
    );
  });
});

describe('loadConfig: formats', () => {
  const yaml = [
    'issuers:',
    '  - issuer: https://gitlab.example.com',
    '    audiences: [credvend]',
    '    jwksUri: https://gitlab.example.com/oauth/discovery/keys',
    'profiles:',
    '  ci-production:',
    `    roleArn: ${ROLE}`,
    '    bucket: ci-artifacts',
    '    region: eu-west-1',
    '    prefix: "ci/{project_path}/"',
    '    operations: [upload]',
    '    match:',
    '      iss: https://gitlab.example.com',
    '      claims:',
    '        project_path: "group/*"',
    '        ref_protected: true',
    '        environment: [production, staging]',
  ].join('\n');

  it('parses YAML and JSON into the same frozen configuration', () => {
    // Act
    const fromYaml = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.yaml' }, () => yaml);
    const fromYml = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.yml' }, () => yaml);
    const asJson = JSON.stringify({
      issuers: [GOOD_ISSUER],
      profiles: {
        'ci-production': {
          roleArn: ROLE,
          bucket: 'ci-artifacts',
          region: 'eu-west-1',
          prefix: 'ci/{project_path}/',
          operations: ['upload'],
          match: {
            iss: GOOD_ISSUER.issuer,
            claims: { project_path: 'group/*', ref_protected: true, environment: ['production', 'staging'] },
          },
        },
      },
    });
    const fromJson = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.JSON' }, () => asJson);
    // Assess
    const p = fromYaml.profiles.get('ci-production');
    expect(p).toMatchObject({
      name: 'ci-production',
      partition: 'aws',
      prefix: 'ci/{project_path}/',
      operations: ['upload'],
      maxKeys: 10,
      allowPrefixGrants: false,
      defaultDurationSeconds: 900,
      maxDurationSeconds: 3600,
      match: { claims: { project_path: 'group/*', ref_protected: 'true', environment: ['production', 'staging'] } },
    });
    expect(fromJson.profiles.get('ci-production')).toEqual(p);
    expect(fromYml.profiles.get('ci-production')).toEqual(p);
    expect(Object.isFrozen(fromYaml)).toBe(true);
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('derives the partition from the role ARN', () => {
    const c = loadJson({
      issuers: [GOOD_ISSUER],
      profiles: { cn: profile({ roleArn: `arn:aws-cn:iam::${ACCT}:role/r`, region: 'cn-north-1' }) },
    });
    expect(c.profiles.get('cn')?.partition).toBe('aws-cn');
  });
});

describe('loadConfig: S3-compatible mode', () => {
  const file = { issuers: [GOOD_ISSUER], profiles: { rgw: profile({ roleArn: 'arn:aws:iam:::role/X' }) } };

  it('accepts arn:aws:iam:::role/X when CREDVEND_S3_COMPATIBLE=true (Ceph RGW)', () => {
    const c = loadJson(file, { CREDVEND_S3_COMPATIBLE: 'true' });
    expect(c.profiles.get('rgw')?.roleArn).toBe('arn:aws:iam:::role/X');
  });

  it('refuses it in AWS mode: a real AWS role ARN always names its account', () => {
    // Attack/risk: a typo'd ARN pointing STS at an unintended role.
    expect(problemsOf(() => loadJson(file))).toEqual(['profiles.rgw.roleArn: account is missing (must be 12 digits)']);
    expect(problemsOf(() => loadJson(file, { CREDVEND_S3_COMPATIBLE: 'false' }))).toEqual([
      'profiles.rgw.roleArn: account is missing (must be 12 digits)',
    ]);
  });
});

describe('prefix templates', () => {
  it('refuses two placeholders in one path segment', () => {
    // Attack stopped: with "{a}{b}/", tenant a="x",b="yz" and tenant a="xy",b="z" share "xyz/".
    const file = JSON.stringify({
      issuers: [{ issuer: 'https://i.example.com', audiences: ['a'], hmacSecret: 'x'.repeat(32) }],
      profiles: {
        joined: {
          roleArn: 'arn:aws:iam::123456789012:role/r',
          bucket: 'bucket-a',
          region: 'eu-west-1',
          prefix: 'u/{a}-{b}/',
          match: {},
        },
        split: {
          roleArn: 'arn:aws:iam::123456789012:role/r',
          bucket: 'bucket-a',
          region: 'eu-west-1',
          prefix: 'u/{a}/{b}/',
          match: {},
        },
      },
    });
    const err = (() => {
      try {
        loadConfig({ CREDVEND_CONFIG_FILE: 'p.json' }, () => file);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err.problems).toEqual([
      expect.stringMatching(/^profiles\.joined\.prefix: at most one \{claim\} placeholder per path segment/),
    ]);
  });
});

describe('several trusted issuers', () => {
  const issuers = [
    { issuer: 'https://gitlab.example.com', audiences: ['a'], hmacSecret: 'g'.repeat(32) },
    { issuer: 'https://token.actions.githubusercontent.com', audiences: ['a'], hmacSecret: 'h'.repeat(32) },
  ];
  const profile = (match: Record<string, unknown>, prefix = 'u/{sub}/') => ({
    roleArn: 'arn:aws:iam::123456789012:role/r',
    bucket: 'bucket-a',
    region: 'eu-west-1',
    prefix,
    match,
  });
  const problemsOf = (profiles: Record<string, unknown>): string[] => {
    try {
      loadConfig({ CREDVEND_CONFIG_FILE: 'p.json' }, () => JSON.stringify({ issuers, profiles }));
      return [];
    } catch (e) {
      return [...(e as ConfigError).problems];
    }
  };

  it('a claim-built prefix must be pinned to one issuer, or carry {iss}', () => {
    // Attack stopped: the owner of issuer B mints a token whose sub equals a user of issuer A
    // and lands in that user's prefix.
    expect(problemsOf({ open: profile({}) })).toEqual([
      expect.stringMatching(/^profiles\.open\.match\.iss: with several trusted issuers/),
    ]);
    expect(problemsOf({ both: profile({ iss: issuers.map((i) => i.issuer) }) })).toHaveLength(1);
    expect(problemsOf({ pinned: profile({ iss: 'https://gitlab.example.com' }) })).toEqual([]);
    expect(problemsOf({ keyed: profile({}, 'u/{iss}/{sub}/') })).toEqual([]);
    expect(problemsOf({ shared: profile({}, 'shared/') })).toEqual([]); // no claims in the prefix: nothing to collide
  });
});
