// A private Docker engine for the packaging suite, started and stopped by the test itself.
//
// Never the machine's default engine, never its default networking: dockerd runs with its own
// --data-root, --exec-root, --pidfile and unix socket, and with --bridge=none --iptables=false
// --ip-forward=false --ip-masq=false, so it creates no docker0 bridge, leaves the iptables
// FORWARD policy and net.ipv4.ip_forward as they were, and containers run with --network host
// (loopback) or none. `hostState()` is read before the start and after the stop; the suite
// asserts they are equal. Stopped by its own PID (SIGTERM, then SIGKILL after a bound).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, run, sleep, type RunResult } from '../helpers/e2e.js';

export interface HostState {
  readonly docker0: boolean;
  readonly ipForward: string;
  readonly forwardPolicy: string;
}

export function hostState(): HostState {
  const docker0 = existsSync('/sys/class/net/docker0');
  const ipForward = existsSync('/proc/sys/net/ipv4/ip_forward')
    ? readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()
    : 'n/a';
  const ipt = spawnSync('iptables', ['-S', 'FORWARD'], { encoding: 'utf8', timeout: 10_000 });
  const forwardPolicy =
    ipt.status === 0 ? (ipt.stdout.split('\n').find((l) => l.startsWith('-P FORWARD')) ?? '') : 'n/a';
  return { docker0, ipForward, forwardPolicy };
}

export interface Engine {
  readonly host: string;
  readonly pid: number;
  readonly docker: string;
  /** Runs the docker CLI against this engine. */
  cli(args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  stop(): Promise<void>;
}

/** Unmounts every mount point under `roots` (deepest first); lazily when a plain umount fails. */
export function unmountUnder(roots: readonly string[]): void {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => roots.some((r) => p === r || p.startsWith(`${r}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    if (spawnSync('umount', [p], { stdio: 'ignore', timeout: 10_000 }).status !== 0)
      spawnSync('umount', ['-l', p], { stdio: 'ignore', timeout: 10_000 });
  }
}

/** Why no engine can be started here, or undefined when one can be tried. */
export function engineUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  if (spawnSync('dockerd', ['--version'], { stdio: 'ignore' }).status !== 0)
    return 'dockerd is not installed (Debian package docker.io: scripts/install-test-deps.sh)';
  return undefined;
}

/** The CLI that matches Debian's dockerd when it is there (/usr/bin/docker), else `docker` on PATH. */
function dockerCli(): string {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

/**
 * Starts dockerd and waits at most `timeoutMs` for it to answer `docker info`. Throws with the
 * daemon's last log lines when it cannot (the suite turns that into one SKIPPED line).
 */
export async function startEngine(opts: { dataRoot: string; timeoutMs?: number }): Promise<Engine> {
  // exec-root and the socket live under a short /tmp path: containerd's and runc's unix sockets
  // are limited to 107 bytes.
  const run_ = mkdtempSync(join(tmpdir(), 'cvd-'));
  mkdirSync(opts.dataRoot, { recursive: true });
  const sock = join(run_, 'docker.sock');
  const host = `unix://${sock}`;
  const logFile = join(run_, 'dockerd.log');
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--data-root',
      opts.dataRoot,
      '--exec-root',
      join(run_, 'exec'),
      '--pidfile',
      join(run_, 'dockerd.pid'),
      '-H',
      host,
      '--bridge=none',
      '--iptables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--userland-proxy=false',
    ],
    { stdio: ['ignore', log, log], detached: false },
  );
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('dockerd did not start');
  let exited = false;
  const gone = new Promise<void>((r) => child.on('exit', () => ((exited = true), r())));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const docker = dockerCli();
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: join(run_, 'cli') };
  const cli = (args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) =>
    run(docker, args, { env: { ...env, ...o.env }, timeoutMs: o.timeoutMs ?? 120_000, cwd: ROOT });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    // dockerd leaves its default netns bind mount (exec-root/netns/default) and, after a SIGKILL,
    // overlay mounts under the data root: unmount what is ours before removing it.
    unmountUnder([run_, opts.dataRoot]);
    rmSync(run_, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
      await stop();
      throw new Error(`dockerd exited at start: ${tail}`);
    }
    const info = await cli(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 5_000 }).catch(() => undefined);
    if (info?.code === 0) break;
    if (Date.now() > deadline) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
      await stop();
      throw new Error(`dockerd did not answer within ${opts.timeoutMs ?? 30_000} ms: ${tail}`);
    }
    await sleep(250);
  }
  return { host, pid, docker, cli, stop };
}
