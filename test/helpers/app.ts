// Test harness: a real buildApp() with a mocked STS client (aws-sdk-client-mock), an in-memory
// audit log and app log, and a test JWT issuer whose key the config trusts as a PEM.
import type { Redis } from 'ioredis';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import type { FastifyInstance } from 'fastify';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import pino from 'pino';
import { buildApp } from '../../src/app.js';
import { createAuditLog } from '../../src/audit/audit.js';
import { streamSink, type AuditSink } from '../../src/audit/sink.js';
import { loadConfig, withProfiles, type Config } from '../../src/config/load.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createReadiness, type Readiness } from '../../src/readiness.js';
import type { StsClient } from '../../src/sts/http-client.js';
import { createSts, type Sts } from '../../src/sts/sts.js';
import type { GrantReuse } from '../../src/sts/reuse.js';

export const ISSUER = 'https://gitlab.example.com';
export const AUDIENCE = 'credvend';
export const ROLE_ARN = 'arn:aws:iam::123456789012:role/credvend-uploads';

export class LineSink extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) this.lines.push(l);
    cb();
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

// Every secret this process issued or used (session tokens, secret keys, JWTs), and every log
// line written. When CREDVEND_TEST_CAPTURE_DIR is set (npm test), each harness writes both there
// on close, and test/scan/secret-scan.test.ts checks afterwards that no line holds any secret.
export const allSecretsSeen = new Set<string>();

