// End-to-end harness: a real S3 + STS server (Ceph RGW on loopback, scripts/rgw/*.sh), a test
// OIDC-style issuer serving a JWKS over HTTP, and what the suites need to drive the BUILT service
// (`node dist/server.js`), which startService (test/helpers/service-process.ts) runs as its own
// process with the environment an operator would give it. Nothing here imports src/: the suite
// sees credvend only through its HTTP API, its logs and its audit file.
//
// Every secret the suite sees (JWTs, vended secret keys and session tokens, RGW's static secret)
// is recorded in `secrets`, so a test can prove that none of them reached stdout, stderr or the
// audit log.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { freePort } from './net.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ISSUER = 'https://ci.e2e.credvend.test';
export const AUDIENCE = 'credvend-e2e';
export const BUCKET = 'vend-bucket';
export const OTHER_BUCKET = 'other-bucket';

/** Every secret value the suite has seen; none may appear in any log line. */
export const secrets = new Set<string>();

export function remember(...values: (string | undefined)[]): void {
  for (const v of values) if (v) secrets.add(v);
}

// ---------------------------------------------------------------------------------------------
// Build

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The entry point under test: dist/server.js, or CREDVEND_E2E_SERVER to run the suite against
 * another build (a release artifact, a patched copy) without rebuilding.
 */
export const SERVER_ENTRY = process.env.CREDVEND_E2E_SERVER
  ? resolve(process.env.CREDVEND_E2E_SERVER)
  : join(ROOT, 'dist/server.js');

