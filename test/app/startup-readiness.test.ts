// /readyz during start-up, driven the way server.ts drives it: the admin listener is up first and
// answers 503 while the checks run; it turns 200 only after they passed, and stays 503 if they
// failed. A load balancer or kubelet must never route traffic to an instance whose service
// identity or KMS keys were not checked.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAdminApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { KeyDescriber, KeyFacts } from '../../src/kms/resolve.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createReadiness } from '../../src/readiness.js';
import { runStartupChecks } from '../../src/startup.js';
import { createBaseCredentials } from '../../src/sts/base-credentials.js';
import type { Sts } from '../../src/sts/sts.js';
import { buildHarness } from '../helpers/app.js';

const ACCT = '123456789012';
const KEY_ARN = `arn:aws:kms:eu-west-1:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const silent = pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));

function deps(accessKeyId: string) {
  const config = loadConfig({ CREDVEND_CONFIG_FILE: 'p.json' }, () =>
    JSON.stringify({
      issuers: [
        { issuer: 'https://idp.example.com', audiences: ['credvend'], jwksUri: 'https://idp.example.com/jwks' },
      ],
      profiles: {
        kms: {
          roleArn: `arn:aws:iam::${ACCT}:role/r`,
          bucket: 'secure-bucket',
          region: 'eu-west-1',
          kmsKeyId: 'alias/uploads',
          match: {},
        },
      },
    }),
  );
  const metrics = createMetrics({ version: 'test', defaultMetrics: false });
  const sts: Sts = {
    assumeRole: () => Promise.reject(new Error('not used')),
    serviceIdentity: async () => ({ account: ACCT, arn: `arn:aws:sts::${ACCT}:assumed-role/credvend-task/abc` }),
  };
  const baseCredentials = createBaseCredentials({
    source: async () => ({
      accessKeyId,
      secretAccessKey: 's',
      sessionToken: 't',
      expiration: new Date(Date.now() + 3_600_000),
    }),
    metrics,
  });
  // DescribeKey is held open until the test releases it: the checks are "in flight" meanwhile.
  let release: (f: KeyFacts) => void = () => undefined;
  const held = new Promise<KeyFacts>((r) => {
    release = r;
  });
  const kms: KeyDescriber = { describe: () => held };
  return { config, metrics, sts, baseCredentials, kms, release };
}

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function admin(d: ReturnType<typeof deps>) {
  const readiness = createReadiness('starting', (s) => d.metrics.ready.set(s === 'ready' ? 1 : 0));
  const app = await buildAdminApp({ metrics: d.metrics, logger: silent, readiness, withMetrics: true });
  apps.push(app);
  return { app, readiness };
}

describe('/readyz during start-up', () => {
  it('answers 503 while the checks run and 200 once they passed', async () => {
    // Prepare
    const d = deps('ASIATASKROLE');
    const { app, readiness } = await admin(d);
    // Act: start the checks (as server.ts does after the admin listener is up).
    const checks = runStartupChecks({
      config: d.config,
      sts: d.sts,
      baseCredentials: d.baseCredentials,
      kms: d.kms,
      logger: silent,
    });
    // Assess: not ready while DescribeKey is outstanding, but alive.
    const during = await app.inject({ method: 'GET', url: '/readyz' });
    expect(during.statusCode).toBe(503);
    expect(during.json()).toEqual({ status: 'starting' });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toContain('credvend_ready 0');

    d.release({ arn: KEY_ARN, keyState: 'Enabled', keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT' });
    const checked = await checks;
    readiness.set('ready');

    const after = await app.inject({ method: 'GET', url: '/readyz' });
    expect(after.statusCode).toBe(200);
    expect(after.json()).toEqual({ status: 'ready' });
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toContain('credvend_ready 1');
    expect(checked.config.profiles.get('kms')?.kmsKeyArn).toBe(KEY_ARN);
  });

  it('stays 503 when the checks fail (a disabled key), never turning ready', async () => {
    const d = deps('ASIATASKROLE');
    const { app, readiness } = await admin(d);
    const checks = runStartupChecks({
      config: d.config,
      sts: d.sts,
      baseCredentials: d.baseCredentials,
      kms: d.kms,
      logger: silent,
    });
    d.release({ arn: KEY_ARN, keyState: 'Disabled', keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT' });
    await expect(checks).rejects.toThrow(/is Disabled, not Enabled/);
    readiness.set('failed');
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'failed' });
  });

  it('stays 503 when the service runs on IAM user keys: a leaked long-lived key would keep working after the task is gone', async () => {
    const d = deps('AKIAIOSFODNN7EXAMPLE');
    const { app } = await admin(d);
    const checks = runStartupChecks({
      config: d.config,
      sts: d.sts,
      baseCredentials: d.baseCredentials,
      kms: d.kms,
      logger: silent,
    });
    d.release({ arn: KEY_ARN, keyState: 'Enabled', keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT' });
    await expect(checks).rejects.toThrow(/IAM user credentials/);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  });
});

describe('the API before the checks passed', () => {
  it('refuses to vend with 503 CV_NOT_READY: nothing is issued from an unchecked configuration', async () => {
    const h = await buildHarness();
    apps.push(h);
    h.readiness.set('starting');
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${await h.token()}` },
      payload: { profile: 'uploads', operation: 'upload', keys: ['a.txt'] },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'CV_NOT_READY' });
    expect(h.sts.calls()).toHaveLength(0);
  });
});
