// The BUILT service (`node dist/server.js`) as its own process, with loopback listeners and the
// environment an operator would give it, against one of two upstreams:
// - `rgw`: a real S3 + STS server (Ceph RGW, test/helpers/e2e.ts) with static base credentials,
//   in S3-compatible mode (the e2e and browser suites);
// - `sts` + `container`: the loopback fault stubs (test/helpers/fault-stubs.ts), in AWS mode: base
//   credentials from the container-credentials stub, STS calls to the STS stub (the fault and
//   packaging suites).
// Suites see credvend only as an operator does: HTTP, signals, logs, the audit file,
// /proc/<pid>/status.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import {
  AUDIENCE,
  cleanEnv,
  freePort,
  ISSUER,
  issuersSection,
  profilesFile,
  SERVER_ENTRY,
  sleep,
  tail,
  type Issuer,
  type Rgw,
} from './e2e.js';
import { ROLE_ARN, type ContainerStub, type StsStub } from './fault-stubs.js';

export const REGION = 'eu-west-1';
export const PROFILE = 'fault';
/** The body of every credential request of the fault suite. */
export const CREDENTIAL_REQUEST = { profile: PROFILE, operation: 'upload', keys: ['report.csv'] } as const;

/** Where the service's S3 and STS calls go: RGW, or the fault stubs (AWS mode). */
type Upstream =
  { readonly rgw: Rgw } | { readonly sts: Pick<StsStub, 'url'>; readonly container: Pick<ContainerStub, 'url'> };

export type ServiceOptions = Upstream & {
  /** Parent directory; the service gets `<dir>/<name>/` for its config and logs. */
  readonly dir: string;
  readonly name: string;
  readonly issuer: Pick<Issuer, 'jwksUri'>;
  /** The profiles file, written as YAML; by default profilesFile (RGW) or profilesDocument (stubs). */
  readonly profiles?: Record<string, unknown>;
  /** Extra environment (CREDVEND_* settings under test); wins over the defaults below. */
  readonly env?: Record<string, string>;
};

