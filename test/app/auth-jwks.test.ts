// JWKS issuers against a loopback identity provider whose key set and behaviour (hang, garbage,
// 500, slow, oversized) each test switches at run time. The authenticator runs in a minimal Fastify
// app with short intervals, so every test is bounded by a second or two; the figures the tests
// measure are printed with a "[figure]" prefix.
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthenticator, type AuthOptions } from '../../src/auth/authenticate.js';
import { createFetchJson } from '../../src/auth/fetch-json.js';
import { createKeyStore } from '../../src/auth/key-store.js';
import { issuerSchema, type IssuerConfig } from '../../src/config/schema.js';
import { problemBody, toProblem } from '../../src/errors.js';
import { AUDIENCE, sign } from '../helpers/app.js';
import { freePort } from '../helpers/net.js';

type Behaviour = 'ok' | 'hang' | 'garbage' | 'status500' | 'slow' | 'oversized';

interface LoopbackIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
  keys: JWK[];
  behaviour: Behaviour;
  /** Discovery document override (for the issuer-mismatch test). */
  discoveryIssuer?: string;
  jwksHits: number;
  discoveryHits: number;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function loopbackIssuer(): Promise<LoopbackIssuer> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const sockets = new Set<Socket>();
  const state: LoopbackIssuer = {
    issuer: origin,
    jwksUri: `${origin}/keys`,
    keys: [],
    behaviour: 'ok',
    jwksHits: 0,
    discoveryHits: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  const answer = (res: ServerResponse, body: string) => {
    switch (state.behaviour) {
      case 'hang':
        return; // never answers; the socket stays open
      case 'garbage':
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>{"keys": oops');
      case 'status500':
        return void res.writeHead(500).end('{"keys":[]}');
      case 'slow': {
        // Headers at once, then one byte every 100 ms: only a deadline on the whole body stops it.
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => res.write(' '), 100);
        res.on('close', () => clearInterval(t));
        return;
      }
      case 'oversized': {
        // An endless body without content-length: only a streamed cap stops it.
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      case 'ok':
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    }
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/.well-known/openid-configuration') {
      state.discoveryHits += 1;
      return answer(res, JSON.stringify({ issuer: state.discoveryIssuer ?? origin, jwks_uri: state.jwksUri }));
    }
    state.jwksHits += 1;
    answer(res, JSON.stringify({ keys: state.keys }));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  cleanups.push(() => state.close());
  return state;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const k = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey: k.privateKey, jwk: { ...(await exportJWK(k.publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

const tokenFor = (k: SigningKey, iss: string, kid = k.kid) =>
  sign({ sub: 'alice' }, k.privateKey, { kid, issuer: iss });

/** A 1024-bit key and a token signed with it by node:crypto (jose itself refuses to make either). */
function weakKeyToken(kid: string, iss: string): { jwk: JWK; token: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const now = Math.floor(Date.now() / 1000);
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc({ alg: 'RS256', kid })}.${enc({ sub: 'alice', iss, aud: AUDIENCE, iat: now, exp: now + 300 })}`;
  const token = `${input}.${cryptoSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  return { jwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' }, token };
}

/** Issuer config as the schema builds it, with intervals short enough for a test (sub-second). */
function issuerConfig(
  input: Record<string, unknown>,
  timing: { refreshMs?: number; maxStaleMs?: number } = {},
): IssuerConfig {
  const c = issuerSchema.parse({ audiences: [AUDIENCE], ...input });
  return {
    ...c,
    ...(timing.refreshMs !== undefined ? { jwksRefreshSeconds: timing.refreshMs / 1000 } : {}),
    ...(timing.maxStaleMs !== undefined ? { jwksMaxStaleSeconds: timing.maxStaleMs / 1000 } : {}),
  };
}

/** A minimal app: GET /whoami authenticates and answers the subject, errors as the service renders them. */
async function authApp(issuers: IssuerConfig[], options: Partial<AuthOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify();
  const authenticate = createAuthenticator(app, {
    issuers,
    clockSkewSeconds: 0,
    jwksTimeoutMs: 300,
    jwksRefreshCooldownMs: 200,
    ...options,
  });
  app.setErrorHandler((err, request, reply) => {
    const p = toProblem(err);
    void reply.code(p.status).type('application/problem+json').send(problemBody(p, request.id));
  });
  app.get('/whoami', async (request) => ({ sub: (await authenticate(request)).subject }));
  await app.ready();
  cleanups.push(() => app.close());
  return app;
}

async function call(
  app: FastifyInstance,
  token: string,
): Promise<{ status: number; detail: string | undefined; ms: number }> {
  const t0 = performance.now();
  const res = await app.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } });
  const ms = performance.now() - t0;
  return {
    status: res.statusCode,
    detail: res.statusCode === 200 ? undefined : res.json<{ detail: string }>().detail,
    ms,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await what()) return performance.now() - t0;
    await sleep(10);
  }
  throw new Error(`not within ${timeoutMs} ms`);
}

function figure(text: string): void {
  process.stderr.write(`[figure] ${text}\n`);
}

describe('JWKS fetches are bounded in time and size', () => {
  it('a hanging JWKS endpoint costs a request at most the fetch deadline (default 3 s)', async () => {
    // Attack stopped: an unreachable or tarpitting identity provider holding every request (and
    // its socket) for undici's 300 s defaults.
    const idp = await loopbackIssuer();
    idp.behaviour = 'hang';
    const k1 = await signingKey('k1');
    const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })], { jwksTimeoutMs: 3000 });
    const token = await tokenFor(k1, idp.issuer);
    const results = await Promise.all([call(app, token), sleep(1000).then(() => call(app, token)), call(app, token)]);
    const worst = Math.max(...results.map((r) => r.ms));
    figure(
      `hung JWKS, default 3000 ms deadline: worst request latency ${Math.round(worst)} ms over ${results.length} requests`,
    );
    for (const r of results)
      expect(r).toMatchObject({ status: 401, detail: 'The token was rejected: signing keys unavailable' });
    expect(worst).toBeLessThan(3500);
  }, 10_000);

  it('other issuers are unaffected while one hangs', async () => {
    // Attack stopped: one slow identity provider denying service to the callers of all others.
    const slow = await loopbackIssuer();
    const fine = await loopbackIssuer();
    slow.behaviour = 'hang';
    const k1 = await signingKey('k1');
    fine.keys = [k1.jwk];
    const app = await authApp(
      [
        issuerConfig({ issuer: slow.issuer, jwksUri: slow.jwksUri }),
        issuerConfig({ issuer: fine.issuer, jwksUri: fine.jwksUri }),
      ],
      { jwksTimeoutMs: 1000 },
    );
    const [hung, ok] = await Promise.all([
      call(app, await tokenFor(k1, slow.issuer)),
      sleep(50).then(async () => call(app, await tokenFor(k1, fine.issuer))),
    ]);
    expect(ok.status).toBe(200);
    expect(ok.ms).toBeLessThan(500);
    expect(hung.status).toBe(401);
  });

  it.each([
    ['garbage', 'a body that is not JSON'],
    ['status500', 'an HTTP 500'],
    ['slow', 'a body trickling past the deadline'],
    ['oversized', 'an endless body (size cap)'],
  ] as const)(
    'a JWKS answering with %s keeps the last good set and answers within the deadline',
    async (behaviour, _what) => {
      // Attack stopped: a broken or hostile JWKS answer (the second column) emptying the key set, hanging
      // requests, or filling memory.
      const idp = await loopbackIssuer();
      const k1 = await signingKey('k1');
      const k2 = await signingKey('k2');
      idp.keys = [k1.jwk];
      const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })], {
        jwksTimeoutMs: 300,
        jwksRefreshCooldownMs: 0,
        maxResponseBytes: 64 * 1024,
      });
      expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200);
      idp.behaviour = behaviour;
      idp.keys = [k2.jwk];
      const miss = await call(app, await tokenFor(k2, idp.issuer)); // unknown kid: an on-demand fetch that fails
      expect(miss).toMatchObject({ status: 401, detail: 'The token was rejected: unknown signing key' });
      expect(miss.ms).toBeLessThan(800);
      expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200); // last good set still in use
    },
  );

  it('the response size cap also holds for a declared content-length', async () => {
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    idp.keys = [k1.jwk, ...Array.from({ length: 40 }, (_, i) => ({ ...k1.jwk, kid: `filler-${i}` }))];
    const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })], { maxResponseBytes: 2048 });
    expect(await call(app, await tokenFor(k1, idp.issuer))).toMatchObject({
      status: 401,
      detail: 'The token was rejected: signing keys unavailable',
    });
  });
});

