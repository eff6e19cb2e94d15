// Property tests of the policy core: whatever keys and claim values arrive, planIssuance either
// refuses (PolicyError, a 4xx) or grants exactly the requested objects inside the caller's own
// prefix, and IAM (per iam-simulate) agrees.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { loadConfig, type Profile } from '../../src/config/load.js';
import { PolicyError, type DenialReason } from '../../src/policy/errors.js';
import { escapeIamWildcards, MAX_KEY_BYTES } from '../../src/policy/keys.js';
import { planIssuance, type CredentialRequest, type IssuancePlan } from '../../src/policy/plan.js';
import type { Caller } from '../../src/policy/caller.js';
import { fillPrefix } from '../../src/policy/templates.js';
import { evaluateSession } from '../helpers/simulate.js';

const RUNS = 1000; // per property; every property below uses it
const SIM_RUNS = 1000; // the simulator takes well under 0.1 ms per decision, so the full count fits

const ISSUER = 'https://gitlab.example.com';
const BUCKET = 'tenant-bucket';
const OBJECT_BASE = `arn:aws:s3:::${BUCKET}/`;
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const TEMPLATE = 'uploads/{sub}/';
const MAX_KEYS = 5;

function loadProfile(over: Record<string, unknown>, kmsKeyArn?: string): Profile {
  const file = {
    issuers: [{ issuer: ISSUER, audiences: ['credvend'], jwksUri: `${ISSUER}/oauth/discovery/keys` }],
    profiles: {
      p: {
        roleArn: 'arn:aws:iam::123456789012:role/credvend-uploads',
        bucket: BUCKET,
        region: 'eu-west-1',
        prefix: TEMPLATE,
        maxKeys: MAX_KEYS,
        match: { iss: ISSUER },
        ...over,
      },
    },
  };
  const p = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.json' }, () => JSON.stringify(file)).profiles.get('p');
  if (!p) throw new Error('profile not loaded');
  return kmsKeyArn ? { ...p, kmsKeyArn } : p;
}

const PROFILES = {
  plain: loadProfile({}),
  kms: loadProfile({}, KEY_ARN),
  bucketKey: loadProfile({ bucketKeyEnabled: true }, KEY_ARN),
  prefixGrants: loadProfile({ allowPrefixGrants: true }, KEY_ARN),
};
type ProfileName = keyof typeof PROFILES;

function caller(sub: unknown): Caller {
  return { issuer: ISSUER, subject: 'subject', audiences: ['credvend'], claims: { sub } };
}

// ---- arbitraries ------------------------------------------------------------------------------

/** Characters that matter to IAM, S3 paths, our encoding, UTF-8 and logs, plus any code point. */
const nastyChar = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('*', '?', '$', '/', '.', '{', '}', '~', ':', '\\', ' ', '%') },
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'Z', '0', '-', '_') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '\u0000',
      '\n',
      '\u001f',
      '\u007f',
      '\u0085',
      '\u009f',
      '\ud800',
      '\udfff',
      'é',
      '€',
      '\u{1F600}',
      '\ufffd',
    ),
  },
);
/** Anything, including empty, invalid and over-long keys. */
const anyKey = fc.oneof(
  { weight: 19, arbitrary: fc.string({ unit: nastyChar, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: nastyChar, minLength: 980, maxLength: 1100 }) },
);
/** Keys that pass validation but are still full of '*', '?', '$', '.', '/', '{', unicode... */
const plausibleKey = fc.string({ unit: nastyChar, minLength: 1, maxLength: 40 }).filter((k) => keyAcceptable(k, ''));
const keyArb = fc.oneof(plausibleKey, anyKey);
/** Mostly requests that should succeed, so that the grant itself is what gets checked. */
const keysArb = fc.oneof(
  { weight: 3, arbitrary: fc.array(plausibleKey, { minLength: 1, maxLength: MAX_KEYS }) },
  { weight: 2, arbitrary: fc.array(keyArb, { maxLength: MAX_KEYS + 1 }) },
);
const claimStringArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: nastyChar, minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '.', '..', '/', 'alice', 'alice/..', '*', '${aws:username}', '\ud800') },
);
/** A claim as a token may carry it: usually a string, sometimes another JSON type. */
const claimArb = fc.oneof(
  { weight: 8, arbitrary: claimStringArb },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.array(fc.string(), { maxLength: 2 }),
      fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
    ),
  },
);

