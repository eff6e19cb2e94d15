// Issue 8, deliverable 6: shutdown answers everyone. Twenty requests are stuck on an STS that
// accepts and never answers (STS timeout 30 s, so nothing else frees them); at the grace deadline
// after SIGTERM each caller gets a 503 problem+json, not a dropped socket, and each decision is
// audited as failed, before the process exits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIAL_REQUEST } from '../helpers/service-process.js';
import { contractViolations, describeOutcome, startLoad, tally } from './load.js';
import { createRig, decisionsByRequest, figure, type Rig } from './rig.js';
import { waitFor } from '../helpers/service-process.js';

const GRACE_MS = 2_000;
const IN_FLIGHT = 20;

let rig: Rig;

beforeAll(async () => {
  rig = await createRig();
});

afterAll(async () => {
  await rig?.close();
});

describe('shutdown with a hung STS', () => {
  it(`answers all ${IN_FLIGHT} stuck requests with 503 CV_SHUTTING_DOWN, audits them, and exits within grace + 2 s`, async () => {
    const svc = await rig.start('shutdown', {
      CREDVEND_STS_TIMEOUT_MS: '30000',
      CREDVEND_STS_MAX_ATTEMPTS: '1',
      CREDVEND_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    });
    rig.sts.setMode('hang');
    const before = rig.sts.assumeRoleCalls();
    const load = startLoad({
      url: svc.url,
      token: rig.token,
      body: CREDENTIAL_REQUEST,
      concurrency: IN_FLIGHT,
      maxRequests: IN_FLIGHT,
      maxDurationMs: 30_000,
      timeoutMs: 20_000,
    });
    expect(await waitFor(() => rig.sts.assumeRoleCalls() - before >= IN_FLIGHT, 10_000, 20)).toBeDefined();

    const t0 = Date.now();
    svc.signal('SIGTERM');
    const exit = await Promise.race([
      svc.exited,
      new Promise((r) => setTimeout(() => r('still running'), GRACE_MS + 8_000)),
    ]);
    const exitMs = Date.now() - t0;
    const outcomes = await load.done;
    const decisions = decisionsByRequest(svc.audit().records);
    const audited = outcomes.filter((o) =>
      decisions
        .get(o.requestId ?? '')
        ?.some((r) => r.event === 'credentials.failed' && r.errorCode === 'CV_SHUTTING_DOWN'),
    );
    figure(
      'shutdown',
      `exit ${String(exit)} after ${exitMs} ms (grace ${GRACE_MS}); answers ${tally(outcomes, describeOutcome)}; ${audited.length}/${outcomes.length} audited as failed CV_SHUTTING_DOWN; STS calls still hung ${rig.sts.pending()}`,
    );
    expect(outcomes).toHaveLength(IN_FLIGHT);
    expect(outcomes.flatMap((o) => contractViolations(o, new Set(['CV_SHUTTING_DOWN'])))).toEqual([]);
    expect(audited).toHaveLength(IN_FLIGHT);
    expect(exitMs).toBeLessThan(GRACE_MS + 2_000);
  });
});
