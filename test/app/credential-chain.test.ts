// The service's own credentials through the real AWS SDK default chain, against loopback
// stand-ins for the ECS / EKS container-credentials endpoint and for STS (IRSA web identity).
//
// The SDK chain reads its settings from process.env (the container URIs have no other input), so
// these tests stub the environment with vi.stubEnv and restore it after each test. Everything
// that could leak in from the machine running the tests (keys, profiles, ~/.aws, instance
// metadata) is neutralised first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createBaseCredentials, defaultCredentialChain } from '../../src/sts/base-credentials.js';
import { createStsClient } from '../../src/sts/http-client.js';
import { createSts } from '../../src/sts/sts.js';
import {
  callerIdentityReply,
  containerCredentialsReply,
  queryParams,
  startLoopback,
  webIdentityReply,
  type FakeCredentials,
  type Loopback,
  isolateAwsCredentialChain,
} from '../helpers/loopback.js';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/credvend-irsa';
const MIN = 60_000;

let dir: string;
const servers: Loopback[] = [];

async function loopback(...args: Parameters<typeof startLoopback>): Promise<Loopback> {
  const s = await startLoopback(...args);
  servers.push(s);
  return s;
}

function creds(n: number, expiresAt: number): FakeCredentials {
  return {
    accessKeyId: `ASIACHAIN${n}`,
    secretAccessKey: `chain-secret-${n}`,
    sessionToken: `chain-token-${n}`,
    expiration: new Date(expiresAt),
  };
}

function metrics(): Metrics {
  return createMetrics({ version: 'test', defaultMetrics: false });
}