// ---- oracles ----------------------------------------------------------------------------------

const ESCAPE_TOKEN = /\$\{([*?$])\}/g;
const unescape = (s: string): string => s.replace(ESCAPE_TOKEN, '$1');
/** After removing the escapes, no IAM wildcard or variable opener may remain. */
const hasUnescapedSpecial = (s: string): boolean => /[*?$]/.test(s.replace(ESCAPE_TOKEN, ''));

/** An independent statement of the key rules (docs/design.md §1.3), to cross-check validateRelativeKey. */
function keyAcceptable(key: string, base: string): boolean {
  const wellFormed = Buffer.from(key, 'utf8').toString('utf8') === key;
  const segments = key.split('/');
  return (
    key.length > 0 &&
    wellFormed &&
    !/[\u0000-\u001f\u007f-\u009f]/.test(key) &&
    !key.startsWith('/') &&
    !key.includes('//') &&
    !segments.includes('.') &&
    !segments.includes('..') &&
    Buffer.byteLength(base + key, 'utf8') <= MAX_KEY_BYTES
  );
}

const EXPECTED_REASONS: ReadonlySet<DenialReason> = new Set([
  'invalid_key',
  'too_many_keys',
  'claim_missing',
  'claim_invalid',
  'policy_too_large',
]);

type Outcome = { ok: true; plan: IssuancePlan } | { ok: false; reason: DenialReason };

function attempt(p: Profile, sub: unknown, req: CredentialRequest): Outcome {
  try {
    return { ok: true, plan: planIssuance(p, caller(sub), req, 'req-1', { wildcardKeys: 'escape' }) };
  } catch (e) {
    // Anything but a PolicyError (a TypeError, a RangeError) would be a 500: a bug.
    if (!(e instanceof PolicyError)) throw e;
    return { ok: false, reason: e.reason };
  }
}

