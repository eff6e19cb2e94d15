// The wrapper around the service's own credentials: refreshed ahead of expiry, once, without a
// failed request in between; the expiry metric follows every fetch. And the failure modes
// measured in production: a hung container-credentials endpoint stopped issuance for good (the
// one in-flight refresh never settled), expired keys signed AssumeRole calls, the endpoint was
// fetched once per request, and /readyz said ready throughout.
import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import type { AwsCredentialIdentity } from '@smithy/types';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import {
  BaseCredentialsUnavailableError,
  createBaseCredentials,
  defaultCredentialChain,
} from '../../src/sts/base-credentials.js';
import { isolateAwsCredentialChain } from '../helpers/loopback.js';
import { freePort } from '../helpers/net.js';

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

function setup(opts: { lifetimeMs?: number | undefined; timeoutMs?: number; random?: () => number } = {}) {
  let clock = T0;
  let n = 0;
  const pending: Array<ReturnType<typeof deferred<AwsCredentialIdentity>>> = [];
  const seenProps: Array<Record<string, unknown> | undefined> = [];
  // hang: never settles (a container endpoint that accepts and never answers);
  // expired: answers with keys that expired a minute ago (an endpoint serving stale keys).
  let mode: 'immediate' | 'manual' | 'fail' | 'hang' | 'expired' = 'immediate';
  const mint = (): AwsCredentialIdentity => {
    n += 1;
    return {
      accessKeyId: `ASIA${n}`,
      secretAccessKey: `s${n}`,
      sessionToken: `t${n}`,
      ...(opts.lifetimeMs === undefined ? {} : { expiration: new Date(clock + opts.lifetimeMs) }),
    };
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
      if (mode === 'hang') return new Promise<AwsCredentialIdentity>(() => undefined);
      if (mode === 'expired')
        return {
          accessKeyId: 'ASIASTALE',
          secretAccessKey: 'stale',
          sessionToken: 'stale',
          expiration: new Date(clock - MIN),
        };
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
    timeoutMs: opts.timeoutMs ?? 50,
    // Deterministic jitter: the shortest wait of each backoff step (half the step).
    random: opts.random ?? (() => 0),
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
    failureMetric: async (code: string) =>
      (await metrics.baseCredentialRefreshFailures.get()).values.find((v) => v.labels.code === code)?.value ?? 0,
    now: () => clock,
  };
}

