// The grant reuse cache (src/sts/reuse.ts) on its own: the key, the expiry margin, single flight,
// failures, the bound and clearing. Each test names the mistake it stops.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { planIssuance, type CredentialRequest, type IssuancePlan } from '../../src/policy/plan.js';
import type { Caller } from '../../src/policy/caller.js';
import type { IssuedCredentials } from '../../src/sts/sts.js';
import { createGrantReuse, grantKey, type ObtainRequest, type ReuseSettings } from '../../src/sts/reuse.js';

const ISS = 'https://idp.example.com';
const settings: ReuseSettings = { minRemainingSeconds: 300, maxEntries: 100 };

let minted = 0;
function credentials(now: number, lifetimeSeconds = 900): IssuedCredentials {
  minted += 1;
  return {
    accessKeyId: `ASIAUNIT${String(minted).padStart(8, '0')}`,
    secretAccessKey: `s${minted}`,
    sessionToken: `t${minted}`,
    expiration: new Date(now + lifetimeSeconds * 1000),
  };
}

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (seconds: number) => void (t += seconds * 1000) };
}

function req(key: string, over: Partial<ObtainRequest> = {}): ObtainRequest {
  return {
    profile: 'p',
    settings,
    key,
    origin: { requestId: `rid-${key}`, roleSessionName: `alice.hash.rid-${key}` },
    ...over,
  };
}