interface Stmt {
  Effect: string;
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

function statementsOf(plan: IssuancePlan): Stmt[] {
  return plan.policy.document.Statement as Stmt[];
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every KMS statement: this key only, through S3 in the region, for the granted objects only. */
function assertKmsConfined(plan: IssuancePlan, p: Profile, s3Resources: readonly string[]): void {
  const kms = statementsOf(plan).slice(1);
  if (!p.kmsKeyArn) {
    expect(kms).toEqual([]);
    return;
  }
  expect(kms).toHaveLength(1);
  const [st] = kms;
  if (!st) return;
  expect(st.Resource).toBe(KEY_ARN);
  expect(st.Condition?.StringEquals?.['kms:ViaService']).toBe('s3.eu-west-1.amazonaws.com');
  const context = [
    ...list(st.Condition?.StringEquals?.['kms:EncryptionContext:aws:s3:arn']),
    ...list(st.Condition?.StringLike?.['kms:EncryptionContext:aws:s3:arn']),
  ];
  expect(context).toEqual(p.bucketKeyEnabled ? [`arn:aws:s3:::${BUCKET}`] : s3Resources);
}

// ---- properties -------------------------------------------------------------------------------

describe('planIssuance over arbitrary keys and claim values', () => {
  it('refuses with a PolicyError or grants exactly <bucket>/<filled prefix><requested key>, escaped', () => {
    // Attack: any key or claim value that widens the grant, leaves the caller's prefix, names
    // another bucket, or crashes the service (a 500 instead of a 4xx).
    fc.assert(
      fc.property(
        claimArb,
        keysArb,
        fc.constantFrom<'upload' | 'download'>('upload', 'download'),
        fc.constantFrom<ProfileName>('plain', 'kms', 'bucketKey'),
        (sub, keys, operation, profileName) => {
          // Prepare
          const p = PROFILES[profileName];
          // Act
          const out = attempt(p, sub, { operation, keys });
          // Assess
          if (!out.ok) {
            expect(EXPECTED_REASONS.has(out.reason)).toBe(true);
            return;
          }
          const base = fillPrefix(TEMPLATE, { sub });
          // The filled prefix is one encoded segment under uploads/: nothing injected.
          expect(base).toMatch(/^uploads\/[^/*?$]+\/$/);
          expect(['.', '..']).not.toContain(base.slice('uploads/'.length, -1));
          expect(keys.length).toBeGreaterThan(0);
          expect(keys.length).toBeLessThanOrEqual(MAX_KEYS);
          for (const k of keys) expect(keyAcceptable(k, base), JSON.stringify(k)).toBe(true);

          const requested = [...new Set(keys.map((k) => base + k))];
          expect(out.plan.keys).toEqual(requested);
          const [s3, ...rest] = statementsOf(out.plan);
          expect(rest.length).toBeLessThanOrEqual(1);
          const resources = list(s3?.Resource);
          for (const r of resources) {
            expect(r.startsWith(OBJECT_BASE)).toBe(true);
            const raw = r.slice(OBJECT_BASE.length);
            expect(hasUnescapedSpecial(raw), r).toBe(false);
            expect(unescape(raw).startsWith(base)).toBe(true);
          }
          expect(resources.map((r) => unescape(r.slice(OBJECT_BASE.length)))).toEqual(requested);
          expect(out.plan.policy.json.length).toBeLessThanOrEqual(2048);
          assertKmsConfined(out.plan, p, resources);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('refuses invalid keys and accepts valid ones (cross-check with an independent statement of the rules)', () => {
    // Attack: a rule silently dropped from validateRelativeKey (e.g. C1 controls, byte length).
    fc.assert(
      fc.property(keyArb, (key) => {
        // Prepare
        const base = fillPrefix(TEMPLATE, { sub: 'alice' });
        // Act
        const out = attempt(PROFILES.plain, 'alice', { operation: 'upload', keys: [key] });
        // Assess
        const acceptable = keyAcceptable(key, base);
        if (out.ok) expect(acceptable).toBe(true);
        else
          expect(
            out.reason === 'policy_too_large' || (!acceptable && out.reason === 'invalid_key'),
            `${out.reason} ${JSON.stringify(key.slice(0, 80))}`,
          ).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('gives a prefix grant exactly one trailing * after the escaped, filled prefix', () => {
    // Attack: a requested prefix widening itself ("t*/") or escaping the caller's space ("../").
    const prefixArb = fc.oneof(
      anyKey,
      plausibleKey.map((k) => `${k}/`),
      fc.constant(''),
    );
    fc.assert(
      fc.property(claimArb, prefixArb, (sub, prefix) => {
        // Act
        const out = attempt(PROFILES.prefixGrants, sub, { operation: 'upload', prefix });
        // Assess
        if (!out.ok) {
          expect(EXPECTED_REASONS.has(out.reason)).toBe(true);
          return;
        }
        const base = fillPrefix(TEMPLATE, { sub });
        expect(prefix === '' || prefix.endsWith('/')).toBe(true);
        const [s3] = statementsOf(out.plan);
        const resources = list(s3?.Resource);
        expect(resources).toHaveLength(1);
        const r = resources[0] ?? '';
        expect(r.startsWith(OBJECT_BASE) && r.endsWith('*')).toBe(true);
        const raw = r.slice(OBJECT_BASE.length, -1);
        expect(hasUnescapedSpecial(raw), r).toBe(false);
        expect(unescape(raw)).toBe(base + prefix);
        expect(out.plan.prefix).toBe(base + prefix);
        assertKmsConfined(out.plan, PROFILES.prefixGrants, resources);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('iam-simulate agrees', () => {
  /** Keys planIssuance accepts, rich in the characters that matter. */
  const validKey = fc
    .string({ unit: nastyChar, minLength: 1, maxLength: 30 })
    .filter((k) => keyAcceptable(k, 'uploads/alice/'));
  /** A key close to `k`: a suffix, a truncation, a child, a changed character, another case. */
  const nearKey = (k: string): fc.Arbitrary<string> =>
    fc.oneof(
      fc.string({ unit: nastyChar, minLength: 1, maxLength: 3 }).map((s) => k + s),
      fc.nat({ max: Math.max(0, k.length - 1) }).map((n) => k.slice(0, n)),
      fc.constant(`${k}/x`),
      fc
        .tuple(fc.nat({ max: Math.max(0, k.length - 1) }), nastyChar)
        .map(([i, c]) => k.slice(0, i) + c + k.slice(i + 1)),
      fc.constant(k.toUpperCase()),
      fc.constant(k.toLowerCase()),
      validKey,
    );
  // A '*' in a REQUEST resource is a wildcard to the simulator, so "other" keys never have one.
  const pair = validKey.chain((k) =>
    fc.tuple(
      fc.constant(k),
      nearKey(k).filter((o) => o !== k && !o.includes('*')),
    ),
  );

  it('allows the requested key and denies any other key, for both operations', () => {
    fc.assert(
      fc.property(pair, fc.constantFrom<'upload' | 'download'>('upload', 'download'), ([key, other], operation) => {
        // Prepare
        const out = attempt(PROFILES.plain, 'alice', { operation, keys: [key] });
        if (!out.ok) throw new Error(`a valid key was refused: ${out.reason}`);
        const policy = out.plan.policy.document;
        const action = operation === 'upload' ? 's3:PutObject' : 's3:GetObject';
        // Act
        const mine = evaluateSession(policy, { action, resource: `${OBJECT_BASE}uploads/alice/${key}` });
        const theirs = evaluateSession(policy, { action, resource: `${OBJECT_BASE}uploads/alice/${other}` });
        // Assess
        expect(mine).toBe('Allowed');
        expect(theirs, JSON.stringify(other)).not.toBe('Allowed');
      }),
      { numRuns: SIM_RUNS },
    );
  });

  it("denies the same key in another tenant's prefix", () => {
    const tenant = claimStringArb.filter(
      (s) => s !== '' && s !== 'alice' && Buffer.from(s, 'utf8').toString('utf8') === s,
    );
    fc.assert(
      fc.property(
        validKey.filter((k) => !k.includes('*')),
        tenant,
        (key, victim) => {
          // Prepare
          const out = attempt(PROFILES.plain, 'alice', { operation: 'upload', keys: [key] });
          if (!out.ok) throw new Error(`a valid key was refused: ${out.reason}`);
          const victimKey = fillPrefix(TEMPLATE, { sub: victim }) + key;
          // Act / Assess
          expect(
            evaluateSession(out.plan.policy.document, { action: 's3:PutObject', resource: OBJECT_BASE + victimKey }),
          ).not.toBe('Allowed');
        },
      ),
      { numRuns: SIM_RUNS },
    );
  });
});

describe('tenant prefixes', () => {
  it('never nest: two different claim values give prefixes neither of which starts the other', () => {
    // Attack: tenant A's keys landing in tenant B's space. The trailing '/' plus an encoding
    // without '/' makes "uploads/a/" never a prefix of "uploads/ab/" (and vice versa).
    // Note: the claim's string form is what counts; 42 and "42" are the same tenant.
    const lookAlike = fc.constantFrom('/', '~2F', '.', '~2E', '..', '~', '~7E', '\ufffd', '~EF~BF~BD', '*', '~2A', '');
    const near = fc
      .tuple(claimStringArb, lookAlike, lookAlike, claimStringArb)
      .map(([h, x, y, t]): [string, string] => [h + x + t, h + y + t]);
    const pairArb = fc.oneof(fc.tuple(claimStringArb, claimStringArb), near);
    const template = fc.constantFrom('uploads/{sub}/', 't-{sub}/', '{sub}/', '{org}/{sub}/');
    fc.assert(
      fc.property(pairArb, template, validKeyFor(), ([a, b], tpl, key) => {
        fc.pre(a !== b);
        // Act
        const fa = tryFill(tpl, a);
        const fb = tryFill(tpl, b);
        // Assess
        if (fa === undefined || fb === undefined) return; // refused (claim_missing / claim_invalid): no prefix at all
        expect(fa).not.toBe(fb);
        expect(fa.startsWith(fb)).toBe(false);
        expect(fb.startsWith(fa)).toBe(false);
        expect((fa + key).startsWith(fb)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});

function validKeyFor(): fc.Arbitrary<string> {
  return fc.string({ unit: nastyChar, minLength: 1, maxLength: 20 }).filter((k) => keyAcceptable(k, ''));
}

function tryFill(template: string, sub: string): string | undefined {
  try {
    return fillPrefix(template, { sub, org: 'acme' });
  } catch (e) {
    if (e instanceof PolicyError && (e.reason === 'claim_missing' || e.reason === 'claim_invalid')) return undefined;
    throw e;
  }
}

// Keeps escapeIamWildcards honest as the inverse of `unescape` used above.
describe('escape/unescape', () => {
  it('round-trips every string', () => {
    fc.assert(
      fc.property(fc.string({ unit: nastyChar, maxLength: 40 }), (s) => {
        const e = escapeIamWildcards(s);
        expect(unescape(e)).toBe(s);
        expect(hasUnescapedSpecial(e)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});
