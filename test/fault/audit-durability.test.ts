// Issue 8, deliverable 4: a credential leaves the process only after its audit record has been
// handed to the operating system, and none leaves while the audit destination cannot be written.
// Threat: credentials in a caller's hands that the security team never sees (a crash right after
// the answer, a full disk).
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminGet, CREDENTIAL_REQUEST, metricValue, waitFor, type Service } from '../helpers/service-process.js';
import { contractViolations, describeOutcome, requestCredentials, startLoad, tally, type Outcome } from './load.js';
import { createRig, figure, type Rig } from './rig.js';

let rig: Rig;

beforeAll(async () => {
  rig = await createRig();
});

afterAll(async () => {
  await rig?.close();
});

describe('audit: SIGKILL right after an answer', () => {
  // Early (few answered yet) and late (the audit writer busy), with many requests in flight each time.
  it.each([25, 400])(
    'every credential a client received is in the audit file (SIGKILL after the %i-th 200)',
    async (afterOk) => {
      const svc = await rig.start(`sigkill-${afterOk}`, { CREDVEND_ACCESS_LOG: 'off' });
      rig.sts.setMode('latency', { latencyMs: 20 });
      const outcomes = await startLoad({
        url: svc.url,
        token: rig.token,
        body: CREDENTIAL_REQUEST,
        concurrency: 32,
        maxRequests: 5_000,
        maxDurationMs: 20_000,
        timeoutMs: 5_000,
        kill: { pid: svc.pid, afterOk },
      }).done;
      expect(await svc.exited).toBe('SIGKILL');
      const received = outcomes.filter((o) => o.status === 200);
      const { records, partial } = svc.audit();
      const audited = new Set(records.filter((r) => r.event === 'credentials.issued').map((r) => r.accessKeyId));
      const lost = received.filter((o) => !audited.has(o.accessKeyId));
      figure(
        `SIGKILL after the ${afterOk}-th 200`,
        `${received.length} credentials received, ${audited.size} issued records, ${lost.length} received but not audited, ${outcomes.filter((o) => o.status === 0).length} requests cut off, ${partial} partial lines`,
      );
      expect(received.length).toBeGreaterThanOrEqual(afterOk);
      expect(lost.map((o) => o.accessKeyId)).toEqual([]);
    },
  );
});

// A 256 KiB tmpfs holds the audit file; a filler file takes the rest of it.
describe('audit: full disk', () => {
  const tmpfs = () => join(rig.dir, 'audit-tmpfs');
  let mounted = false;
  let skipReason = '';
  let svc: Service;
  const filler = () => join(tmpfs(), 'filler');

  const fill = (): number => {
    const fd = openSync(filler(), 'a');
    const chunk = Buffer.alloc(4096, 0x61);
    let bytes = 0;
    try {
      for (;;) bytes += writeSync(fd, chunk);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
    return bytes;
  };
  const ask = (): Promise<Outcome> => requestCredentials(svc.url, rig.token, CREDENTIAL_REQUEST, 5_000);

  beforeAll(async () => {
    const dir = tmpfs();
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      skipReason =
        ((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().split('\n')[0] ??
        'mount failed';
      return;
    }
    rig.sts.setMode('ok');
    svc = await rig.start('full-disk', {
      CREDVEND_AUDIT_LOG: join(dir, 'audit.log'),
      CREDVEND_SHUTDOWN_GRACE_MS: '2000',
    });
  });

  afterAll(() => {
    if (!mounted) return;
    svc?.signal('SIGKILL');
    try {
      execFileSync('umount', [tmpfs()], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', tmpfs()], { stdio: 'pipe' }); // busy: detach now, freed once closed
    }
  });

  it('refuses every credential with 503 CV_AUDIT_UNAVAILABLE, reports it, stays responsive, recovers by itself and exits promptly', async (ctx) => {
    if (!mounted) {
      console.info(`SKIPPED full-disk audit: ${skipReason}`);
      ctx.skip();
      return;
    }
    const filled = fill();
    const refused: Outcome[] = [];
    for (let i = 0; i < 20; i += 1) refused.push(await ask());
    figure(
      'full disk: answers to 20 credential requests',
      `${tally(refused, describeOutcome)} (filler ${filled} bytes)`,
    );
    expect(refused.map((o) => contractViolations(o, new Set(['CV_AUDIT_UNAVAILABLE']))).flat()).toEqual([]);
    expect(refused.filter((o) => o.status === 200)).toEqual([]);

    expect(await waitFor(async () => (await adminGet(svc, '/readyz')).status === 503, 3_000)).toBeDefined();
    const metrics = (await adminGet(svc, '/metrics')).text;
    figure(
      'full disk: credvend_audit_writable / credvend_audit_write_failures_total',
      `${metricValue(metrics, 'credvend_audit_writable')} / ${metricValue(metrics, 'credvend_audit_write_failures_total')}`,
    );
    expect(metricValue(metrics, 'credvend_audit_writable')).toBe(0);
    expect(metricValue(metrics, 'credvend_audit_write_failures_total')).toBeGreaterThan(0);
    const healthz = [];
    for (let i = 0; i < 10; i += 1) healthz.push(await adminGet(svc, '/healthz', 2_000));
    figure('full disk: /healthz max (ms)', Math.max(...healthz.map((h) => h.ms)).toFixed(1));
    expect(healthz.every((h) => h.status === 200 && h.ms < 500)).toBe(true);

    rmSync(filler());
    const recovered = await waitFor(async () => (await ask()).status === 200, 5_000, 200);
    const ready = await waitFor(async () => (await adminGet(svc, '/readyz')).status === 200, 5_000);
    figure(
      'full disk: space freed -> first 200 / readyz 200 after (ms)',
      `${recovered ?? 'never'} / ${ready ?? 'never'}`,
    );
    expect(recovered).toBeDefined();
    expect(ready).toBeDefined();

    // Full again, with decisions pending, then SIGTERM: the exit must not wait on the disk.
    fill();
    const again: Outcome[] = [];
    while (again.length < 50 && !again.some((o) => o.code === 'CV_AUDIT_UNAVAILABLE')) again.push(await ask());
    const t0 = Date.now();
    svc.signal('SIGTERM');
    const exit = await Promise.race([
      svc.exited,
      new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000)),
    ]);
    figure(
      'full disk again: SIGTERM -> exit (ms)',
      `${Date.now() - t0} (exit ${String(exit)}; ${tally(again, describeOutcome)} before it)`,
    );
    expect(again.some((o) => o.code === 'CV_AUDIT_UNAVAILABLE')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});
