// The JWKS fetch deadline (src/auth/key-store.ts) fires even when the garbage collector runs while
// the fetch hangs. On Node 20, AbortSignal.timeout's timer holds its signal weakly; composed with
// AbortSignal.any and held by nothing else, a collection during the fetch left it never firing.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createKeyStore } from '../../src/auth/key-store.js';
import type { FetchJson } from '../../src/auth/fetch-json.js';

// The collector, callable from a test: the flag exposes `gc` in contexts created after it is set.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** An identity provider that never answers: the fetch ends only when its signal aborts. */
const hanging: FetchJson = (_url, signal) =>
  new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));

describe('JWKS fetch deadline', () => {
  it('ends a hanging fetch at the deadline, garbage collections during it or not', async () => {
    // Attack stopped: a tarpitting identity provider holding every request for its issuer (and the
    // key store's one fetch in flight) for good, once a collection ran at the wrong moment.
    const store = createKeyStore({
      issuer: 'https://idp.example.com',
      jwksUri: 'https://idp.example.com/keys',
      refreshIntervalMs: 60_000,
      cooldownMs: 1_000,
      maxStaleMs: 600_000,
      timeoutMs: 200,
      fetchJson: hanging,
      now: Date.now,
    });
    const collecting = setInterval(gc, 10);
    try {
      const t0 = performance.now();
      const outcomes = await Promise.race([
        Promise.all([store.refresh(), store.demand()]).then(() => 'ended'),
        new Promise((r) => setTimeout(() => r('still hanging after 3 s'), 3_000)),
      ]);
      expect(outcomes).toBe('ended');
      expect(performance.now() - t0).toBeLessThan(2_000);
    } finally {
      clearInterval(collecting);
      store.close();
    }
  });

  it('close() ends a fetch in flight at once', async () => {
    const store = createKeyStore({
      issuer: 'https://idp.example.com',
      jwksUri: 'https://idp.example.com/keys',
      refreshIntervalMs: 60_000,
      cooldownMs: 1_000,
      maxStaleMs: 600_000,
      timeoutMs: 60_000,
      fetchJson: hanging,
      now: Date.now,
    });
    const t0 = performance.now();
    const pending = store.refresh();
    store.close();
    expect(await pending).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});