describe('key lifecycle', () => {
  it('a key removed from the JWKS is refused within one refresh interval, also for a cached token', async () => {
    // Attack stopped: a compromised signing key staying usable after the issuer rotated it out
    // (the old stale-cache fallback re-stored it on every failed refetch).
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    const k2 = await signingKey('k2');
    idp.keys = [k1.jwk, k2.jwk];
    const refreshMs = 400;
    const app = await authApp([
      issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, { refreshMs, maxStaleMs: 5000 }),
    ]);
    const token = await tokenFor(k1, idp.issuer);
    expect((await call(app, token)).status).toBe(200);
    expect((await call(app, token)).status).toBe(200); // the verified-token cache serves it now
    idp.keys = [k2.jwk];
    // Steady traffic with the same token: accepted until the next scheduled refresh, then refused.
    const delay = await until(async () => (await call(app, token)).status === 401, refreshMs + 500);
    figure(
      `key removal honoured after ${Math.round(delay)} ms with a ${refreshMs} ms refresh interval (bound: interval + fetch)`,
    );
    expect(delay).toBeLessThanOrEqual(refreshMs + 300);
    expect(await call(app, token)).toMatchObject({
      status: 401,
      detail: 'The token was rejected: unknown signing key',
    });
    expect((await call(app, await tokenFor(k2, idp.issuer))).status).toBe(200);
  });

  it('an unreachable JWKS serves the last good set for the staleness bound only, then refuses', async () => {
    // Attack stopped: an attacker who can block the JWKS endpoint keeping a removed or
    // compromised key trusted forever.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    idp.keys = [k1.jwk];
    const maxStaleMs = 800;
    const app = await authApp(
      [issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, { refreshMs: 200, maxStaleMs })],
      { jwksTimeoutMs: 100 },
    );
    const token = await tokenFor(k1, idp.issuer);
    expect((await call(app, token)).status).toBe(200);
    idp.behaviour = 'status500';
    const refusedAfter = await until(async () => (await call(app, token)).status === 401, maxStaleMs + 1000);
    figure(
      `JWKS down: last good set served ${Math.round(refusedAfter)} ms more (bound ${maxStaleMs} ms after the last good fetch)`,
    );
    // The last good fetch was at most one refresh interval (200 ms) before the outage began.
    expect(refusedAfter).toBeGreaterThan(maxStaleMs - 250);
    expect(refusedAfter).toBeLessThan(maxStaleMs + 300);
    expect(await call(app, token)).toMatchObject({
      status: 401,
      detail: 'The token was rejected: signing keys unavailable',
    });
    idp.behaviour = 'ok';
    await until(async () => (await call(app, token)).status === 200, 1000);
  });

  it('a JWKS that answers without one usable key does not empty the set', async () => {
    // Attack stopped: a broken deployment (or a 512-bit / symmetric key) silently becoming the key set.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    const weak = weakKeyToken('weak', idp.issuer);
    idp.keys = [k1.jwk];
    const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })], {
      jwksRefreshCooldownMs: 0,
    });
    expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200);
    idp.keys = [weak.jwk, { kty: 'oct', kid: 'hmac', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA' }];
    expect(await call(app, weak.token)).toMatchObject({
      status: 401,
      detail: 'The token was rejected: unknown signing key',
    });
    expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200);
  });

  it('refuses a key under 2048 bits published next to good ones', async () => {
    // Attack stopped: a factorable RSA key in the JWKS letting anyone mint tokens.
    const idp = await loopbackIssuer();
    const good = await signingKey('good');
    const weak = weakKeyToken('weak', idp.issuer);
    idp.keys = [good.jwk, weak.jwk];
    const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })]);
    expect(await call(app, weak.token)).toMatchObject({
      status: 401,
      detail: 'The token was rejected: unknown signing key',
    });
    expect((await call(app, await tokenFor(good, idp.issuer))).status).toBe(200);
  });

  it('stops its refresh schedule when the app closes', async () => {
    const idp = await loopbackIssuer();
    idp.keys = [(await signingKey('k1')).jwk];
    const app = await authApp([
      issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, { refreshMs: 50, maxStaleMs: 1000 }),
    ]);
    await sleep(200);
    await app.close();
    const hits = idp.jwksHits;
    expect(hits).toBeGreaterThanOrEqual(2);
    await sleep(200);
    expect(idp.jwksHits).toBe(hits);
  });
});