function capture(lines: string[]): void {
  const dir = process.env.CREDVEND_TEST_CAPTURE_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${process.pid}-${randomUUID()}.json`),
    JSON.stringify({ secrets: [...allSecretsSeen], lines }),
  );
}

export function baseProfiles(): Record<string, unknown> {
  return {
    uploads: {
      roleArn: ROLE_ARN,
      bucket: 'tenant-bucket',
      region: 'eu-west-1',
      prefix: 'uploads/{sub}/',
      operations: ['upload', 'download'],
      maxKeys: 5,
      allowPrefixGrants: false,
      defaultDurationSeconds: 900,
      maxDurationSeconds: 1800,
      match: { iss: ISSUER, aud: AUDIENCE },
    },
    ci: {
      roleArn: 'arn:aws:iam::123456789012:role/ci-prod',
      bucket: 'ci-artifacts',
      region: 'eu-west-1',
      prefix: 'ci/{project_path}/',
      operations: ['upload'],
      allowPrefixGrants: true,
      maxDurationSeconds: 7200,
      sessionPolicyArns: [
        'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess',
        'arn:aws:iam::123456789012:policy/ci/boundary',
      ],
      sessionTags: { project: '{project_path}', env: '{environment}' },
      transitiveTagKeys: ['project'],
      externalId: 'credvend-ci',
      match: {
        iss: ISSUER,
        claims: { project_path: 'group/*', ref_protected: 'true', environment: ['production', 'staging'] },
      },
    },
    kms: {
      roleArn: ROLE_ARN,
      bucket: 'secure-bucket',
      region: 'eu-west-1',
      prefix: 'in/{sub}/',
      kmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      match: { iss: ISSUER },
    },
  };
}

export interface Harness {
  app: FastifyInstance;
  sts: ReturnType<typeof mockClient>;
  audit: LineSink;
  log: LineSink;
  metrics: Metrics;
  readiness: Readiness;
  config: Config;
  token(
    claims?: JWTPayload,
    opts?: { alg?: string; key?: CryptoKey; expiresIn?: string | number; issuer?: string; audience?: string },
  ): Promise<string>;
  close(): Promise<void>;
}

let keyPair: Promise<{ publicKey: CryptoKey; privateKey: CryptoKey }> | undefined;
export function testKeys() {
  keyPair ??= generateKeyPair('RS256', { extractable: true });
  return keyPair;
}

export async function sign(
  claims: JWTPayload,
  key: CryptoKey,
  opts: { alg?: string; expiresIn?: string | number; issuer?: string; audience?: string; kid?: string } = {},
): Promise<string> {
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuedAt();
  if (opts.issuer !== '') jwt = jwt.setIssuer(opts.issuer ?? ISSUER);
  if (opts.audience !== '') jwt = jwt.setAudience(opts.audience ?? AUDIENCE);
  if (opts.expiresIn !== -1) jwt = jwt.setExpirationTime(opts.expiresIn ?? '5m');
  const token = await jwt.sign(key);
  allSecretsSeen.add(token);
  return token;
}

let counter = 0;
function fakeCredentials() {
  counter += 1;
  const n = String(counter).padStart(6, '0');
  const c = {
    AccessKeyId: `ASIATESTKEY${n}XYZ`,
    SecretAccessKey: `secret/${n}+Zm9vYmFyYmF6cXV4cXV1eHF1dXgxMjM0NTY3`,
    SessionToken: `IQoJb3JpZ2luX2VjToken${n}Zm9vYmFyYmF6cXV4cXV1eHF1dXgxMjM0NTY3ODkw`,
    Expiration: new Date(Date.now() + 900_000),
  };
  allSecretsSeen.add(c.SecretAccessKey);
  allSecretsSeen.add(c.SessionToken);
  return c;
}

export interface HarnessOptions {
  profiles?: Record<string, unknown>;
  env?: Record<string, string>;
  issuers?: unknown[];
  rateLimitRedis?: Redis;
  /** Where audit lines go (default: the harness's LineSink). */
  auditSink?: AuditSink;
  /** Wraps the Sts adapter over the mocked STS client (admission control, faults). */
  wrapSts?: (sts: Sts) => Sts;
  /** The app's clock (token checks, grant reuse expiry); Date.now when not given. */
  now?: () => number;
  /** The app's grant reuse cache (to look inside it); buildApp's own when not given. */
  grants?: GrantReuse;
}

export async function buildHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const { publicKey, privateKey } = await testKeys();
  const pem = await exportSPKI(publicKey);
  const file = {
    issuers: opts.issuers ?? [{ issuer: ISSUER, audiences: [AUDIENCE], publicKey: pem, algorithms: ['RS256'] }],
    profiles: opts.profiles ?? baseProfiles(),
  };
  const loaded = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.json', CREDVEND_RATE_LIMIT_MAX: '0', ...opts.env }, () =>
    JSON.stringify(file),
  );
  // What the start-up KMS resolution does for a key given by ARN (tested on its own).
  const config = withProfiles(
    loaded,
    [...loaded.profiles.values()].map((p) => (p.kmsKeyId ? { ...p, kmsKeyArn: p.kmsKeyId } : p)),
  );
  const client = new STSClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDBASE', secretAccessKey: 'base-secret' },
  });
  const sts = mockClient(client);
  sts.on(AssumeRoleCommand).callsFake(() => ({ Credentials: fakeCredentials(), PackedPolicySize: 12 }));
  sts
    .on(GetCallerIdentityCommand)
    .resolves({ Account: '123456789012', Arn: 'arn:aws:sts::123456789012:assumed-role/credvend-task/abc' });
  const audit = new LineSink();
  const log = new LineSink();
  const metrics = createMetrics({ version: 'test', defaultMetrics: false });
  const readiness = createReadiness('ready');
  const logger = pino({ level: 'debug' }, log);
  const auditLog = createAuditLog(opts.auditSink ?? streamSink(audit), { metrics });
  readiness.addCheck('audit_log', () => auditLog.writable()); // as server.ts wires it
  const app = await buildApp({
    config,
    sts: (opts.wrapSts ?? ((i) => i))(createSts(sdkStsClient(client))),
    audit: auditLog,
    metrics,
    logger,
    readiness,
    now: opts.now ?? Date.now,
    ...(opts.grants ? { grants: opts.grants } : {}),
    ...(opts.rateLimitRedis ? { rateLimitRedis: opts.rateLimitRedis } : {}),
  });
  await app.ready();
  return {
    app,
    sts,
    audit,
    log,
    metrics,
    readiness,
    config,
    token: (claims = { sub: 'alice' }, o = {}) => sign(claims, o.key ?? privateKey, o),
    async close() {
      await app.close();
      await auditLog.close();
      capture([...audit.lines, ...log.lines]);
      sts.restore();
    },
  };
}

/**
 * A (mocked) SDK STSClient as the StsClient src/sts/sts.ts calls: the app suites fake STS answers
 * and read the AssumeRole inputs with aws-sdk-client-mock, in the SDK's own names.
 */
export function sdkStsClient(client: STSClient): StsClient {
  return {
    assumeRole: (input, signal) => client.send(new AssumeRoleCommand(input), signal ? { abortSignal: signal } : {}),
    getCallerIdentity: (signal) => client.send(new GetCallerIdentityCommand({}), signal ? { abortSignal: signal } : {}),
    destroy: () => client.destroy(),
  };
}