export interface Service {
  readonly url: string;
  readonly adminUrl: string;
  readonly pid: number;
  readonly stdoutFile: string;
  readonly stderrFile: string;
  readonly auditFile: string;
  /** stdout, stderr and the audit file: where no secret may ever appear. */
  readonly logFiles: readonly string[];
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  readonly exited: Promise<number | string | null>;
  running(): boolean;
  signal(sig: NodeJS.Signals): void;
  /** Peak resident set size so far (VmHWM), in MiB. */
  peakRssMiB(): number;
  /** The audit file's records; `partial` counts lines that are not complete JSON. */
  audit(): { records: Record<string, unknown>[]; partial: number };
  /** The audit file's records; throws when a line is not complete JSON. */
  auditRecords(): Record<string, unknown>[];
  /** Polls the audit file (written asynchronously) for a record matching `pred`. */
  waitForAudit(pred: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Polls until the audit file stops growing (records are written asynchronously before deliverable 4). */
  settledAudit(quietMs?: number, timeoutMs?: number): Promise<{ records: Record<string, unknown>[]; partial: number }>;
  /** SIGTERM, then SIGKILL after `killAfterMs`; resolves with the exit code (or the signal's name). */
  stop(killAfterMs?: number): Promise<number | string | null>;
}

/** The fault suite's profiles file: one profile, `fault`, for the STS stub's role. */
export function profilesDocument(issuer: Pick<Issuer, 'jwksUri'>): Record<string, unknown> {
  return {
    issuers: issuersSection(issuer),
    profiles: {
      [PROFILE]: {
        roleArn: ROLE_ARN,
        bucket: 'fault-bucket',
        region: REGION,
        prefix: 'uploads/{sub}/',
        operations: ['upload', 'download'],
        match: { iss: ISSUER, aud: AUDIENCE },
      },
    },
  };
}

function upstreamEnv(upstream: Upstream): Record<string, string> {
  if ('rgw' in upstream) {
    const { rgw } = upstream;
    return {
      CREDVEND_STS_ENDPOINT: rgw.endpoint,
      CREDVEND_S3_COMPATIBLE: 'true',
      CREDVEND_S3_ENDPOINT: rgw.endpoint,
      CREDVEND_S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: rgw.region,
      AWS_ACCESS_KEY_ID: rgw.accessKeyId,
      AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    };
  }
  return {
    CREDVEND_STS_ENDPOINT: upstream.sts.url,
    AWS_REGION: REGION,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: upstream.container.url,
  };
}

/** Starts the service in `<dir>/<name>/` and resolves once its /readyz answers 200 (30 s at the most). */
export async function startService(opts: ServiceOptions): Promise<Service> {
  const dir = join(opts.dir, opts.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'profiles.yaml');
  const profiles =
    opts.profiles ?? ('rgw' in opts ? profilesFile(opts.rgw, opts.issuer) : profilesDocument(opts.issuer));
  writeFileSync(configFile, toYaml(profiles));
  const [port, adminPort] = [await freePort(), await freePort()];
  const env = cleanEnv({
    CREDVEND_CONFIG_FILE: configFile,
    CREDVEND_HOST: '127.0.0.1',
    CREDVEND_PORT: String(port),
    CREDVEND_ADMIN_HOST: '127.0.0.1',
    CREDVEND_ADMIN_PORT: String(adminPort),
    CREDVEND_AUDIT_LOG: join(dir, 'audit.log'),
    CREDVEND_RATE_LIMIT_MAX: '0',
    ...upstreamEnv(opts),
    ...opts.env,
  });
  const stdoutFile = join(dir, 'stdout.log');
  const stderrFile = join(dir, 'stderr.log');
  const auditFile = env.CREDVEND_AUDIT_LOG ?? '';
  const logFiles = [stdoutFile, stderrFile, auditFile];
  // File descriptors, not pipes: the logs survive a SIGKILL of either process.
  const [out, err] = [openSync(stdoutFile, 'a'), openSync(stderrFile, 'a')];
  const child: ChildProcess = spawn(process.execPath, [SERVER_ENTRY], { cwd: dir, env, stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let exit: number | string | null | undefined;
  const exited = new Promise<number | string | null>((r) =>
    child.on('exit', (code, sig) => {
      process.off('exit', killOnExit);
      exit = code ?? sig;
      r(exit);
    }),
  );
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const readyBy = Date.now() + 30_000;
  for (let status = 0; status !== 200; await sleep(50)) {
    if (exit !== undefined)
      throw new Error(`credvend exited (${exit}) before it was ready:\n${logFiles.map((f) => tail(f)).join('\n')}`);
    if (Date.now() > readyBy) {
      child.kill('SIGKILL');
      throw new Error(
        `credvend not ready after 30 s (last /readyz ${status}):\n${logFiles.map((f) => tail(f)).join('\n')}`,
      );
    }
    status = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.status,
      () => 0,
    );
  }

  const audit = () => {
    const lines = existsSync(auditFile)
      ? readFileSync(auditFile, 'utf8')
          .split('\n')
          .filter((l) => l.trim())
      : [];
    const records: Record<string, unknown>[] = [];
    let partial = 0;
    for (const l of lines) {
      try {
        records.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        partial += 1;
      }
    }
    return { records, partial };
  };
  const auditRecords = () => {
    const { records, partial } = audit();
    if (partial > 0) throw new Error(`${auditFile}: ${partial} line(s) not complete JSON:\n${tail(auditFile)}`);
    return records;
  };
  const pid = child.pid ?? 0;
  let peak = 0;
  return {
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    pid,
    stdoutFile,
    stderrFile,
    auditFile,
    logFiles,
    exited,
    running: () => exit === undefined,
    signal: (sig) => void child.kill(sig),
    peakRssMiB() {
      if (exit === undefined) {
        const kb = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        peak = Math.max(peak, Number(kb ?? 0) / 1024);
      }
      return peak;
    },
    audit,
    auditRecords,
    async waitForAudit(pred, timeoutMs = 3000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = auditRecords().find(pred);
        if (hit) return hit;
        if (Date.now() > until) throw new Error(`no matching audit record in ${auditFile}:\n${tail(auditFile)}`);
        await sleep(25);
      }
    },
    async settledAudit(quietMs = 300, timeoutMs = 5_000) {
      const until = Date.now() + timeoutMs;
      let last = -1;
      for (;;) {
        const size = existsSync(auditFile) ? readFileSync(auditFile).length : 0;
        if (size === last || Date.now() > until) return audit();
        last = size;
        await sleep(quietMs);
      }
    },
    async stop(killAfterMs = 15_000) {
      if (exit !== undefined) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** GET on the admin listener: status and latency; status 0 when it did not answer in time. */
export async function adminGet(
  svc: Pick<Service, 'adminUrl'>,
  path: string,
  timeoutMs = 5_000,
): Promise<{ status: number; ms: number; text: string }> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${svc.adminUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    return { status: r.status, ms: performance.now() - t0, text };
  } catch {
    return { status: 0, ms: performance.now() - t0, text: '' };
  }
}

/** A sample's value on /metrics (the sum over its label sets), undefined when absent. */
export function metricValue(exposition: string, name: string): number | undefined {
  const values = exposition
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
}

/** Polls `probe` until it returns true or `timeoutMs` passes; resolves with the time it took (ms) or undefined. */
export async function waitFor(
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<number | undefined> {
  const t0 = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) return undefined;
    await sleep(everyMs);
  }
}