describe('grantKey', () => {
  const config = loadConfig({ CREDVEND_CONFIG_FILE: 'p.json' }, () =>
    JSON.stringify({
      issuers: [{ issuer: ISS, audiences: ['a'], hmacSecret: 'x'.repeat(32) }],
      profiles: {
        shared: {
          roleArn: 'arn:aws:iam::123456789012:role/r',
          bucket: 'shared-bucket',
          region: 'eu-west-1',
          prefix: 'shared/',
          allowPrefixGrants: true,
          maxDurationSeconds: 1800,
          sessionTags: { team: '{team}' },
          sourceIdentity: '{login}',
          match: {},
        },
      },
    }),
  );
  const profile = config.profiles.get('shared')!;
  const alice: Caller = {
    issuer: ISS,
    subject: 'alice',
    audiences: ['a'],
    claims: { sub: 'alice', team: 'red', login: 'alice' },
  };
  const plan = (p: Caller, r: Partial<CredentialRequest> = {}, requestId = 'r1'): IssuancePlan =>
    planIssuance(profile, p, { operation: 'upload', keys: ['a.txt'], ...r }, requestId, { wildcardKeys: 'escape' });
  const key = (p: Caller, r: Partial<CredentialRequest> = {}) => grantKey(p, plan(p, r));

  it('ignores only the request id: two requests for the same grant share a key', () => {
    // Mistake stopped: a key that contains the RoleSessionName (the request id) never hits.
    const a = plan(alice, {}, 'request-1');
    const b = plan(alice, {}, 'request-2');
    expect(a.roleSessionName).not.toBe(b.roleSessionName);
    expect(grantKey(alice, a)).toBe(grantKey(alice, b));
  });

  it('differs for another subject, issuer, claim-filled tag or source identity, all else equal', () => {
    // Attack stopped: subject "alice" of another identity provider, another subject whose
    // policy happens to be identical (static prefix), or a token with another tag value or
    // SourceIdentity getting the session minted for alice.
    const base = key(alice);
    expect(key({ ...alice, subject: 'bob' })).not.toBe(base);
    expect(key({ ...alice, issuer: 'https://evil.example.com' })).not.toBe(base);
    expect(key({ ...alice, claims: { ...alice.claims, team: 'blue' } })).not.toBe(base);
    expect(key({ ...alice, claims: { ...alice.claims, login: 'mallory' } })).not.toBe(base);
  });

  it('differs for another key, operation, prefix or duration', () => {
    // Attack stopped: credentials for a.txt (or for upload) answering a request for b.txt (or for
    // download); a 900 s request getting a 1800 s session.
    const base = key(alice);
    expect(key(alice, { keys: ['b.txt'] })).not.toBe(base);
    expect(key(alice, { keys: ['a.txt', 'b.txt'] })).not.toBe(base);
    expect(key(alice, { operation: 'download' })).not.toBe(base);
    expect(key(alice, { keys: undefined, prefix: 'dir/' })).not.toBe(key(alice, { keys: undefined, prefix: 'dir2/' }));
    expect(key(alice, { durationSeconds: 1800 })).not.toBe(base);
  });

  it('follows the exact key list: a reordered list is another grant, a repeated key is not', () => {
    // Choice: the policy lists keys in the order asked, so the key is that exact policy; a
    // reordered list costs one more STS call and never a record naming the wrong policy hash.
    expect(key(alice, { keys: ['a.txt', 'b.txt'] })).not.toBe(key(alice, { keys: ['b.txt', 'a.txt'] }));
    expect(key(alice, { keys: ['a.txt', 'a.txt'] })).toBe(key(alice));
  });

  it('is short and holds nothing readable (the subject and keys are hashed)', () => {
    const k = key({ ...alice, subject: 'alice-with-a-long-name' }, { keys: ['x'.repeat(900)] });
    expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('createGrantReuse', () => {
  it('hands out the held credentials while at least minRemainingSeconds are left, then calls again', async () => {
    // Mistake stopped: credentials handed out seconds before they expire (the caller's upload
    // fails midway) because they were still in the cache.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    let calls = 0;
    const issue = async () => (calls++, credentials(c.now(), 900));
    const first = await grants.obtain(req('k'), issue);
    c.advance(600); // 300 s left: exactly the margin
    const second = await grants.obtain(req('k', { origin: { requestId: 'rid-2', roleSessionName: 'other' } }), issue);
    c.advance(1); // 299 s left
    const third = await grants.obtain(req('k'), issue);
    expect(first.reused).toBe(false);
    expect(second).toMatchObject({
      reused: true,
      credentials: first.credentials,
      origin: { requestId: 'rid-k', roleSessionName: 'alice.hash.rid-k' },
    });
    expect(third.reused).toBe(false);
    expect(third.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
    expect(calls).toBe(2);
  });

  it('never stores credentials that arrive with less than the margin left', async () => {
    // Mistake stopped: a session shorter than the margin (or a skewed STS clock) handed out
    // again when it is already too close to expiry.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    let calls = 0;
    const issue = async () => (calls++, credentials(c.now(), 200));
    await grants.obtain(req('k'), issue);
    await grants.obtain(req('k'), issue);
    expect(calls).toBe(2);
    expect(grants.size()).toBe(0);
  });

  it('shares one call among concurrent identical requests (single flight)', async () => {
    // Mistake stopped: a burst of identical requests (a CI fan-out) costing one AssumeRole each,
    // the STS quota burnt before the first answer is back.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const issue = async () => {
      calls += 1;
      await gate;
      return credentials(c.now());
    };
    const all = Array.from({ length: 50 }, (_, i) =>
      grants.obtain(req('k', { origin: { requestId: `r${i}`, roleSessionName: `s${i}` } }), issue),
    );
    release();
    const got = await Promise.all(all);
    expect(calls).toBe(1);
    expect(new Set(got.map((g) => g.credentials.accessKeyId)).size).toBe(1);
    expect(got.filter((g) => !g.reused)).toHaveLength(1);
    expect(got.every((g) => g.origin.requestId === 'r0')).toBe(true);
  });

  it('never stores a failure: every waiter of the failed flight gets it, the next request calls again', async () => {
    // Attack stopped: one throttled (or shed) call replayed to every later caller until some
    // timeout, turning a blip into an outage; or a waiter left hanging forever.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    let calls = 0;
    let fail!: (err: Error) => void;
    const failing = () => {
      calls += 1;
      return new Promise<IssuedCredentials>((_, reject) => (fail = reject));
    };
    const waiters = Array.from({ length: 5 }, () => grants.obtain(req('k'), failing));
    fail(new Error('throttled'));
    const results = await Promise.allSettled(waiters);
    expect(results.map((r) => r.status)).toEqual(Array(5).fill('rejected'));
    expect(calls).toBe(1);
    expect(grants.size()).toBe(0);
    const next = await grants.obtain(req('k'), async () => (calls++, credentials(c.now())));
    expect(next.reused).toBe(false);
    expect(calls).toBe(2);
  });

  it('lets a waiter give up when its own signal aborts, without failing the flight', async () => {
    // Mistake stopped: a request that must answer now (shutdown) stuck behind another's STS call.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const leader = grants.obtain(req('k'), async () => (await gate, credentials(c.now())));
    const abort = new AbortController();
    const waiter = grants.obtain(req('k', { signal: abort.signal }), () => Promise.reject(new Error('not called')));
    abort.abort(new Error('shutting down'));
    await expect(waiter).rejects.toThrow('shutting down');
    release();
    expect((await leader).reused).toBe(false);
  });

  it('keeps at most maxEntries per profile, dropping the least recently used', async () => {
    // Mistake stopped: an unbounded cache of live secrets growing with every distinct grant.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    const small = { minRemainingSeconds: 300, maxEntries: 2 };
    let calls = 0;
    const issue = async () => (calls++, credentials(c.now()));
    await grants.obtain(req('a', { settings: small }), issue);
    await grants.obtain(req('b', { settings: small }), issue);
    await grants.obtain(req('a', { settings: small }), issue); // a is now the most recent
    await grants.obtain(req('c', { settings: small }), issue); // evicts b
    expect(grants.size('p')).toBe(2);
    expect(calls).toBe(3);
    expect((await grants.obtain(req('a', { settings: small }), issue)).reused).toBe(true);
    expect((await grants.obtain(req('b', { settings: small }), issue)).reused).toBe(false);
    expect(calls).toBe(4);
  });

  it('bounds each profile on its own: one busy profile cannot evict another', async () => {
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    const issue = async () => credentials(c.now());
    await grants.obtain(req('x', { profile: 'quiet' }), issue);
    for (const k of ['a', 'b', 'c', 'd'])
      await grants.obtain(req(k, { profile: 'busy', settings: { minRemainingSeconds: 300, maxEntries: 2 } }), issue);
    expect(grants.size('busy')).toBe(2);
    expect((await grants.obtain(req('x', { profile: 'quiet' }), issue)).reused).toBe(true);
  });

  it('keeps profiles apart even for the same key', async () => {
    // Attack stopped: a grant of profile A answering a request to profile B (another role).
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    const issue = async () => credentials(c.now());
    const a = await grants.obtain(req('same', { profile: 'A' }), issue);
    const b = await grants.obtain(req('same', { profile: 'B' }), issue);
    expect(b.reused).toBe(false);
    expect(b.credentials.accessKeyId).not.toBe(a.credentials.accessKeyId);
  });

  it('clear() drops every grant, and a call in flight at that moment stores nothing', async () => {
    // Mistake stopped: live credentials outliving shutdown in memory, or re-appearing after it.
    const c = clock();
    const grants = createGrantReuse({ now: c.now });
    await grants.obtain(req('a'), async () => credentials(c.now()));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFlight = grants.obtain(req('b'), async () => (await gate, credentials(c.now())));
    grants.clear();
    release();
    await inFlight;
    expect(grants.size()).toBe(0);
  });
});

describe('profile option `reuse`', () => {
  const load = (profile: Record<string, unknown>) =>
    loadConfig({ CREDVEND_CONFIG_FILE: 'p.json' }, () =>
      JSON.stringify({
        issuers: [{ issuer: ISS, audiences: ['a'], hmacSecret: 'x'.repeat(32) }],
        profiles: {
          p: {
            roleArn: 'arn:aws:iam::123456789012:role/r',
            bucket: 'my-bucket',
            region: 'eu-west-1',
            match: {},
            ...profile,
          },
        },
      }),
    ).profiles.get('p')!;
  const problems = (profile: Record<string, unknown>): string => {
    try {
      load(profile);
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    return '';
  };

  it('is off unless set, and `reuse: {}` turns it on with the defaults', () => {
    // Mistake stopped: sessions shared between requests without the operator asking for it.
    expect(load({}).reuse).toBeUndefined();
    expect(load({ reuse: {} }).reuse).toEqual({ minRemainingSeconds: 300, maxEntries: 1000 });
  });

  it('refuses a margin outside 60..3000 s or not below the default duration, and an unbounded cache', () => {
    // Mistake stopped: credentials handed out with seconds left (margin 0), a margin no fresh
    // session can meet (reuse silently never happens), or a cache with no bound.
    expect(problems({ reuse: { minRemainingSeconds: 59 } })).toContain('reuse.minRemainingSeconds');
    expect(problems({ reuse: { minRemainingSeconds: 3001 } })).toContain('reuse.minRemainingSeconds');
    expect(problems({ reuse: { minRemainingSeconds: 900 } })).toMatch(
      /reuse\.minRemainingSeconds: must be below the profile's default duration \(900 s\)/,
    );
    expect(
      problems({ defaultDurationSeconds: 3600, maxDurationSeconds: 3600, reuse: { minRemainingSeconds: 900 } }),
    ).toBe('');
    // The effective duration: 43200 is clamped to 3600 (role chaining).
    expect(
      problems({ defaultDurationSeconds: 43_200, maxDurationSeconds: 43_200, reuse: { minRemainingSeconds: 3000 } }),
    ).toBe('');
    expect(problems({ reuse: { maxEntries: 0 } })).toContain('reuse.maxEntries');
    expect(problems({ reuse: { maxEntries: 100_001 } })).toContain('reuse.maxEntries');
    expect(problems({ reuse: { maxEntries: 10, ttl: 5 } })).toContain('reuse');
    expect(problems({ reuse: true })).toContain('reuse');
  });
});
