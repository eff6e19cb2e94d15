// runStartupChecks: service identity, credentials and KMS problems are reported together, and
// the checked configuration carries every profile's resolved key ARN.
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/load.js';
import type { KeyDescriber, KeyFacts } from '../../src/kms/resolve.js';
import { KeyDescribeError } from '../../src/kms/resolve.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { runStartupChecks } from '../../src/startup.js';
import { createBaseCredentials } from '../../src/sts/base-credentials.js';
import { StsError, type ServiceIdentity, type Sts } from '../../src/sts/sts.js';
import { problemsOfAsync as problemsOf } from '../helpers/config.js';

const ACCT = '123456789012';
const KEY_ARN = `arn:aws:kms:eu-west-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const TASK = { account: ACCT, arn: `arn:aws:sts::${ACCT}:assumed-role/credvend-task/abc` };

function config(env: Record<string, string> = {}, profiles?: Record<string, unknown>): Config {
  const p = (over: Record<string, unknown> = {}) => ({
    roleArn: `arn:aws:iam::${ACCT}:role/r`,
    bucket: 'tenant-bucket',
    region: 'eu-west-1',
    match: { iss: 'https://idp.example.com' },
    ...over,
  });
  const file = {
    issuers: [{ issuer: 'https://idp.example.com', audiences: ['credvend'], jwksUri: 'https://idp.example.com/jwks' }],
    profiles: profiles ?? { plain: p(), kms: p({ kmsKeyId: 'alias/uploads' }) },
  };
  return loadConfig({ CREDVEND_CONFIG_FILE: 'p.json', ...env }, () => JSON.stringify(file));
}

class Sink extends Writable {
  readonly records: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n'))
      if (l.trim()) this.records.push(JSON.parse(l) as { level: number; msg: string });
    cb();
  }
}

interface Setup {
  env?: Record<string, string>;
  accessKeyId?: string;
  expiration?: Date | undefined;
  noCredentials?: boolean;
  identity?: ServiceIdentity | Error;
  keys?: Record<string, KeyFacts | Error>;
  profiles?: Record<string, unknown>;
}

function setup(s: Setup = {}) {
  const sink = new Sink();
  const sts: Sts = {
    assumeRole: () => Promise.reject(new Error('not used')),
    serviceIdentity: () =>
      s.identity instanceof Error ? Promise.reject(s.identity) : Promise.resolve(s.identity ?? TASK),
  };
  const baseCredentials = createBaseCredentials({
    source: async () => {
      if (s.noCredentials)
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        });
      return {
        accessKeyId: s.accessKeyId ?? 'ASIAEXAMPLE',
        secretAccessKey: 'secret',
        sessionToken: 'token',
        ...('expiration' in s
          ? s.expiration
            ? { expiration: s.expiration }
            : {}
          : { expiration: new Date(Date.now() + 3_600_000) }),
      };
    },
    metrics: createMetrics({ version: 't', defaultMetrics: false }),
  });
  const described: string[] = [];
  const kms: KeyDescriber = {
    async describe(keyId, region) {
      described.push(`${region} ${keyId}`);
      const k = (s.keys ?? {
        'alias/uploads': {
          arn: KEY_ARN,
          keyState: 'Enabled',
          keySpec: 'SYMMETRIC_DEFAULT',
          keyUsage: 'ENCRYPT_DECRYPT',
        },
      })[keyId];
      if (k === undefined) throw new KeyDescribeError('NotFoundException');
      if (k instanceof Error) throw k;
      return k;
    },
  };
  const run = () =>
    runStartupChecks({
      config: config(s.env, s.profiles),
      sts,
      baseCredentials,
      kms,
      logger: pino({ level: 'debug' }, sink),
    });
  return { run, sink, described };
}

describe('runStartupChecks', () => {
  it('passes with task-role credentials, logs the service identity and resolves the KMS keys', async () => {
    const { run, sink } = setup();
    const result = await run();
    expect(result.config.profiles.get('kms')?.kmsKeyArn).toBe(KEY_ARN);
    expect(result.config.profiles.get('plain')?.kmsKeyArn).toBeUndefined();
    expect(result.serviceIdentity).toEqual(TASK);
    expect(sink.records.find((r) => r.msg === 'running as this AWS identity')).toMatchObject({
      account: ACCT,
      arn: TASK.arn,
      temporaryCredentials: true,
    });
  });

  it('refuses AKIA base credentials: a leaked long-lived key would keep working after the task is gone', async () => {
    const { run } = setup({
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      expiration: undefined,
      identity: { account: ACCT, arn: `arn:aws:iam::${ACCT}:user/deploy` },
    });
    const problems = await problemsOf(run());
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('IAM user credentials');
  });

  it('accepts them with CREDVEND_ALLOW_IAM_USER_KEYS=true and warns', async () => {
    const { run, sink } = setup({
      env: { CREDVEND_ALLOW_IAM_USER_KEYS: 'true' },
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      expiration: undefined,
    });
    await run();
    expect(sink.records.some((r) => r.level === 40 && r.msg.includes('CREDVEND_ALLOW_IAM_USER_KEYS=true'))).toBe(true);
  });

  it('lists service identity and KMS problems together', async () => {
    // Prepare: a user key, and two profiles whose keys are unusable in different ways.
    const { run } = setup({
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      expiration: undefined,
      profiles: {
        a: {
          roleArn: `arn:aws:iam::${ACCT}:role/r`,
          bucket: 'bucket-a',
          region: 'eu-west-1',
          kmsKeyId: 'alias/disabled',
          match: {},
        },
        b: {
          roleArn: `arn:aws:iam::${ACCT}:role/r`,
          bucket: 'bucket-b',
          region: 'eu-west-1',
          kmsKeyId: 'alias/missing',
          match: {},
        },
      },
      keys: {
        'alias/disabled': {
          arn: KEY_ARN,
          keyState: 'Disabled',
          keySpec: 'SYMMETRIC_DEFAULT',
          keyUsage: 'ENCRYPT_DECRYPT',
        },
      },
    });
    // Act
    const problems = await problemsOf(run());
    // Assess
    expect(problems).toEqual([
      expect.stringContaining('IAM user credentials'),
      `profiles.a.kmsKeyId: key ${KEY_ARN} is Disabled, not Enabled`,
      expect.stringMatching(/^profiles\.b\.kmsKeyId: alias\/missing: key not found/),
    ]);
  });

  it('refuses to start without AWS credentials, and says the KMS keys went unchecked', async () => {
    const { run, described } = setup({ noCredentials: true });
    const problems = await problemsOf(run());
    expect(problems).toEqual([
      'no AWS credentials (FetchFailed: CredentialsProviderError): expected an ECS task role, EKS IRSA / Pod Identity or instance metadata',
      'KMS keys of profiles kms not checked: no AWS credentials',
    ]);
    expect(described).toEqual([]);
  });

  it('refuses to start when GetCallerIdentity fails in AWS mode: the credentials are not usable', async () => {
    const { run } = setup({ identity: new StsError('access_denied', 'InvalidClientTokenId') });
    expect(await problemsOf(run())).toEqual([
      "sts:GetCallerIdentity failed (InvalidClientTokenId): the service's AWS credentials are not usable",
    ]);
  });

  it('only warns when GetCallerIdentity fails in S3-compatible mode (Ceph RGW answers 405)', async () => {
    const { run, sink } = setup({
      env: { CREDVEND_S3_COMPATIBLE: 'true' },
      accessKeyId: 'rgwstatickey',
      expiration: undefined,
      identity: new StsError('rejected', 'other'),
      profiles: { rgw: { roleArn: 'arn:aws:iam:::role/r', bucket: 'rgw-bucket', region: 'us-east-1', match: {} } },
    });
    await run();
    const warnings = sink.records.filter((r) => r.level === 40).map((r) => r.msg);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('sts:GetCallerIdentity is not available'),
        expect.stringContaining('S3-compatible mode: running on static user keys'),
      ]),
    );
  });

  it('does not call KMS when no profile has a key', async () => {
    const { run, described } = setup({
      profiles: { p: { roleArn: `arn:aws:iam::${ACCT}:role/r`, bucket: 'b-bucket', region: 'eu-west-1', match: {} } },
    });
    await run();
    expect(described).toEqual([]);
  });
});