async function expiryMetric(m: Metrics): Promise<number | undefined> {
  return (await m.baseCredentialExpiry.get()).values[0]?.value;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'credvend-chain-'));
  isolateAwsCredentialChain();
  vi.stubEnv('AWS_REGION', 'eu-west-1');
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('ECS container credentials', () => {
  it('resolves the task role credentials from AWS_CONTAINER_CREDENTIALS_FULL_URI', async () => {
    // Prepare
    const expiresAt = Date.now() + 60 * MIN;
    const ecs = await loopback(() => containerCredentialsReply(creds(1, expiresAt)));
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${ecs.url}/v2/credentials/task`);
    const m = metrics();
    const base = createBaseCredentials({ source: defaultCredentialChain({ region: 'eu-west-1' }), metrics: m });
    // Act
    const c = await base.provider();
    // Assess
    expect(c).toMatchObject({
      accessKeyId: 'ASIACHAIN1',
      secretAccessKey: 'chain-secret-1',
      sessionToken: 'chain-token-1',
    });
    expect(ecs.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v2/credentials/task']);
    expect(ecs.requests[0]?.headers.authorization).toBeUndefined();
    expect(base.lastAccessKeyId()).toBe('ASIACHAIN1');
    expect(await expiryMetric(m)).toBe(Math.floor(expiresAt / 1000));
  });

  it('sends the token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity)', async () => {
    const ecs = await loopback(() => containerCredentialsReply(creds(1, Date.now() + 60 * MIN)));
    const tokenFile = join(dir, 'eks-pod-identity-token');
    writeFileSync(tokenFile, 'pod-identity-token-value');
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${ecs.url}/v1/credentials`);
    vi.stubEnv('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', tokenFile);
    const base = createBaseCredentials({ source: defaultCredentialChain(), metrics: metrics() });
    expect((await base.provider()).accessKeyId).toBe('ASIACHAIN1');
    expect(ecs.requests[0]?.headers.authorization).toBe('pod-identity-token-value');
  });

  it('signs STS calls with them (the credentials the STS client is given)', async () => {
    const ecs = await loopback(() => containerCredentialsReply(creds(7, Date.now() + 60 * MIN)));
    const sts = await loopback(() =>
      callerIdentityReply('arn:aws:sts::123456789012:assumed-role/credvend-task/abc', '123456789012'),
    );
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${ecs.url}/creds`);
    const base = createBaseCredentials({ source: defaultCredentialChain(), metrics: metrics() });
    const client = createStsClient({
      region: 'eu-west-1',
      endpoint: sts.url,
      credentials: base.provider,
      requestTimeoutMs: 2000,
      connectTimeoutMs: 1000,
      maxAttempts: 1,
    });
    try {
      const me = await createSts(client).serviceIdentity();
      expect(me).toEqual({ account: '123456789012', arn: 'arn:aws:sts::123456789012:assumed-role/credvend-task/abc' });
      expect(sts.requests[0]?.headers.authorization).toContain('Credential=ASIACHAIN7/');
      expect(sts.requests[0]?.headers['x-amz-security-token']).toBe('chain-token-7');
    } finally {
      client.destroy();
    }
  });
});

describe('EKS IRSA web identity', () => {
  it('exchanges the projected service-account token for role credentials at STS', async () => {
    // Prepare
    const expiresAt = Date.now() + 60 * MIN;
    const sts = await loopback(() => webIdentityReply(creds(3, expiresAt), ROLE_ARN));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.service-account.sig');
    vi.stubEnv('AWS_WEB_IDENTITY_TOKEN_FILE', tokenFile);
    vi.stubEnv('AWS_ROLE_ARN', ROLE_ARN);
    const m = metrics();
    const base = createBaseCredentials({
      source: defaultCredentialChain({ region: 'eu-west-1', stsEndpoint: sts.url }),
      metrics: m,
    });
    // Act
    const c = await base.provider();
    // Assess
    expect(c).toMatchObject({ accessKeyId: 'ASIACHAIN3', sessionToken: 'chain-token-3' });
    const form = queryParams(sts.requests[0]?.body ?? '');
    expect(form.get('Action')).toBe('AssumeRoleWithWebIdentity');
    expect(form.get('RoleArn')).toBe(ROLE_ARN);
    expect(form.get('WebIdentityToken')).toBe('eyJhbGciOiJSUzI1NiJ9.service-account.sig');
    expect(await expiryMetric(m)).toBe(Math.floor(expiresAt / 1000));
  });
});

describe('refresh ahead of expiry', () => {
  it('fetches new credentials before the old ones expire, and 50 concurrent calls across the refresh all succeed', async () => {
    // Prepare: the endpoint mints credentials that live 6 minutes on a clock the test controls,
    // and holds its second answer until the test releases it.
    let clock = Date.now();
    let n = 0;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const ecs = await loopback(async () => {
      n += 1;
      const mine = n;
      if (mine === 2) await held;
      return containerCredentialsReply(creds(mine, clock + 6 * MIN));
    });
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${ecs.url}/creds`);
    const m = metrics();
    const base = createBaseCredentials({ source: defaultCredentialChain(), metrics: m, now: () => clock });
    const first = await base.provider();
    const firstExpiry = first.expiration?.getTime() ?? 0;

    // Act 1: well before the margin nothing is fetched.
    clock += 30_000;
    expect((await base.provider()).accessKeyId).toBe('ASIACHAIN1');
    expect(ecs.requests).toHaveLength(1);

    // Act 2: 4.5 minutes left, inside the 5-minute margin; 50 concurrent calls while the
    // endpoint is slow to answer the refresh.
    clock += 60_000;
    const during = await Promise.all(Array.from({ length: 50 }, () => base.provider()));

    // Assess: every call succeeded with the still-valid keys; exactly one refresh is in flight.
    expect(during.every((c) => c.accessKeyId === 'ASIACHAIN1')).toBe(true);
    await vi.waitFor(() => expect(ecs.requests).toHaveLength(2));
    expect(clock).toBeLessThan(firstExpiry);

    // Act 3: the endpoint answers; 50 more concurrent calls.
    release();
    await vi.waitFor(async () => expect((await base.provider()).accessKeyId).toBe('ASIACHAIN2'));
    const after = await Promise.all(Array.from({ length: 50 }, () => base.provider()));

    // Assess: new keys everywhere, no further fetch, the metric follows the new expiry.
    expect(after.every((c) => c.accessKeyId === 'ASIACHAIN2')).toBe(true);
    expect(ecs.requests).toHaveLength(2);
    expect(await expiryMetric(m)).toBe(Math.floor((clock + 6 * MIN) / 1000));
  });

  it('makes concurrent calls wait on one fetch once the keys are too close to expiry, and none fails', async () => {
    let clock = Date.now();
    let n = 0;
    const ecs = await loopback(() => {
      n += 1;
      return containerCredentialsReply(creds(n, clock + 6 * MIN));
    });
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${ecs.url}/creds`);
    const base = createBaseCredentials({ source: defaultCredentialChain(), metrics: metrics(), now: () => clock });
    await base.provider();
    clock += 6 * MIN - 5_000; // 5 s left
    const all = await Promise.all(Array.from({ length: 50 }, () => base.provider()));
    expect(all.every((c) => c.accessKeyId === 'ASIACHAIN2')).toBe(true);
    expect(ecs.requests).toHaveLength(2);
  });
});
