// docker-compose.yml, checked offline: the file is valid for Compose (`docker compose config`, or
// Debian's docker-compose v1 `config`), every file it mounts or builds from exists, every variable
// it gives credvend is one .env.example documents, the profiles file passes credvend's own
// --check-config, the Prometheus configuration and its rules pass promtool, the LocalStack init
// hook creates exactly what the profiles name, and the dev token verifies with the dev issuer.
//
// What this cannot show: `docker compose up` itself. No image registry is reachable here, so the
// LocalStack and Prometheus images cannot be pulled; the credvend image is built and run by
// image.test.ts instead.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jwtVerify } from 'jose';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '../helpers/e2e.js';

const SUITE = 'packaging/compose';
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: { context: string; args?: Record<string, string> };
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, Service> };
const credvend = compose.services.credvend!;

/** The Compose CLI here: v2 (`docker compose`) where the plugin exists, else Debian's v1. */
function composeCli(): string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    if (spawnSync(cmd[0]!, [...cmd.slice(1), 'version'], { stdio: 'ignore', timeout: 20_000 }).status === 0) return cmd;
  }
  return undefined;
}

function hostPath(volume: string): string | undefined {
  const src = volume.split(':')[0]!;
  return src.startsWith('.') || src.startsWith('/') ? resolve(ROOT, src) : undefined;
}

describe('docker-compose.yml', () => {
  it('is valid Compose: credvend, LocalStack and Prometheus, with the LocalStack init hook', (ctx) => {
    const cli = composeCli();
    if (!cli) {
      console.log(`SKIPPED ${SUITE}: no Compose CLI (docker compose or docker-compose: scripts/install-test-deps.sh)`);
      return ctx.skip();
    }
    const r = spawnSync(cli[0]!, [...cli.slice(1), '-f', COMPOSE_FILE, 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    expect(r.status, r.stderr).toBe(0);
    const resolved = parse(r.stdout) as { services: Record<string, Service> };
    expect(Object.keys(resolved.services).sort()).toEqual(['credvend', 'localstack', 'prometheus']);
    expect(resolved.services.credvend!.build?.args?.NODE_IMAGE).toBe('node:22-bookworm-slim');
    expect(JSON.stringify(resolved.services.credvend!.depends_on)).toContain('service_healthy');
    expect(compose.services.localstack!.volumes!.some((v) => v.includes(':/etc/localstack/init/ready.d/'))).toBe(true);
  });

  it('mounts and builds only files that exist; runs credvend read-only without capabilities', () => {
    const paths = Object.values(compose.services).flatMap((s) =>
      (s.volumes ?? []).map(hostPath).filter((p): p is string => !!p),
    );
    paths.push(resolve(ROOT, credvend.build!.context), join(ROOT, 'Dockerfile'));
    expect(paths.filter((p) => !existsSync(p))).toEqual([]);
    expect(credvend.read_only).toBe(true);
    expect(credvend.cap_drop).toEqual(['ALL']);
    expect(credvend.security_opt).toContain('no-new-privileges:true');
    // Published on loopback only: a laptop's stack is not served to its network.
    for (const s of Object.values(compose.services)) for (const p of s.ports ?? []) expect(p).toMatch(/^127\.0\.0\.1:/);
  });

  it('gives credvend only variables that .env.example documents, and a profiles file credvend accepts', async () => {
    const documented = readFileSync(join(ROOT, '.env.example'), 'utf8');
    const env = credvend.environment!;
    expect(Object.keys(env).filter((k) => !new RegExp(`\\b${k}\\b`).test(documented))).toEqual([]);
    const mount = credvend.volumes!.find((v) => v.endsWith(':/etc/credvend/profiles.yaml:ro'))!;
    expect(env.CREDVEND_CONFIG_FILE).toBe('/etc/credvend/profiles.yaml');
    await ensureBuilt();
    const check = spawnSync(process.execPath, [join(ROOT, 'dist/server.js'), '--check-config'], {
      env: { PATH: process.env.PATH, ...env, CREDVEND_CONFIG_FILE: hostPath(mount)! },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toContain('configuration OK');
  });

  it("LocalStack's init hook creates the role, bucket (with the browser origin's CORS rule) and KMS key the profiles name", () => {
    const init = resolve(ROOT, hostPath(compose.services.localstack!.volumes![0]!)!);
    expect(spawnSync('bash', ['-n', init]).status).toBe(0);
    const script = readFileSync(init, 'utf8');
    const profiles = parse(readFileSync(join(ROOT, 'scripts/docker/compose/profiles.yaml'), 'utf8')) as {
      profiles: Record<string, { roleArn: string; bucket: string; kmsKeyId?: string }>;
    };
    for (const p of Object.values(profiles.profiles)) {
      expect(script).toContain(`ROLE=${p.roleArn.split('/').pop()}`);
      expect(script).toContain(`BUCKET=${p.bucket}`);
      expect(script).toContain(`ALIAS=${p.kmsKeyId}`);
    }
    for (const step of [
      'iam create-role',
      's3api create-bucket',
      's3api put-bucket-cors',
      'kms create-key',
      'kms create-alias',
    ])
      expect(script).toContain(step);
    expect(script).toContain(`ORIGIN=${credvend.environment!.CREDVEND_CORS_ORIGINS}`);
  });

  it("Prometheus' configuration and the mounted alert rules pass promtool; it scrapes credvend's admin port", (ctx) => {
    if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status !== 0) {
      console.log(
        `SKIPPED ${SUITE} (promtool): promtool is not installed (Debian package prometheus: scripts/install-test-deps.sh)`,
      );
      return ctx.skip();
    }
    const vols = compose.services.prometheus!.volumes!;
    const config = hostPath(vols.find((v) => v.endsWith(':/etc/prometheus/prometheus.yml:ro'))!)!;
    const rules = hostPath(vols.find((v) => v.endsWith(':/etc/prometheus/alerts.yml:ro'))!)!;
    expect(rules).toBe(join(ROOT, 'ops/prometheus/alerts.yml'));
    // Laid out as inside the container: the rule file beside the configuration.
    const d = mkdtempSync(join(tmpdir(), 'cv-prom-'));
    try {
      copyFileSync(config, join(d, 'prometheus.yml'));
      copyFileSync(rules, join(d, 'alerts.yml'));
      const r = spawnSync('promtool', ['check', 'config', join(d, 'prometheus.yml')], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
    const prom = parse(readFileSync(config, 'utf8')) as {
      scrape_configs: { static_configs: { targets: string[] }[]; metrics_path: string }[];
    };
    expect(prom.scrape_configs[0]!.static_configs[0]!.targets).toEqual(['credvend:9090']); // CREDVEND_ADMIN_PORT's default
    expect(prom.scrape_configs[0]!.metrics_path).toBe('/metrics');
  });

  it('the dev token script mints a token the dev issuer verifies (issuer, audience, HS256)', async () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/docker/compose/dev-token.mjs'), 'alice', '5'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const profiles = parse(readFileSync(join(ROOT, 'scripts/docker/compose/profiles.yaml'), 'utf8')) as {
      issuers: { issuer: string; audiences: string[]; hmacSecret: string }[];
    };
    const dev = profiles.issuers[0]!;
    const { payload, protectedHeader } = await jwtVerify(r.stdout.trim(), new TextEncoder().encode(dev.hmacSecret), {
      issuer: dev.issuer,
      audience: dev.audiences[0]!,
      algorithms: ['HS256'],
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.sub).toBe('alice');
  });
});