/** Builds dist/ when it is missing or older than any source file, so the suite never runs stale code. */
export async function ensureBuilt(): Promise<void> {
  if (process.env.CREDVEND_E2E_SERVER) return;
  const server = join(ROOT, 'dist/server.js');
  const inputs = Math.max(
    newestMtime(join(ROOT, 'src')),
    ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  if (existsSync(server) && statSync(server).mtimeMs >= inputs) return;
  const r = await run('npm', ['run', 'build', '--silent'], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`npm run build failed (exit ${r.code}):\n${r.stdout}${r.stderr}`.slice(0, 4000));
}

// ---------------------------------------------------------------------------------------------
// Processes and ports

export { freePort };

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (asynchronously, so the issuer's HTTP server keeps serving). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * The environment for child processes: PATH and HOME only, plus what the caller adds. No AWS_*
 * variable of the developer's shell may leak into a process whose credentials we are testing.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  if (process.env.HOME) env.HOME = process.env.HOME;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Ceph RGW

export interface Rgw {
  readonly base: string;
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly roleArn: string;
  stop(): Promise<void>;
}

/** Starts a throwaway RGW (S3 + STS) in `<dir>/rgw`; about 5 s. */
export async function startRgw(dir: string, buckets: string[] = [BUCKET, OTHER_BUCKET]): Promise<Rgw> {
  const base = join(dir, 'rgw');
  const env = { ...process.env, RGW_BASE: base, RGW_BUCKETS: buckets.join(',') };
  const r = await run('bash', [join(ROOT, 'scripts/rgw/start.sh')], { env, timeoutMs: 150_000 });
  if (r.code !== 0) throw new Error(`scripts/rgw/start.sh failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  const vars = Object.fromEntries(
    readFileSync(join(base, 'rgw.env'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const need = (k: string): string => {
    const v = vars[k];
    if (!v) throw new Error(`rgw.env has no ${k}`);
    return v;
  };
  remember(need('RGW_SECRET_KEY'));
  let stopped = false;
  // Last resort if the test process exits without afterAll (a crash, process.exit): no daemons left behind.
  const onExit = () => {
    if (!stopped)
      spawnSync('bash', [join(ROOT, 'scripts/rgw/stop.sh')], {
        env: { ...process.env, RGW_BASE: base, RGW_CLEAN: '1' },
        stdio: 'ignore',
        timeout: 30_000,
      });
  };
  process.once('exit', onExit);
  return {
    base,
    endpoint: need('RGW_ENDPOINT'),
    region: need('RGW_REGION'),
    accessKeyId: need('RGW_ACCESS_KEY'),
    secretAccessKey: need('RGW_SECRET_KEY'),
    roleArn: need('RGW_ROLE_ARN'),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      await run('bash', [join(ROOT, 'scripts/rgw/stop.sh')], {
        env: { ...process.env, RGW_BASE: base, RGW_CLEAN: '1' },
        timeoutMs: 60_000,
      });
    },
  };
}

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** An S3 client as RGW needs it: path-style, no default checksums (RGW 16 rejects the trailers). */
export function s3Client(rgw: Rgw, credentials: S3Credentials): S3Client {
  return new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    credentials,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

// ---------------------------------------------------------------------------------------------
// Test JWT issuer

export interface Issuer {
  readonly url: string;
  readonly jwksUri: string;
  /** Signs with the current key (RS256, with kid). */
  sign(
    claims: JWTPayload,
    opts?: { expiresIn?: string | number; audience?: string; issuer?: string; kid?: string; key?: CryptoKey },
  ): Promise<string>;
  /** Adds a signing key to the JWKS and returns its kid. */
  addKey(): Promise<string>;
  /** A private key the JWKS does not know (forged tokens). */
  strangerKey(): Promise<CryptoKey>;
  /** Holds every JWKS response until the returned release() is called; resolves `requested` on the first request. */
  holdJwks(): { requested: Promise<void>; release: () => void };
  jwksRequests(): number;
  close(): Promise<void>;
}

export async function startIssuer(): Promise<Issuer> {
  const keys = new Map<string, { privateKey: CryptoKey; jwk: JWK }>();
  let currentKid = '';
  let requests = 0;
  let hold: { gate: Promise<void>; onRequest: () => void } | undefined;

  const addKey = async (): Promise<string> => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = `e2e-${keys.size + 1}`;
    keys.set(kid, { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } });
    currentKid = kid;
    return kid;
  };
  await addKey();

  const server: Server = createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    requests += 1;
    const answer = () => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: [...keys.values()].map((k) => k.jwk) }));
    };
    if (hold) {
      hold.onRequest();
      void hold.gate.then(answer);
    } else {
      answer();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('issuer did not bind');
  const url = `http://127.0.0.1:${addr.port}`;

  return {
    url,
    jwksUri: `${url}/jwks.json`,
    async sign(claims, opts = {}) {
      const kid = opts.kid ?? currentKid;
      const key = opts.key ?? keys.get(kid)?.privateKey;
      if (!key) throw new Error(`no key ${kid}`);
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuedAt()
        .setIssuer(opts.issuer ?? ISSUER)
        .setAudience(opts.audience ?? AUDIENCE)
        .setExpirationTime(opts.expiresIn ?? '10m')
        .sign(key);
      remember(token);
      return token;
    },
    addKey,
    async strangerKey() {
      return (await generateKeyPair('RS256')).privateKey;
    },
    holdJwks() {
      let release!: () => void;
      let onRequest!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const requested = new Promise<void>((r) => (onRequest = r));
      hold = { gate, onRequest };
      return {
        requested,
        release: () => {
          hold = undefined;
          release();
        },
      };
    },
    jwksRequests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// credvend's profiles file (the service itself: startService, test/helpers/service-process.ts)

/** The `issuers` section for the test issuer. */
export function issuersSection(issuer: Pick<Issuer, 'jwksUri'>): Record<string, unknown>[] {
  return [{ issuer: ISSUER, audiences: [AUDIENCE], jwksUri: issuer.jwksUri, algorithms: ['RS256'] }];
}

/** The profiles file of the suite: YAML, as an operator would write it. */
export function profilesFile(
  rgw: Pick<Rgw, 'region' | 'roleArn'>,
  issuer: Pick<Issuer, 'jwksUri'>,
): Record<string, unknown> {
  const common = { bucket: BUCKET, region: rgw.region };
  return {
    issuers: issuersSection(issuer),
    profiles: {
      uploads: {
        description: 'per-subject uploads and downloads',
        roleArn: rgw.roleArn,
        ...common,
        prefix: 'uploads/{sub}/',
        operations: ['upload', 'download'],
        maxKeys: 10,
        match: { iss: ISSUER, aud: AUDIENCE },
      },
      'team-a': {
        roleArn: rgw.roleArn,
        ...common,
        prefix: 'teams/a/',
        operations: ['upload'],
        match: { iss: ISSUER, claims: { team: 'a' } },
      },
      'missing-role': {
        roleArn: 'arn:aws:iam::123456789012:role/DoesNotExist',
        ...common,
        prefix: 'missing/{sub}/',
        match: { iss: ISSUER },
      },
      // Presigned mode: URLs signed from a cached session; `capped` uploads through size-capped POST forms.
      drop: {
        roleArn: rgw.roleArn,
        ...common,
        prefix: 'drop/{sub}/',
        delivery: 'presigned',
        match: { iss: ISSUER, aud: AUDIENCE },
      },
      capped: {
        roleArn: rgw.roleArn,
        ...common,
        prefix: 'capped/{sub}/',
        delivery: 'presigned',
        maxObjectBytes: 1024,
        match: { iss: ISSUER, aud: AUDIENCE },
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

export interface VendResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed JSON body (undefined for non-JSON bodies). */
  readonly body: Record<string, unknown> | undefined;
}

export async function vendRaw(
  svc: { readonly url: string },
  token: string | undefined,
  body: unknown,
  format?: 'json' | 'process' | 'env',
): Promise<VendResponse> {
  const res = await fetch(`${svc.url}/v1/credentials${format ? `?format=${format}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = undefined;
  }
  if (parsed)
    remember(
      str(parsed.secretAccessKey),
      str(parsed.sessionToken),
      str(parsed.SecretAccessKey),
      str(parsed.SessionToken),
    );
  return { status: res.status, headers: res.headers, text, body: parsed };
}

export interface Vended {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: string;
  readonly bucket: string;
  readonly region: string;
  readonly keys?: string[];
  readonly requestId: string;
  readonly issuedAt: number;
}

/** POST /v1/credentials that must succeed; returns the JSON body. */
export async function vend(
  svc: { readonly url: string },
  token: string,
  body: Record<string, unknown>,
): Promise<Vended> {
  const issuedAt = Date.now();
  const r = await vendRaw(svc, token, body);
  if (r.status !== 200 || !r.body)
    throw new Error(`expected 200 from /v1/credentials, got ${r.status}: ${r.text.slice(0, 500)}`);
  return { ...(r.body as unknown as Vended), issuedAt };
}

export const credsOf = (v: Pick<Vended, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>): S3Credentials => ({
  accessKeyId: v.accessKeyId,
  secretAccessKey: v.secretAccessKey,
  sessionToken: v.sessionToken,
});

// ---------------------------------------------------------------------------------------------
// Small utilities

export function tempRoot(prefix = 'cv-e2e-'): string {
  // Short: Ceph's admin sockets live under it and unix socket paths are limited to 107 bytes.
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeTempRoot(dir: string): void {
  if (process.env.CREDVEND_E2E_KEEP === '1') {
    process.stderr.write(`e2e: keeping ${dir} (CREDVEND_E2E_KEEP=1)\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return `(${file}: missing)`;
  return `--- ${file}\n${readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')}`;
}

/** Every secret found in `files`, with where it was found; an empty list is the expected result. */
export function findSecrets(files: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    for (const s of secrets) {
      // The whole value, and a middle slice of long ones: a truncated token in a log is a leak too.
      const probes = s.length >= 48 ? [s, s.slice(Math.floor(s.length / 2) - 12, Math.floor(s.length / 2) + 12)] : [s];
      if (probes.some((p) => text.includes(p)))
        leaks.push(`${f}: contains a secret starting ${JSON.stringify(s.slice(0, 6))}`);
    }
  }
  return leaks;
}
