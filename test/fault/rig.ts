// What every fault test starts from: the two upstream stubs, a JWT issuer (loopback JWKS), a
// caller's token, and services started against them; close() stops all of it (by PID).
import { readFileSync, existsSync } from 'node:fs';
import {
  ensureBuilt,
  findSecrets,
  remember,
  removeTempRoot,
  startIssuer,
  tempRoot,
  type Issuer,
} from '../helpers/e2e.js';
import {
  SECRET_MARKERS,
  startContainerStub,
  startStsStub,
  type ContainerStub,
  type StsStub,
} from '../helpers/fault-stubs.js';
import { startService, type Service } from '../helpers/service-process.js';
import type { Outcome } from './load.js';

export interface Rig {
  readonly dir: string;
  readonly issuer: Issuer;
  readonly sts: StsStub;
  readonly container: ContainerStub;
  /** A valid caller token (sub "alice"). */
  readonly token: string;
  start(name: string, env?: Record<string, string>): Promise<Service>;
  close(): Promise<void>;
}

export async function createRig(opts: { containerTtlMs?: number } = {}): Promise<Rig> {
  await ensureBuilt();
  const dir = tempRoot('cv-fault-');
  const issuer = await startIssuer();
  const container = await startContainerStub(opts.containerTtlMs !== undefined ? { ttlMs: opts.containerTtlMs } : {});
  const sts = await startStsStub({ baseCredentials: container });
  const token = await issuer.sign({ sub: 'alice' }, { expiresIn: '30m' });
  const services: Service[] = [];
  return {
    dir,
    issuer,
    sts,
    container,
    token,
    async start(name, env = {}) {
      const svc = await startService({ dir, name, sts, container, issuer, env });
      services.push(svc);
      return svc;
    },
    async close() {
      await Promise.all(services.map((s) => s.stop(2_000)));
      await Promise.all([sts.close(), container.close(), issuer.close()]);
      removeTempRoot(dir);
    },
  };
}

/** Remembers the secrets of up to `max` answers, spread over the run, for findSecrets. */
export function rememberSample(outcomes: readonly Outcome[], max = 100): void {
  const ok = outcomes.filter((o) => o.status === 200);
  const step = Math.max(1, Math.floor(ok.length / max));
  for (let i = 0; i < ok.length; i += step) remember(ok[i]?.secretAccessKey, ok[i]?.sessionToken);
}

/**
 * Every secret that reached a log or the audit file: any credential a stub handed out (their
 * markers; the vended ones and the service's own), and the JWTs and sampled vended secrets
 * (findSecrets, which also catches a slice of one).
 */
export function leakedSecrets(svc: Pick<Service, 'logFiles'>): string[] {
  const marked = svc.logFiles
    .filter((f) => existsSync(f))
    .flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      return SECRET_MARKERS.filter((m) => text.includes(m)).map((m) => `${f}: contains a stub secret (${m}…)`);
    });
  return [...marked, ...findSecrets(svc.logFiles)];
}

/** One console line per measured figure, so the figures appear in the test output. */
export function figure(name: string, value: string | number): void {
  console.info(`[fault] ${name}: ${value}`);
}

/** requestId -> how many credential decisions the audit file holds for it. */
export function decisionsByRequest(
  records: readonly Record<string, unknown>[],
): Map<string, Record<string, unknown>[]> {
  const by = new Map<string, Record<string, unknown>[]>();
  for (const r of records) {
    if (typeof r.event !== 'string' || !r.event.startsWith('credentials.')) continue;
    const id = String(r.requestId);
    by.set(id, [...(by.get(id) ?? []), r]);
  }
  return by;
}
