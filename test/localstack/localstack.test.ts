// The same issuance flow against LocalStack (testcontainers), plus what Ceph RGW cannot show: a
// KMS key resolved at start-up (alias -> key ARN via DescribeKey) and an SSE-KMS upload made with
// the vended credentials. Needs a container runtime; where none runs, the suite is reported as
// skipped (never as passed) with one line saying why.
import { execFileSync } from 'node:child_process';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { createAuditLog } from '../../src/audit/audit.js';
import { streamSink } from '../../src/audit/sink.js';
import { loadConfig } from '../../src/config/load.js';
import { createKmsDescriber, kmsClientFactory } from '../../src/kms/resolve.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createReadiness } from '../../src/readiness.js';
import { runStartupChecks } from '../../src/startup.js';
import { createBaseCredentials } from '../../src/sts/base-credentials.js';
import { createStsClient, createStsIssuer } from '../../src/sts/issuer.js';
import { LineSink } from '../helpers/app.js';

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

const docker = dockerAvailable();
if (!docker) console.log('LocalStack suite: SKIPPED - no Docker engine on this machine (testcontainers needs one); run it where Docker exists');

const REGION = 'us-east-1';
const BUCKET = 'kms-bucket';
const ISSUER = 'https://issuer.localstack.test';
const base = { accessKeyId: 'test', secretAccessKey: 'test' };

describe.skipIf(!docker)('LocalStack: issuance with SSE-KMS', () => {
  let stop: (() => Promise<void>) | undefined;
  let endpoint = '';
  let keyArn = '';
  let app: Awaited<ReturnType<typeof buildApp>>;
  let token = '';

  beforeAll(async () => {
    const { LocalstackContainer } = await import('@testcontainers/localstack');
    const container = await new LocalstackContainer('localstack/localstack:3.8').withEnvironment({ SERVICES: 's3,sts,iam,kms' }).start();
    stop = async () => void (await container.stop());
    endpoint = container.getConnectionUri();

    const kms = new KMSClient({ region: REGION, endpoint, credentials: base });
    const key = await kms.send(new CreateKeyCommand({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT' }));
    keyArn = key.KeyMetadata!.Arn!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/credvend-test', TargetKeyId: key.KeyMetadata!.KeyId! }));
    const admin = new S3Client({ region: REGION, endpoint, credentials: base, forcePathStyle: true });
    await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));

    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const file = {
      issuers: [{ issuer: ISSUER, audiences: ['credvend'], publicKey: await exportSPKI(publicKey) }],
      profiles: {
        secure: { roleArn: 'arn:aws:iam::000000000000:role/credvend-kms', bucket: BUCKET, region: REGION, prefix: 'in/{sub}/', kmsKeyId: 'alias/credvend-test', match: { iss: ISSUER } },
      },
    };
    const config = loadConfig({ CREDVEND_CONFIG_FILE: 'p.json', CREDVEND_STS_ENDPOINT: endpoint, CREDVEND_KMS_ENDPOINT: endpoint, CREDVEND_RATE_LIMIT_MAX: '0' }, () => JSON.stringify(file));
    const metrics = createMetrics({ version: 'localstack', defaultMetrics: false });
    const logger = pino({ level: 'warn' }, new LineSink());
    const baseCredentials = createBaseCredentials({ source: async () => base, metrics, logger });
    const sts = createStsClient({ region: REGION, endpoint, credentials: baseCredentials.provider, requestTimeoutMs: 5000, connectTimeoutMs: 2000, maxAttempts: 2 });
    const issuer = createStsIssuer(sts);
    const describer = createKmsDescriber(kmsClientFactory({ endpoint, credentials: baseCredentials.provider, requestTimeoutMs: 5000, connectTimeoutMs: 2000, maxAttempts: 2 }));
    const checked = await runStartupChecks({ config, issuer, baseCredentials, kms: describer, logger });
    app = await buildApp({ config: checked.config, issuer, audit: createAuditLog(streamSink(new LineSink())), metrics, logger, readiness: createReadiness('ready'), now: Date.now });
    token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256' }).setIssuer(ISSUER).setAudience('credvend').setExpirationTime('5m').sign(privateKey);
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await stop?.();
  });

  it('resolves the alias to the key ARN at start-up and binds the KMS statement to it', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/credentials', headers: { authorization: `Bearer ${token}` }, payload: { profile: 'secure', operation: 'upload', keys: ['doc.bin'] } });
    expect(res.statusCode).toBe(200);
    expect(res.json().keys).toEqual(['in/alice/doc.bin']);
  });

  it('uploads with SSE-KMS using the vended credentials', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/credentials', headers: { authorization: `Bearer ${token}` }, payload: { profile: 'secure', operation: 'upload', keys: ['doc.bin'] } });
    const c = res.json();
    const s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken } });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: c.keys[0], Body: 'secret bytes', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyArn }));
    const admin = new S3Client({ region: REGION, endpoint, credentials: base, forcePathStyle: true });
    const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: c.keys[0] }));
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toContain(keyArn.split('/').pop());
  });
});
