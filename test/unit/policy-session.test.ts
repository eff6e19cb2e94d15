import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { Caller } from '../../src/policy/caller.js';
import {
  clampDuration,
  defaultSourceIdentity,
  MIN_DURATION_SECONDS,
  ROLE_CHAINING_MAX_SECONDS,
  roleSessionName,
} from '../../src/policy/session.js';

const STS_SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const REQUEST_ID = '3f2b8c1e-9a4d-4c1b-8e7f-2a6d5b4c3e21';

function caller(subject: string, issuer = 'https://gitlab.example.com', claims: Record<string, unknown> = {}): Caller {
  return { issuer, subject, audiences: ['credvend'], claims: { sub: subject, ...claims } };
}

describe('roleSessionName', () => {
  it.each([
    ['a plain subject', 'alice'],
    ['a GitLab CI subject', 'project_path:group/app:ref_type:branch:ref:main'],
    ['an e-mail address', 'alice@example.com'],
    ['a 300-character subject', 'x'.repeat(300)],
    ['a subject made only of unicode', '日本語のユーザー'],
    ['a subject made only of emoji', '\u{1F600}\u{1F601}'],
    ['a subject made only of symbols', '!#%&*()[]{}<>?/\\|'],
    ['a one-character subject', 'a'],
    ['an empty subject', ''],
  ])('is 2-64 characters of [\\w+=,.@-] for %s', (_name, subject) => {
    // Attack: an out-of-charset or over-long name makes AssumeRole fail (denial of service) or, if
    // passed unsanitised, lets a caller forge what CloudTrail shows.
    // Act
    const name = roleSessionName(caller(subject), REQUEST_ID);
    // Assess
    expect(name).toMatch(STS_SESSION_NAME);
  });

  it('holds for arbitrary subjects and request ids', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ maxLength: 80 }), (subject, rid) => {
        expect(roleSessionName(caller(subject), rid)).toMatch(STS_SESSION_NAME);
      }),
      { numRuns: 1000 },
    );
  });

  it('differs for the same sub from two issuers', () => {
    // Attack: sub "alice" at a rogue-but-allowed issuer impersonating sub "alice" of the corporate
    // IdP in CloudTrail and in any condition keyed on the session name.
    // Prepare
    const a = caller('alice', 'https://idp-a.example.com');
    const b = caller('alice', 'https://idp-b.example.com');
    // Act / Assess
    expect(roleSessionName(a, REQUEST_ID)).not.toBe(roleSessionName(b, REQUEST_ID));
  });

  it('differs for two subjects that sanitise alike', () => {
    // Attack: "alice/x" and "alice:x" both read "alice-x"; the hash keeps the sessions apart.
    expect(roleSessionName(caller('alice/x'), REQUEST_ID)).not.toBe(roleSessionName(caller('alice:x'), REQUEST_ID));
  });

  it('differs per request id, so each session joins its own audit record', () => {
    // Attack: two sessions with one name cannot be told apart in CloudTrail, hiding misuse.
    const p = caller('alice');
    expect(roleSessionName(p, REQUEST_ID)).not.toBe(roleSessionName(p, '9c1d7e2a-0b3f-4a6c-9d8e-7f6a5b4c3d2e'));
  });

  it('is derived from issuer and subject only, not from other (caller-influenced) claims', () => {
    // Attack: a caller choosing a display name or other claim to pose as someone else.
    // Prepare
    const plain = caller('alice');
    const decorated = caller('alice', undefined, { name: 'Bob the Admin', preferred_username: 'bob' });
    // Act / Assess
    expect(roleSessionName(decorated, REQUEST_ID)).toBe(roleSessionName(plain, REQUEST_ID));
  });

  it('keeps the subject readable at the front', () => {
    expect(roleSessionName(caller('alice'), REQUEST_ID)).toMatch(/^alice\.[0-9a-f]{8}\.3f2b8c1e-9a4/);
  });
});

describe('defaultSourceIdentity', () => {
  it.each(['alice', 'a', '', 'x'.repeat(100), '日本', 'aws:root', 'AWS:x'])(
    'is 2-64 STS-safe characters and never starts with aws: (%j)',
    (subject) => {
      // Attack: SourceIdentity persists through role chaining; an invalid one fails AssumeRole and an
      // "aws:" one is reserved by AWS.
      const id = defaultSourceIdentity(caller(subject));
      expect(id).toMatch(STS_SESSION_NAME);
      expect(id.toLowerCase().startsWith('aws:')).toBe(false);
    },
  );
});

describe('clampDuration', () => {
  const profile = { defaultDurationSeconds: 900, maxDurationSeconds: 1800 };

  it('uses the profile default when none is requested', () => {
    expect(clampDuration(undefined, profile)).toBe(900);
  });

  it('clamps to the profile maximum', () => {
    // Attack: a caller asking for 12 hours of credentials meant to live 30 minutes.
    expect(clampDuration(43_200, profile)).toBe(1800);
  });

  it('caps at 3600 seconds: role chaining cannot exceed one hour', () => {
    // STS refuses DurationSeconds > 3600 for role chaining; asking for more would fail every call.
    const long = { defaultDurationSeconds: 7200, maxDurationSeconds: 43_200 };
    expect(ROLE_CHAINING_MAX_SECONDS).toBe(3600);
    expect(clampDuration(43_200, long)).toBe(3600);
    expect(clampDuration(undefined, long)).toBe(3600);
  });

  it('raises to the STS floor of 900 seconds', () => {
    expect(MIN_DURATION_SECONDS).toBe(900);
    expect(clampDuration(60, profile)).toBe(900);
    expect(clampDuration(0, profile)).toBe(900);
  });

  it('keeps a requested duration inside the bounds', () => {
    expect(clampDuration(1200, profile)).toBe(1200);
  });
});
