// Admission control in front of STS (src/sts/gate.ts): bounded calls in flight, a bounded queue
// with a bounded wait, shedding with its own error, never an STS error.
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { IssuancePlan } from '../../src/policy/plan.js';
import { gateSts, OverloadedError } from '../../src/sts/gate.js';
import type { Sts, IssuedCredentials } from '../../src/sts/sts.js';

const plan = {} as IssuancePlan;
const creds: IssuedCredentials = {
  accessKeyId: 'ASIA',
  secretAccessKey: 's',
  sessionToken: 't',
  expiration: new Date(),
};

/** A fake Sts whose calls stay pending until the test releases them, counting concurrency. */
function heldSts() {
  const waiting: (() => void)[] = [];
  const state = { running: 0, peak: 0, calls: 0 };
  const sts: Sts = {
    assumeRole: () =>
      new Promise((resolve) => {
        state.calls += 1;
        state.running += 1;
        state.peak = Math.max(state.peak, state.running);
        waiting.push(() => {
          state.running -= 1;
          resolve(creds);
        });
      }),
    serviceIdentity: async () => ({ account: '1', arn: 'a' }),
  };
  const releaseAll = () => waiting.splice(0).forEach((r) => r());
  return { sts, state, releaseAll };
}

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

describe('gateSts', () => {
  it('never runs more than maxInFlight calls at once, and admits the queue in order as slots free', async () => {
    // What it stops: more AssumeRole calls than sockets, whose wait for a socket would count
    // against the SDK's connect timeout and come back as false STS timeouts.
    const { sts, state, releaseAll } = heldSts();
    const gate = gateSts(sts, { maxInFlight: 3, maxQueue: 100, queueTimeoutMs: 10_000 });
    const all = Promise.all(Array.from({ length: 10 }, () => gate.assumeRole(plan)));
    for (let i = 0; i < 10 && state.calls < 10; i += 1) {
      await tick();
      expect(state.running).toBeLessThanOrEqual(3);
      releaseAll();
    }
    await tick();
    releaseAll();
    expect(await all).toHaveLength(10);
    expect(state.peak).toBe(3);
  });

  it('sheds at once when the queue is full (queue_full), counted in credvend_requests_shed_total', async () => {
    const { sts, releaseAll } = heldSts();
    const metrics = createMetrics({ version: 't', defaultMetrics: false });
    const gate = gateSts(sts, { maxInFlight: 1, maxQueue: 1, queueTimeoutMs: 10_000, metrics });
    const first = gate.assumeRole(plan);
    const second = gate.assumeRole(plan);
    const started = Date.now();
    await expect(gate.assumeRole(plan)).rejects.toMatchObject({ name: 'OverloadedError', reason: 'queue_full' });
    expect(Date.now() - started).toBeLessThan(50);
    expect(await metrics.registry.metrics()).toMatch(/credvend_requests_shed_total\{reason="queue_full"\} 1/);
    expect(await metrics.registry.metrics()).toMatch(/credvend_sts_queued 1/);
    releaseAll();
    await first;
    await tick();
    releaseAll();
    await second;
  });

  it('a queued request waits at most queueTimeoutMs (queue_timeout), then leaves the queue', async () => {
    const { sts, state, releaseAll } = heldSts();
    const gate = gateSts(sts, { maxInFlight: 1, maxQueue: 10, queueTimeoutMs: 50 });
    const first = gate.assumeRole(plan);
    const started = Date.now();
    const err = await gate.assumeRole(plan).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OverloadedError);
    expect((err as OverloadedError).reason).toBe('queue_timeout');
    expect(Date.now() - started).toBeLessThan(500);
    releaseAll();
    await first;
    expect(state.calls).toBe(1); // the timed-out request never reached STS
  });

  it('an aborted request leaves the queue with the abort reason (shutdown), and frees nothing it did not hold', async () => {
    const { sts, state, releaseAll } = heldSts();
    const gate = gateSts(sts, { maxInFlight: 1, maxQueue: 10, queueTimeoutMs: 10_000 });
    const first = gate.assumeRole(plan);
    const controller = new AbortController();
    const queued = gate.assumeRole(plan, controller.signal);
    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(queued).rejects.toBe(reason);
    const third = gate.assumeRole(plan);
    releaseAll();
    await first;
    await tick();
    expect(state.running).toBe(1); // the third got the freed slot; the aborted one took none
    releaseAll();
    await third;
  });

  it('a failed call frees its slot', async () => {
    const failing: Sts = {
      assumeRole: async () => Promise.reject(new Error('boom')),
      serviceIdentity: async () => ({ account: '', arn: '' }),
    };
    const gate = gateSts(failing, { maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 10 });
    for (let i = 0; i < 5; i += 1) await expect(gate.assumeRole(plan)).rejects.toThrow('boom');
  });
});
