// Issue 8, deliverable 3: the service's own credentials are part of readiness. While they are
// expired and the container-credentials endpoint answers only expired keys (or hangs), /readyz
// is 503, callers get 503 CV_BASE_CREDENTIALS_UNAVAILABLE (not an STS error), no request is
// signed with expired keys, the endpoint is not fetched once per request, and everything comes
// back by itself once the endpoint is healthy.
//
// Healthy base credentials here live 36 s. The service must not sign within 30 s of expiry, so
// they are usable for ~6 s after each fetch: an endpoint fault is felt within seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerMode } from '../helpers/fault-stubs.js';
import { adminGet, CREDENTIAL_REQUEST, waitFor, type Service } from '../helpers/service-process.js';
import { contractViolations, describeOutcome, startLoad, tally } from './load.js';
import { createRig, figure, type Rig } from './rig.js';

const TTL_MS = 36_000;
const NOTICE_MS = 15_000; // usable window (~6 s) + a background refresh period + room
const RECOVER_MS = 20_000; // the refresh backoff after a few failures, + room

let rig: Rig;
let svc: Service;

beforeAll(async () => {
  rig = await createRig({ containerTtlMs: TTL_MS });
  svc = await rig.start('base-credentials', { CREDVEND_BASE_CREDENTIALS_TIMEOUT_MS: '500' });
  rig.sts.setMode('ok');
});

afterAll(async () => {
  await rig?.close();
});

const readyz = async () => (await adminGet(svc, '/readyz')).status;

describe('base credentials and readiness', () => {
  it.each<ContainerMode>(['expired', 'hang'])(
    'container endpoint %s: /readyz 503 and CV_BASE_CREDENTIALS_UNAVAILABLE until it recovers',
    async (mode) => {
      expect(await readyz()).toBe(200);
      rig.container.setMode(mode);
      const noticed = await waitFor(async () => (await readyz()) === 503, NOTICE_MS, 200);
      figure(`container ${mode}: /readyz 503 after (ms)`, noticed ?? `not within ${NOTICE_MS}`);
      expect(noticed).toBeDefined();

      const callsBefore = rig.container.calls();
      const outcomes = await startLoad({
        url: svc.url,
        token: rig.token,
        body: CREDENTIAL_REQUEST,
        concurrency: 8,
        maxRequests: 400,
        maxDurationMs: 2_000,
        timeoutMs: 5_000,
      }).done;
      const fetches = rig.container.calls() - callsBefore;
      figure(
        `container ${mode}: answers while unavailable`,
        `${tally(outcomes, describeOutcome)}; endpoint fetched ${fetches} times for ${outcomes.length} requests; signed with expired keys ${rig.sts.signedWithExpiredKeys()}`,
      );
      expect(outcomes.flatMap((o) => contractViolations(o, new Set(['CV_BASE_CREDENTIALS_UNAVAILABLE'])))).toEqual([]);
      expect(rig.sts.signedWithExpiredKeys()).toBe(0);
      expect(fetches).toBeLessThanOrEqual(Math.max(5, outcomes.length / 10)); // single flight with backoff, not once per request

      rig.container.setMode('healthy');
      const recovered = await waitFor(async () => (await readyz()) === 200, RECOVER_MS, 200);
      const next = await startLoad({
        url: svc.url,
        token: rig.token,
        body: CREDENTIAL_REQUEST,
        concurrency: 4,
        maxRequests: 20,
        maxDurationMs: 5_000,
        timeoutMs: 5_000,
      }).done;
      figure(
        `container ${mode} -> healthy: /readyz 200 after (ms)`,
        `${recovered ?? `not within ${RECOVER_MS}`}; then ${tally(next, describeOutcome)}`,
      );
      expect(recovered).toBeDefined();
      expect(next.every((o) => o.status === 200)).toBe(true);
    },
  );
});
