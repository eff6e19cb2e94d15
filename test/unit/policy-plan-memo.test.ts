// The plan memo (src/policy/plan-memo.ts): a plan is served again only to the same verified
// caller object, for the same profile object and request fields; errors are never stored; callers
// that could change are never memoised. Each test names the attack or mistake it stops.
import { describe, expect, it } from 'vitest';
import type { Profile } from '../../src/config/load.js';
import type { Caller } from '../../src/policy/caller.js';
import { createPlanMemo, MAX_KEY_CHARS, MAX_PLANS_PER_CALLER, type PlanInput } from '../../src/policy/plan-memo.js';
import { named, planFacts, type Planned } from '../../src/vend.js';
import { PLAN } from '../helpers/policy.js';

const frozenCaller = (sub: string, claims: Record<string, unknown> = { sub }): Caller =>
  Object.freeze({
    issuer: 'https://idp.example.com',
    subject: sub,
    audiences: ['credvend'],
    claims: Object.freeze(claims),
  });
const profile = (name: string) => ({ name }) as unknown as Profile;
const upload: PlanInput = { operation: 'upload', keys: ['a.txt'] };

/** A memo whose `make` counts its calls and returns a fresh object each time. */
function counted() {
  const memo = createPlanMemo<{ n: number }>();
  let made = 0;
  const get = (caller: Caller, p: Profile, req: PlanInput) => memo.get(caller, p, req, () => ({ n: ++made }));
  return { get, made: () => made, memo };
}

describe('plan memo', () => {
  it('serves a plan again to the same caller, profile and request', () => {
    const m = counted();
    const alice = frozenCaller('alice');
    const p = profile('uploads');
    expect(m.get(alice, p, upload)).toBe(m.get(alice, p, { operation: 'upload', keys: ['a.txt'] }));
    expect(m.made()).toBe(1);
  });

  it('never serves one token’s plan to another, even with identical claims', () => {
    // Attack stopped: bob (or alice's other token, verified separately) given a plan made for
    // another caller object: another prefix, tags or grant key.
    const m = counted();
    const p = profile('uploads');
    const a = m.get(frozenCaller('alice'), p, upload);
    const b = m.get(frozenCaller('alice'), p, upload);
    const c = m.get(frozenCaller('bob'), p, upload);
    expect(new Set([a, b, c]).size).toBe(3);
  });

  it('another profile, operation, key list, key order, prefix or duration is planned anew', () => {
    // Attack stopped: a plan for report.pdf (or for download, a prefix, a longer lifetime, or
    // another profile's role) answering a request for anything else.
    const m = counted();
    const alice = frozenCaller('alice');
    const p = profile('uploads');
    const variants: [Profile, PlanInput][] = [
      [p, upload],
      [profile('mirror'), upload],
      [profile('uploads'), upload], // same name, another profile object (never the stale one)
      [p, { operation: 'download', keys: ['a.txt'] }],
      [p, { operation: 'upload', keys: ['b.txt'] }],
      [p, { operation: 'upload', keys: ['a.txt', 'b.txt'] }],
      [p, { operation: 'upload', keys: ['b.txt', 'a.txt'] }],
      [p, { operation: 'upload', prefix: 'a.txt' }],
      [p, { operation: 'upload', keys: ['a.txt'], durationSeconds: 1800 }],
      // A key that spells out another key list's JSON is still another request.
      [p, { operation: 'upload', keys: ['a.txt","b.txt'] }],
    ];
    const plans = variants.map(([prof, req]) => m.get(alice, prof, req));
    expect(new Set(plans).size).toBe(variants.length);
  });

  it('stores no refusal: a refused request is checked again every time', () => {
    // Attack stopped: a denial skipped, or a refused request's half-made plan served later.
    const memo = createPlanMemo<string>();
    const alice = frozenCaller('alice');
    const p = profile('uploads');
    let checks = 0;
    const refuse = () => {
      checks += 1;
      throw new Error('denied');
    };
    expect(() => memo.get(alice, p, upload, refuse)).toThrow('denied');
    expect(() => memo.get(alice, p, upload, refuse)).toThrow('denied');
    expect(checks).toBe(2);
    expect(memo.get(alice, p, upload, () => 'granted')).toBe('granted');
  });

  it('never memoises a caller or claims that could change', () => {
    // Attack stopped: claims edited after a plan was made (a template value, a match claim)
    // while the stale plan is still served.
    const m = counted();
    const p = profile('uploads');
    const mutable: Caller = {
      issuer: 'https://idp.example.com',
      subject: 'alice',
      audiences: [],
      claims: { sub: 'alice' },
    };
    const mutableClaims = Object.freeze({ ...mutable, claims: { sub: 'alice' } });
    m.get(mutable, p, upload);
    m.get(mutable, p, upload);
    m.get(mutableClaims, p, upload);
    m.get(mutableClaims, p, upload);
    expect(m.made()).toBe(4);
  });

  it(`keeps at most ${MAX_PLANS_PER_CALLER} plans per caller, dropping the oldest`, () => {
    // Mistake stopped: one token asking for ever new key lists growing the process without bound.
    const m = counted();
    const alice = frozenCaller('alice');
    const p = profile('uploads');
    const req = (i: number): PlanInput => ({ operation: 'upload', keys: [`k${i}`] });
    for (let i = 0; i <= MAX_PLANS_PER_CALLER; i++) m.get(alice, p, req(i));
    expect(m.made()).toBe(MAX_PLANS_PER_CALLER + 1);
    m.get(alice, p, req(MAX_PLANS_PER_CALLER)); // the newest: still held
    expect(m.made()).toBe(MAX_PLANS_PER_CALLER + 1);
    m.get(alice, p, req(0)); // the oldest: dropped, planned again
    expect(m.made()).toBe(MAX_PLANS_PER_CALLER + 2);
  });

  it('does not memoise a request with many or long keys', () => {
    // Mistake stopped: an authenticated caller growing the process with large distinct requests
    // (up to the body limit each), memoised for as long as its token is cached.
    const m = counted();
    const alice = frozenCaller('alice');
    const p = profile('uploads');
    const big: PlanInput = { operation: 'upload', keys: ['k'.repeat(MAX_KEY_CHARS)] };
    m.get(alice, p, big);
    m.get(alice, p, big);
    expect(m.made()).toBe(2);
  });
});

describe('a memoised plan under another session name (named)', () => {
  it('always carries the name asked for, in the plan and its audit fields, and leaves the entry as it was', () => {
    // Mistake stopped: a request's STS call (or a reuse's record) carrying the session name of
    // whichever request asked before it, through the copy kept on the shared entry.
    const p: Planned = { plan: PLAN, facts: planFacts(PLAN), key: 'k' };
    expect(named(p, PLAN.roleSessionName)).toBe(p);
    for (const name of ['a', 'a', 'b', 'a', PLAN.roleSessionName, 'b']) {
      const n = named(p, name);
      expect([n.plan.roleSessionName, n.facts.roleSessionName]).toEqual([name, name]);
      expect(n.plan.policy).toBe(PLAN.policy);
    }
    expect([p.plan.roleSessionName, p.facts.roleSessionName]).toEqual([PLAN.roleSessionName, PLAN.roleSessionName]);
    expect(named(p, 'b')).toBe(named(p, 'b')); // kept while the same name is asked for
  });
});
