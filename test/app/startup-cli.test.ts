// The real entry point, spawned as `tsx src/server.ts`: a bad configuration stops the process
// with every problem listed (exit 2); failed start-up checks stop it too (exit 3); /readyz on the
// admin listener is 503 until the checks passed. The child gets an explicit environment, never
// this process's (no keys or profiles from the machine running the tests leak in).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  callerIdentityReply,
  containerCredentialsReply,
  describeKeyReply,
  startLoopback,
  type Loopback,
  type Reply,
} from '../helpers/loopback.js';
import { freePort } from '../helpers/net.js';

const TSX = join(process.cwd(), 'node_modules', '.bin', 'tsx');
const ACCT = '123456789012';
const KEY_ARN = `arn:aws:kms:eu-west-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const ISSUER = {
  issuer: 'https://gitlab.example.com',
  audiences: ['credvend'],
  jwksUri: 'https://gitlab.example.com/oauth/discovery/keys',
};

let dir: string;
const servers: Loopback[] = [];
// Every child is killed after its test: a test that timed out must not go on writing into the
// next test's directory (`dir`) or holding its ports.
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'credvend-cli-'));
});
afterEach(async () => {
  // SIGTERM: tsx passes it on to the node process it runs (a SIGKILL would orphan that one).
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(servers.splice(0).map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(profiles: Record<string, unknown>): string {
  const path = join(dir, 'profiles.yaml');
  writeFileSync(path, JSON.stringify({ issuers: [ISSUER], profiles })); // JSON is valid YAML
  return path;
}

function profile(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    roleArn: `arn:aws:iam::${ACCT}:role/uploads`,
    bucket: 'tenant-bucket',
    region: 'eu-west-1',
    match: { iss: ISSUER.issuer },
    ...over,
  };
}

function baseEnv(configFile: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    CREDVEND_CONFIG_FILE: configFile,
    CREDVEND_LOG_LEVEL: 'warn',
    CREDVEND_AUDIT_LOG: 'stdout',
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    AWS_CONFIG_FILE: join(dir, 'no-config'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: 'eu-west-1',
  };
}

interface Child {
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
}

function run(args: string[], env: Record<string, string>): Child {
  const child = spawn(TSX, ['src/server.ts', ...args], { cwd: process.cwd(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return {
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    stdout: () => out,
    stderr: () => err,
    kill: (signal) => child.kill(signal),
  };
}

async function loopback(handle: Parameters<typeof startLoopback>[0]): Promise<Loopback> {
  const s = await startLoopback(handle);
  servers.push(s);
  return s;
}

async function readyz(port: number): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined; // not listening yet
  }
}

async function until<T>(probe: () => Promise<T | undefined>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('credvend --check-config', { timeout: 30_000 }, () => {
  it('exits 2 and lists every problem of a bad configuration on stderr', async () => {
    // Prepare: several independent mistakes across profiles and the environment.
    const file = writeConfig({
      'policy-as-role': profile({ roleArn: `arn:aws:iam::${ACCT}:policy/Boundary` }),
      'bad-policies': profile({
        sessionPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess', `arn:aws:iam::${ACCT}:role/r`],
      }),
      'bad-kms': profile({ kmsKeyId: 'arn:aws:s3:::bucket' }),
      'bad-bucket': profile({ bucket: 'Not_A_Bucket' }),
    });
    // Act
    const child = run(['--check-config'], {
      ...baseEnv(file),
      CREDVEND_PORT: 'eighty',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_ROLE_ARN: `arn:aws:iam::${ACCT}:role/task`,
    });
    const code = await child.exited;
    // Assess
    expect(code).toBe(2);
    const err = child.stderr();
    for (const expected of [
      'invalid configuration (6 problems)',
      'env.CREDVEND_PORT: ',
      'env.AWS_ACCESS_KEY_ID: static keys and a role setting (AWS_ROLE_ARN) are both set',
      'profiles.policy-as-role.roleArn: expected an IAM role ARN, got an IAM policy ARN',
      'profiles.bad-policies.sessionPolicyArns.1: expected an IAM policy ARN, got an IAM role ARN',
      'profiles.bad-kms.kmsKeyId: expected a KMS ARN, got an S3 ARN',
      'profiles.bad-bucket.bucket: must be a valid S3 bucket name',
    ])
      expect(err).toContain(expected);
    expect(child.stdout()).not.toContain('configuration OK');
  });

  it('validates CREDVEND_LOG_LEVEL with everything else: a bad level is one problem among all (exit 2)', async () => {
    // Mistake: CREDVEND_LOG_LEVEL=verbose used to exit 1 with pino's own message, hiding every
    // other problem, because the logger was built from the unvalidated environment.
    const file = writeConfig({ 'bad-bucket': profile({ bucket: 'Not_A_Bucket' }) });
    const child = run(['--check-config'], { ...baseEnv(file), CREDVEND_LOG_LEVEL: 'verbose', CREDVEND_PORT: 'eighty' });
    expect(await child.exited).toBe(2);
    const err = child.stderr();
    expect(err).toContain('invalid configuration (3 problems)');
    expect(err).toContain('env.CREDVEND_LOG_LEVEL: ');
    expect(err).toContain('env.CREDVEND_PORT: ');
    expect(err).toContain('profiles.bad-bucket.bucket: must be a valid S3 bucket name');
    expect(err).not.toContain('unknown level');
    expect(child.stdout()).toBe(''); // nothing was logged: no logger exists yet
  });

  it('refuses a 50 MB file by its size, at once, before reading it (exit 2)', async () => {
    // Attack/mistake: 50 MB of YAML took 7.7 s and 1.8 GB to accept; 50 MB of junk was a V8 OOM.
    const path = join(dir, 'huge.yaml');
    writeFileSync(path, '');
    truncateSync(path, 50 * 1024 * 1024); // sparse: nothing written, 50 MB to read
    const child = run(['--check-config'], baseEnv(path));
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toContain(
      `${path}: is 52428800 bytes, over the limit of 1 MiB (set by CREDVEND_CONFIG_MAX_BYTES)`,
    );
  });

  it('writes the whole capped problem list to a pipe before exiting, never a stack overflow (exit 2)', async () => {
    // Mistake: 40,000 invalid profiles ended in "Maximum call stack size exceeded" (exit 1), and
    // with stderr on a pipe the list was cut mid-line by process.exit().
    const file = writeConfig(Object.fromEntries(Array.from({ length: 40_000 }, (_, i) => [`p${i}`, {}])));
    const child = run(['--check-config'], baseEnv(file));
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toBe('credvend: invalid configuration (1 problem):\n  - profiles: at most 1000 profiles\n');

    const many = writeConfig(
      Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { prefix: `${'x'.repeat(900)}/../` }])),
    );
    const second = run(['--check-config'], baseEnv(many));
    expect(await second.exited).toBe(2);
    const lines = second.stderr().split('\n');
    expect(lines).toHaveLength(1 + 50 + 1 + 1); // header, 50 problems, "… and K more", the final newline
    expect(lines.at(-2)).toMatch(/^ {2}… and \d+ more$/);
    expect(lines.at(-1)).toBe('');
  });

  it('exits 0 for a good configuration, without AWS credentials or network (offline check)', async () => {
    const file = writeConfig({
      uploads: profile({ kmsKeyId: 'alias/uploads', sessionPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] }),
    });
    const child = run(['--check-config'], baseEnv(file));
    expect(await child.exited).toBe(0);
    expect(child.stdout()).toContain('configuration OK (1 issuer(s), 1 profile(s))');
  });
});

describe('credvend start-up', { timeout: 30_000 }, () => {
  it('exits 2 when the audit log cannot be written, before serving', async () => {
    // A service that vends credentials without an audit trail must not start.
    const file = writeConfig({ uploads: profile({}) });
    const child = run([], { ...baseEnv(file), CREDVEND_AUDIT_LOG: '/etc/passwd/audit.log' });
    expect(await child.exited).toBe(2);
    expect(child.stderr()).toContain('env.CREDVEND_AUDIT_LOG: cannot open /etc/passwd/audit.log for appending');
  });

  it('exits 3 listing the service identity and KMS problems together, without serving', async () => {
    // Prepare: an IAM user key, and a KMS key that is disabled.
    const sts = await loopback(() => callerIdentityReply(`arn:aws:iam::${ACCT}:user/deploy`, ACCT));
    const kms = await loopback(() => describeKeyReply({ arn: KEY_ARN, state: 'Disabled' }));
    const file = writeConfig({ secure: profile({ kmsKeyId: 'alias/uploads' }) });
    const adminPort = await freePort();
    // Act
    const child = run([], {
      ...baseEnv(file),
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      CREDVEND_STS_ENDPOINT: sts.url,
      CREDVEND_KMS_ENDPOINT: kms.url,
      CREDVEND_HOST: '127.0.0.1',
      CREDVEND_PORT: '0',
      CREDVEND_ADMIN_HOST: '127.0.0.1',
      CREDVEND_ADMIN_PORT: String(adminPort),
    });
    const code = await child.exited;
    // Assess
    expect(code).toBe(3);
    const err = child.stderr();
    expect(err).toContain('start-up checks failed: invalid configuration (2 problems)');
    expect(err).toContain(
      'the service runs on IAM user credentials (a long-lived AKIA… access key, identity arn:aws:iam::123456789012:user/deploy)',
    );
    expect(err).toContain(`profiles.secure.kmsKeyId: key ${KEY_ARN} is Disabled, not Enabled`);
    // The secret key never reaches the output.
    expect(err + child.stdout()).not.toContain('wJalrXUtnFEMI');
    expect(kms.requests[0]?.headers['x-amz-target']).toBe('TrentService.DescribeKey');
  });

  it('keeps /readyz at 503 while the checks run, turns ready once they pass, and drains on SIGTERM', async () => {
    // Prepare: ECS container credentials, an assumed-role caller, and a KMS answer held back.
    const ecs = await loopback(() =>
      containerCredentialsReply({
        accessKeyId: 'ASIACLITASK',
        secretAccessKey: 'cli-secret',
        sessionToken: 'cli-token',
        expiration: new Date(Date.now() + 3_600_000),
      }),
    );
    const sts = await loopback(() => callerIdentityReply(`arn:aws:sts::${ACCT}:assumed-role/credvend-task/abc`, ACCT));
    let release: (r: Reply) => void = () => undefined;
    const held = new Promise<Reply>((r) => {
      release = r;
    });
    const kms = await loopback(() => held);
    const file = writeConfig({ secure: profile({ kmsKeyId: 'alias/uploads' }) });
    const adminPort = await freePort();
    const child = run([], {
      ...baseEnv(file),
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${ecs.url}/v2/credentials/task`,
      CREDVEND_STS_ENDPOINT: sts.url,
      CREDVEND_KMS_ENDPOINT: kms.url,
      CREDVEND_STS_TIMEOUT_MS: '30000',
      CREDVEND_HOST: '127.0.0.1',
      CREDVEND_PORT: '0',
      CREDVEND_ADMIN_HOST: '127.0.0.1',
      CREDVEND_ADMIN_PORT: String(adminPort),
    });
    try {
      // Act + Assess: the admin listener is up and says "starting" while DescribeKey is held.
      await until(async () => (kms.requests.length > 0 ? true : undefined), Boolean);
      const during = await until(
        () => readyz(adminPort),
        () => true,
      );
      expect(during).toEqual({ status: 503, body: JSON.stringify({ status: 'starting' }) });

      release(describeKeyReply({ arn: KEY_ARN }));
      const after = await until(
        () => readyz(adminPort),
        (r) => r.status === 200,
      );
      expect(JSON.parse(after.body)).toEqual({ status: 'ready' });
      // The STS call was signed with the container credentials from the default chain.
      expect(sts.requests[0]?.headers.authorization).toContain('Credential=ASIACLITASK/');
      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      expect(metrics).toMatch(/credvend_base_credentials_expiry_timestamp_seconds \d{10}/);
      expect(metrics).toContain('credvend_ready 1');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await child.exited).toBe(0);
  });
});