/** The rejection of `p`, which must be a BaseCredentialsUnavailableError. */
async function unavailable(p: Promise<unknown>): Promise<BaseCredentialsUnavailableError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof BaseCredentialsUnavailableError))
    throw new Error(`expected BaseCredentialsUnavailableError, got ${String(err)}`);
  return err;
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

  it('fails a call only when nothing usable is left and the fetch fails, and tries again after a backoff', async () => {
    // Deliberate change: the call fails with our own error (503 CV_BASE_CREDENTIALS_UNAVAILABLE
    // upstream), the SDK's error kept as its cause; and the next fetch waits for the backoff.
    const s = setup({ lifetimeMs: 6 * MIN });
    s.setMode('fail');
    const err = await unavailable(s.base.provider());
    expect(err.code).toBe('FetchFailed');
    expect(err.cause).toMatchObject({ name: 'CredentialsProviderError' });
    s.setMode('immediate');
    expect((await unavailable(s.base.provider())).code).toBe('Backoff');
    s.advance(1000);
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

describe('createBaseCredentials when the source hangs, fails or serves expired keys', () => {
  it('times out a hung fetch within timeoutMs, and the next fetch after recovery succeeds', async () => {
    // The measured bug: a hung endpoint held the one in-flight refresh forever, so issuance
    // stayed down after the endpoint recovered.
    // Prepare: keys that have expired, and an endpoint that accepts and never answers.
    const s = setup({ lifetimeMs: 6 * MIN, timeoutMs: 50 });
    await s.base.provider();
    s.advance(6 * MIN);
    s.setMode('hang');
    // Act: 20 callers wait on the one fetch.
    const started = performance.now();
    const errs = await Promise.all(Array.from({ length: 20 }, () => unavailable(s.base.provider())));
    const waited = performance.now() - started;
    // Assess: all failed at the deadline, from one fetch, not with the old keys.
    expect(errs.every((e) => e.code === 'Timeout')).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(40);
    expect(waited).toBeLessThan(1000);
    expect(s.fetches()).toBe(2);
    expect(await s.failureMetric('Timeout')).toBe(1);
    // Act: the endpoint recovers; after the backoff the next call fetches again.
    s.setMode('immediate');
    s.advance(500);
    // Assess: the in-flight slot was freed, and the still-hanging fetch does not block this one.
    expect((await s.base.provider()).accessKeyId).toBe('ASIA2');
    expect(s.fetches()).toBe(3);
    expect(s.base.canSign()).toBe(true);
  });

  it('frees a hung background refresh too: it is retried, and the valid keys serve meanwhile', async () => {
    const s = setup({ lifetimeMs: 6 * MIN, timeoutMs: 30 });
    await s.base.provider();
    s.setMode('hang');
    s.advance(2 * MIN); // inside the refresh margin
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    await new Promise((r) => setTimeout(r, 60));
    expect(await s.failureMetric('Timeout')).toBe(1);
    s.setMode('immediate');
    s.advance(15_000);
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    await flush();
    expect((await s.base.provider()).accessKeyId).toBe('ASIA2');
  });

  it('takes a late answer only when it is usable and newer than what it holds (our choice: a slow source still recovers)', async () => {
    // Prepare: no keys yet; a fetch that answers after the deadline.
    const s = setup({ lifetimeMs: 60 * MIN, timeoutMs: 20 });
    s.setMode('manual');
    const first = unavailable(s.base.provider());
    expect((await first).code).toBe('Timeout');
    expect(s.base.canSign()).toBe(false);
    // Act: the abandoned fetch answers late with valid keys.
    s.pending[0]?.resolve(s.mint());
    await flush();
    // Assess: stored, served without a new fetch, and the backoff is over.
    expect(s.base.canSign()).toBe(true);
    expect((await s.base.provider()).accessKeyId).toBe('ASIA1');
    expect(s.fetches()).toBe(1);
  });

  it('ignores a late answer that is expired, or older than the keys it already holds', async () => {
    const s = setup({ lifetimeMs: 60 * MIN, timeoutMs: 20 });
    s.setMode('manual');
    expect((await unavailable(s.base.provider())).code).toBe('Timeout');
    const stale = s.mint(); // ASIA1, minted now, expires at T0 + 60 min
    s.advance(1000);
    s.setMode('immediate');
    expect((await s.base.provider()).accessKeyId).toBe('ASIA2'); // expires at T0 + 61 min
    s.pending[0]?.resolve(stale);
    await flush();
    expect((await s.base.provider()).accessKeyId).toBe('ASIA2');
    // And a late answer that has expired is never stored.
    const t = setup({ lifetimeMs: 60 * MIN, timeoutMs: 20 });
    t.setMode('manual');
    await unavailable(t.base.provider());
    t.pending[0]?.resolve({
      accessKeyId: 'ASIALATE',
      secretAccessKey: 's',
      sessionToken: 't',
      expiration: new Date(t.now() - 1),
    });
    await flush();
    expect(t.base.canSign()).toBe(false);
    expect(t.base.lastAccessKeyId()).toBeUndefined();
  });

  it('makes at most one source call per backoff window, however many requests arrive', async () => {
    // Prepare: keys that have expired, and an endpoint that fails.
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    s.advance(6 * MIN);
    s.setMode('fail');
    // Act: 50 concurrent requests during the failing fetch, then 50 more in each of 6 windows
    // (500 ms, 1 s, 2 s, then 2.5 s at the 5 s cap, with the jitter at its minimum), spread over
    // the window.
    const windows = [500, 1000, 2000, 2500, 2500, 2500];
    const first = await Promise.all(Array.from({ length: 50 }, () => unavailable(s.base.provider())));
    expect(first.every((e) => e.code === 'FetchFailed')).toBe(true);
    expect(s.fetches()).toBe(2);
    for (const [i, w] of windows.entries()) {
      for (let k = 0; k < 5; k += 1) {
        const during = await Promise.all(Array.from({ length: 10 }, () => unavailable(s.base.provider())));
        // Assess: meanwhile nobody fetches, and nobody is served the expired keys.
        expect(during.every((e) => e.code === 'Backoff' && e.cause instanceof BaseCredentialsUnavailableError)).toBe(
          true,
        );
        s.advance(w / 5 - 1);
      }
      expect(s.fetches()).toBe(2 + i);
      s.advance(5);
      await unavailable(s.base.provider());
      expect(s.fetches()).toBe(3 + i);
    }
    expect(await s.failureMetric('FetchFailed')).toBe(1 + windows.length);
    expect(s.warnings).toHaveLength(1 + windows.length);
  });

  it('caps the backoff at 5 s, jitter included', async () => {
    const s = setup({ lifetimeMs: 6 * MIN, random: () => 0.999 });
    s.setMode('fail');
    for (let i = 0; i < 12; i += 1) {
      await unavailable(s.base.provider());
      s.advance(5_000);
    }
    expect(s.fetches()).toBe(12);
    // One more failure: no fetch 4 s later, one at 5 s.
    await unavailable(s.base.provider());
    s.advance(4_000);
    await unavailable(s.base.provider());
    expect(s.fetches()).toBe(13);
    s.advance(1000);
    await unavailable(s.base.provider());
    expect(s.fetches()).toBe(14);
  });

  it('never returns expired keys: neither the old ones while the refresh fails, nor expired ones from the source', async () => {
    // The measured bug: expired keys signed 125 AssumeRole calls (callers saw AccessDenied).
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    s.setMode('fail');
    s.advance(6 * MIN - 20_000); // 20 s left: inside the 30 s the keys are no longer used for
    expect((await unavailable(s.base.provider())).code).toBe('FetchFailed');
    // A source serving stale keys: a failed fetch, never stored, never returned.
    s.advance(1000);
    s.setMode('expired');
    const err = await unavailable(s.base.provider());
    expect(err.code).toBe('Expired');
    expect(s.base.lastAccessKeyId()).toBe('ASIA1');
    expect(await s.failureMetric('Expired')).toBe(1);
    expect(await s.expiryMetric()).toBe((T0 + 6 * MIN) / 1000);
  });

  it('rejects keys from the source that expire within 30 s, even before the first success', async () => {
    const s = setup({ lifetimeMs: 20_000 });
    expect((await unavailable(s.base.provider())).code).toBe('Expired');
    expect(s.base.lastAccessKeyId()).toBeUndefined();
    expect(s.base.canSign()).toBe(false);
  });

  it('canSign(): false before the first fetch and while the keys are unusable, true again after recovery', async () => {
    const s = setup({ lifetimeMs: 6 * MIN });
    expect(s.base.canSign()).toBe(false);
    await s.base.provider();
    expect(s.base.canSign()).toBe(true);
    expect(s.base.canSign(T0 + 6 * MIN - 31_000)).toBe(true);
    expect(s.base.canSign(T0 + 6 * MIN - 30_000)).toBe(false);
    s.setMode('fail');
    s.advance(6 * MIN);
    expect(s.base.canSign()).toBe(false);
    await unavailable(s.base.provider());
    expect(s.base.canSign()).toBe(false);
    s.setMode('immediate');
    s.advance(500);
    await s.base.provider();
    expect(s.base.canSign()).toBe(true);
  });

  it('static keys can always sign', async () => {
    const s = setup({ lifetimeMs: undefined });
    await s.base.provider();
    expect(s.base.canSign(T0 + 10 * 365 * 24 * 60 * MIN)).toBe(true);
  });
});

describe('createBaseCredentials start(): recovery with no requests at all', () => {
  it('refetches in the background after the endpoint recovers, so readiness comes back by itself', async () => {
    // Prepare: keys that expired while nothing asked for them, and a failing endpoint.
    const s = setup({ lifetimeMs: 6 * MIN });
    await s.base.provider();
    s.advance(6 * MIN);
    s.setMode('fail');
    s.base.start(5);
    try {
      await vi.waitFor(() => expect(s.fetches()).toBe(2));
      // Within the backoff the timer does not fetch.
      await new Promise((r) => setTimeout(r, 30));
      expect(s.fetches()).toBe(2);
      expect(s.base.canSign()).toBe(false);
      // Act: the endpoint recovers and the backoff passes; no request arrives.
      s.setMode('immediate');
      s.advance(500);
      // Assess
      await vi.waitFor(() => expect(s.base.canSign()).toBe(true));
      expect(s.base.lastAccessKeyId()).toBe('ASIA2');
      // Far from expiry, the timer leaves the endpoint alone.
      await new Promise((r) => setTimeout(r, 30));
      expect(s.fetches()).toBe(3);
      // Ahead of expiry it refreshes, with no request either.
      s.advance(2 * MIN);
      await vi.waitFor(() => expect(s.base.lastAccessKeyId()).toBe('ASIA3'));
    } finally {
      s.base.stop();
    }
    s.advance(60 * MIN);
    await new Promise((r) => setTimeout(r, 30));
    expect(s.fetches()).toBe(4);
  });
});

// The real SDK chain against a loopback ECS / Pod Identity container-credentials endpoint.
describe('defaultCredentialChain against a loopback container-credentials endpoint', () => {
  let server: Server | undefined;
  afterEach(async () => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    const s = server;
    server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it('hang: rejected within the deadline; 500 and expired keys: rejected; healthy again: served', async () => {
    // Prepare: an endpoint switchable between the measured failure modes, on a clock we control.
    let clock = Date.now();
    let mode: 'hang' | '500' | 'expired' | 'healthy' = 'healthy';
    let hits = 0;
    const port = await freePort();
    server = createServer((req, res) => {
      hits += 1;
      if (mode === 'hang') return; // accepts, never answers
      if (mode === '500') {
        res.writeHead(500).end('{}');
        return;
      }
      const expiration = new Date(mode === 'expired' ? clock - MIN : clock + 60 * MIN).toISOString();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          AccessKeyId: `ASIALOOP${hits}`,
          SecretAccessKey: 'loop-secret',
          Token: 'loop-token',
          Expiration: expiration,
        }),
      );
    });
    const srv = server;
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    isolateAwsCredentialChain();
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `http://127.0.0.1:${port}/v2/credentials/task`);
    // The SDK's container request timeout only warns (on console): the measured problem itself.
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const metrics = createMetrics({ version: 't', defaultMetrics: false });
    const base = createBaseCredentials({
      source: defaultCredentialChain({ region: 'eu-west-1', timeoutMs: 200 }),
      metrics,
      timeoutMs: 300,
      now: () => clock,
      random: () => 0,
    });

    // Healthy first.
    expect((await base.provider()).accessKeyId).toBe('ASIALOOP1');
    expect(base.canSign()).toBe(true);

    // Act: the keys expire while the endpoint hangs.
    clock += 60 * MIN;
    mode = 'hang';
    const started = performance.now();
    const hung = await unavailable(base.provider());
    // Assess: rejected at our deadline, not left waiting on the endpoint.
    expect(hung.code).toBe('Timeout');
    expect(performance.now() - started).toBeLessThan(1500);
    expect(base.canSign()).toBe(false);

    mode = '500';
    clock += 1000;
    expect((await unavailable(base.provider())).code).toBe('FetchFailed');

    mode = 'expired';
    clock += 2000;
    expect((await unavailable(base.provider())).code).toBe('Expired');
    expect(base.canSign()).toBe(false);

    // Healthy again: served, although the hung request is still open on the server.
    mode = 'healthy';
    clock += 4000;
    const c = await base.provider();
    expect(c.accessKeyId).toMatch(/^ASIALOOP\d+$/);
    expect(c.accessKeyId).not.toBe('ASIALOOP1');
    expect(base.canSign()).toBe(true);
    expect(
      (await metrics.baseCredentialRefreshFailures.get()).values.map((v) => [v.labels.code, v.value]).sort(),
    ).toEqual([
      ['Expired', 1],
      ['FetchFailed', 1],
      ['Timeout', 1],
    ]);
  });
});