describe('refresh that cannot be abused', () => {
  it('a flood of random kids costs at most one JWKS fetch per cooldown and never delays a new key by more than one cooldown', async () => {
    // Attack stopped: unauthenticated junk (random kid, garbage signature) re-arming the refresh
    // cooldown so that a newly published key is refused for as long as the flood lasts, and
    // turning the service into an amplifier against the identity provider.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    const k2 = await signingKey('k2');
    idp.keys = [k1.jwk];
    const cooldownMs = 200;
    const app = await authApp(
      [issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, { refreshMs: 60_000, maxStaleMs: 120_000 })],
      { jwksRefreshCooldownMs: cooldownMs },
    );
    expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200);
    const junk = await Promise.all(Array.from({ length: 20 }, (_, i) => tokenFor(k1, idp.issuer, `random-${i}`)));
    const before = idp.jwksHits;
    const floodMs = 2000;
    let stop = false;
    let sent = 0;
    const flood = (async () => {
      const t0 = performance.now();
      while (!stop && performance.now() - t0 < floodMs) {
        await Promise.all(junk.slice(0, 5).map((t) => call(app, t)));
        sent += 5;
        junk.push(...junk.splice(0, 5));
      }
    })();
    await sleep(500);
    idp.keys = [k1.jwk, k2.jwk];
    const fresh = await tokenFor(k2, idp.issuer);
    const delay = await until(async () => (await call(app, fresh)).status === 200, 1500);
    await flood;
    stop = true;
    const fetches = idp.jwksHits - before;
    figure(
      `random-kid flood: ${sent} junk requests in ${floodMs} ms caused ${fetches} JWKS fetches (cooldown ${cooldownMs} ms); new key accepted ${Math.round(delay)} ms after publication`,
    );
    expect(fetches).toBeLessThanOrEqual(Math.ceil(floodMs / cooldownMs) + 1);
    expect(delay).toBeLessThanOrEqual(cooldownMs + 250); // one cooldown, plus polling and request time
  });

  it('a newly published key is fetched on demand by the first request after the cooldown', async () => {
    // Rotation without waiting for the schedule: one refresh for the new kid, none for repeats.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    const k2 = await signingKey('k2');
    idp.keys = [k1.jwk];
    const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })], {
      jwksRefreshCooldownMs: 100,
    });
    expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200);
    idp.keys = [k1.jwk, k2.jwk];
    await sleep(120);
    const t2 = await tokenFor(k2, idp.issuer);
    expect((await call(app, t2)).status).toBe(200);
    expect(idp.jwksHits).toBe(2);
    expect((await call(app, t2)).status).toBe(200);
    expect(idp.jwksHits).toBe(2);
  });

  it('refuses a refresh cooldown longer than 15 s', () => {
    // A longer cooldown would let a flood of unknown kids delay a newly published key past the bound.
    expect(() =>
      createAuthenticator(Fastify(), { issuers: [], clockSkewSeconds: 0, jwksRefreshCooldownMs: 60_000 }),
    ).toThrow(RangeError);
  });

  it('a removed kid gets no cooldown bypass: 50 requests, at most one fetch', async () => {
    // Attack stopped: requests naming a kid that used to exist forcing one JWKS fetch each.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    const k2 = await signingKey('k2');
    idp.keys = [k1.jwk, k2.jwk];
    const app = await authApp([issuerConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri })], {
      jwksRefreshCooldownMs: 10_000,
    });
    const old = await tokenFor(k1, idp.issuer);
    expect((await call(app, old)).status).toBe(200);
    idp.keys = [k2.jwk];
    const before = idp.jwksHits;
    const results = await Promise.all(Array.from({ length: 50 }, () => call(app, old)));
    expect(idp.jwksHits - before).toBeLessThanOrEqual(1);
    expect(results.every((r) => r.status === 200 || r.status === 401)).toBe(true);
  });

  it('a simulated 30 s random-kid flood at 87 requests/s causes one fetch per cooldown (fake clock)', async () => {
    // Attack stopped: the measured flood (~87/s) against the default 10 s cooldown.
    const idp = await loopbackIssuer();
    idp.keys = [(await signingKey('k1')).jwk];
    let now = 1_000_000;
    const store = createKeyStore({
      issuer: idp.issuer,
      jwksUri: idp.jwksUri,
      refreshIntervalMs: 300_000,
      maxStaleMs: 3_600_000,
      cooldownMs: 10_000,
      timeoutMs: 1000,
      fetchJson: createFetchJson({ maxBytes: 262_144 }),
      now: () => now,
    });
    cleanups.push(async () => store.close());
    await store.refresh();
    const before = idp.jwksHits;
    for (let i = 0; i < 30 * 87; i += 1) {
      now += 1000 / 87;
      if (store.lookup(`random-${i}`, 'RS256').status !== 'found') await store.demand();
    }
    const fetches = idp.jwksHits - before;
    figure(`simulated 30 s flood, ${30 * 87} random-kid requests at 87/s, 10 s cooldown: ${fetches} JWKS fetches`);
    expect(fetches).toBeLessThanOrEqual(3);
  });
});

