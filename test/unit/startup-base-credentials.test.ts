// The wrapper around the service's own credentials: refreshed ahead of expiry, once, without a
// failed request in between; the expiry metric follows every fetch.
import { Writable } from 'node:stream';
import type { AwsCredentialIdentity } from '@smithy/types';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createBaseCredentials } from '../../src/sts/base-credentials.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const MIN = 60_000;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup(opts: { lifetimeMs?: number | undefined } = {}) {
  let clock = T0;
  let n = 0;
  const pending: Array<ReturnType<typeof deferred<AwsCredentialIdentity>>> = [];
  const seenProps: Array<Record<string, unknown> | undefined> = [];
  let mode: 'immediate' | 'manual' | 'fail' = 'immediate';
  const mint = (): AwsCredentialIdentity => {
    n += 1;
    return { accessKeyId: `ASIA${n}`, secretAccessKey: `s${n}`, sessionToken: `t${n}`, ...(opts.lifetimeMs === undefined ? {} : { expiration: new Date(clock + opts.lifetimeMs) }) };
  };
  const metrics = createMetrics({ version: 't', defaultMetrics: false });
  const warnings: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      warnings.push((JSON.parse(chunk.toString('utf8')) as { msg: string }).msg);
      cb();
    },
  });
  const base = createBaseCredentials({
    source: async (props) => {
      seenProps.push(props);
      if (mode === 'fail') throw Object.assign(new Error('endpoint down'), { name: 'CredentialsProviderError' });
      if (mode === 'manual') {
        const d = deferred<AwsCredentialIdentity>();
        pending.push(d);
        return d.promise;
      }
      return mint();
    },
    metrics,
    logger: pino({ level: 'warn' }, sink),
    now: () => clock,
  });
  return {
    base,
    metrics,
    warnings,
    seenProps,
    pending,
    mint,
    fetches: () => seenProps.length,
    advance: (ms: number) => void (clock += ms),
    setMode: (m: typeof mode) => void (mode = m),
    expiryMetric: async () => (await metrics.baseCredentialExpiry.get()).values[0]?.value,
  };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('createBaseCredentials', () => {
  it('fetches once and serves the cached credentials while they are far from expiry', async () => {
    const s = setup({ lifetimeMs: 60 * MIN });
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    s.advance(50 * MIN);
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    expect(s.fetches()).toBe(1);
  });

  it('asks the SDK chain for a forced refresh, so its own cache cannot hand back the old keys', async () => {
    const s = setup({ lifetimeMs: 60 * MIN });
    await s.base.provider();
    expect(s.seenProps[0]).toMatchObject({ forceRefresh: true });
  });

  it('refreshes ahead of expiry in the background while the old keys keep serving', async () => {
    // Prepare: keys that expire in 6 minutes, and a refresh we hold open.
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    s.setMode('manual');
    s.advance(90_000); // 4.5 minutes left: inside the 5-minute margin
    // Act: 50 concurrent requests arrive during the refresh.
    const during = await Promise.all(Array.from({ length: 50 }, () => s.base.provider()));
    // Assess: all served with the still-valid keys, one fetch in flight.
    expect(during.every((c) => c.accessKeyId === 'ASIA1')).toBe(true);
    expect(s.fetches()).toBe(2);
    s.pending[0]?.resolve(s.mint());
    await flush();
    expect((await s.base.provider()).accessKeyId).toBe('ASIA2');
    expect(s.base.lastAccessKeyId()).toBe('ASIA2');
  });

  it('makes callers wait for one shared fetch when the keys are (nearly) expired, and none fails', async () => {
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    s.setMode('manual');
    s.advance(6 * MIN - 10_000); // 10 s left: too close to sign with
    const all = Promise.all(Array.from({ length: 50 }, () => s.base.provider()));
    await flush();
    expect(s.fetches()).toBe(2);
    s.pending[0]?.resolve(s.mint());
    expect((await all).every((c) => c.accessKeyId === 'ASIA2')).toBe(true);
  });

  it('keeps serving valid keys when a background refresh fails, and retries later', async () => {
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    s.setMode('fail');
    s.advance(2 * MIN);
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    await flush();
    expect(s.warnings).toHaveLength(1);
    // Not retried on every request: a failing endpoint is not hammered.
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    expect(s.fetches()).toBe(2);
    s.setMode('immediate');
    s.advance(15_000);
    await s.base.provider();
    await flush();
    expect((await s.base.provider()).accessKeyId).toBe('ASIA2');
  });

  it('fails a call only when nothing usable is left and the fetch fails', async () => {
    const s = setup({ lifetimeMs: 6 * MIN });
    s.setMode('fail');
    await expect(s.base.provider()).rejects.toMatchObject({ name: 'CredentialsProviderError' });
    // The failure is not cached: the next call tries again.
    s.setMode('immediate');
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
  });

  it('sets the expiry metric on every fetch', async () => {
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    expect(await s.expiryMetric()).toBe((T0 + 6 * MIN) / 1000);
    s.advance(2 * MIN);
    await s.base.provider();
    await flush();
    expect(await s.expiryMetric()).toBe((T0 + 8 * MIN) / 1000);
  });

  it('reports static keys as non-expiring: metric 0, never refreshed', async () => {
    const s = setup({ lifetimeMs: undefined });
    await s.base.provider();
    s.advance(365 * 24 * 60 * MIN);
    await s.base.provider();
    expect(s.fetches()).toBe(1);
    expect(await s.expiryMetric()).toBe(0);
    expect(s.base.lastExpires()).toBe(false);
  });

  it('exposes nothing before the first resolution', () => {
    const s = setup({ lifetimeMs: 6 * MIN });
    expect(s.base.lastAccessKeyId()).toBeUndefined();
    expect(s.base.lastExpires()).toBeUndefined();
  });
});