describe('OIDC discovery', () => {
  it('finds the JWKS through discovery, within the same deadline', async () => {
    // Attack stopped: a hanging discovery endpoint holding requests as a hanging JWKS would.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    idp.keys = [k1.jwk];
    const app = await authApp([issuerConfig({ issuer: idp.issuer, discovery: true })]);
    expect((await call(app, await tokenFor(k1, idp.issuer))).status).toBe(200);
    expect(idp.discoveryHits).toBe(1);

    const hung = await loopbackIssuer();
    hung.behaviour = 'hang';
    const app2 = await authApp([issuerConfig({ issuer: hung.issuer, discovery: true })], { jwksTimeoutMs: 300 });
    const r = await call(app2, await tokenFor(k1, hung.issuer));
    expect(r).toMatchObject({ status: 401, detail: 'The token was rejected: signing keys unavailable' });
    expect(r.ms).toBeLessThan(600);
  });

  it('refuses a discovery document that names another issuer', async () => {
    // Attack stopped: issuer mix-up, one provider's discovery document pointing at keys meant for another.
    const idp = await loopbackIssuer();
    const k1 = await signingKey('k1');
    idp.keys = [k1.jwk];
    idp.discoveryIssuer = 'https://other.example.com';
    const app = await authApp([issuerConfig({ issuer: idp.issuer, discovery: true })]);
    expect(await call(app, await tokenFor(k1, idp.issuer))).toMatchObject({
      status: 401,
      detail: 'The token was rejected: signing keys unavailable',
    });
    expect(idp.jwksHits).toBe(0);
  });
});
