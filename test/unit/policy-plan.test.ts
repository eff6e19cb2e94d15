import { reasonOf } from '../helpers/policy.js';
import { describe, it, expect } from 'vitest';
import { loadConfig, type Profile } from '../../src/config/load.js';
import { planIssuance, type CredentialRequest, type IssuancePlan, type PlanOptions } from '../../src/policy/plan.js';
import type { Caller } from '../../src/policy/caller.js';

const ISSUER = 'https://gitlab.example.com';
const ESCAPE: PlanOptions = { wildcardKeys: 'escape' };
const REJECT: PlanOptions = { wildcardKeys: 'reject' };
const RID = '3f2b8c1e-9a4d-4c1b-8e7f-2a6d5b4c3e21';

/** A profile as the service sees it: through loadConfig, with defaults applied. */
function profile(over: Record<string, unknown> = {}): Profile {
  const file = {
    issuers: [{ issuer: ISSUER, audiences: ['credvend'], jwksUri: `${ISSUER}/oauth/discovery/keys` }],
    profiles: {
      uploads: {
        roleArn: 'arn:aws:iam::123456789012:role/credvend-uploads',
        bucket: 'tenant-bucket',
        region: 'eu-west-1',
        prefix: 'uploads/{sub}/',
        maxKeys: 3,
        match: { iss: ISSUER },
        ...over,
      },
    },
  };
  const p = loadConfig({ CREDVEND_CONFIG_FILE: 'profiles.json' }, () => JSON.stringify(file)).profiles.get('uploads');
  if (!p) throw new Error('profile not loaded');
  return p;
}

function caller(sub: string, claims: Record<string, unknown> = {}): Caller {
  return { issuer: ISSUER, subject: sub, audiences: ['credvend'], claims: { sub, ...claims } };
}

function plan(
  req: CredentialRequest,
  p: Profile = profile(),
  who: Caller = caller('alice'),
  opts: PlanOptions = ESCAPE,
): IssuancePlan {
  return planIssuance(p, who, req, RID, opts);
}

function resources(pl: IssuancePlan): string[] {
  const st = (pl.policy.document.Statement as { Resource: string | string[] }[])[0];
  if (!st) throw new Error('no statement');
  return typeof st.Resource === 'string' ? [st.Resource] : st.Resource;
}

describe('planIssuance', () => {
  it('authorizes before anything else', () => {
    // Attack: a token from another issuer learning anything (or getting a plan) for this profile.
    const stranger: Caller = {
      issuer: 'https://evil.example.com',
      subject: 'alice',
      audiences: ['credvend'],
      claims: { sub: 'alice' },
    };
    expect(reasonOf(() => plan({ operation: 'upload', keys: ['a'] }, profile(), stranger))).toBe('profile_mismatch');
  });

  it('refuses an operation the profile does not allow', () => {
    // Attack: an upload-only CI profile being used to read artifacts.
    expect(reasonOf(() => plan({ operation: 'download', keys: ['a'] }, profile({ operations: ['upload'] })))).toBe(
      'operation_not_allowed',
    );
  });

  it('confines every key to the filled profile prefix', () => {
    // Attack: reaching objects outside the caller's own space.
    // Act
    const pl = plan({ operation: 'upload', keys: ['report.pdf', 'img/a.png'] });
    // Assess
    expect(pl.keys).toEqual(['uploads/alice/report.pdf', 'uploads/alice/img/a.png']);
    expect(resources(pl)).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/alice/report.pdf',
      'arn:aws:s3:::tenant-bucket/uploads/alice/img/a.png',
    ]);
  });

  it('encodes the claim in the prefix so a crafted sub cannot climb into another tenant', () => {
    // Attack: sub "alice/../bob" or "bob/" aiming at uploads/bob/.
    expect(plan({ operation: 'upload', keys: ['x'] }, profile(), caller('alice/../bob')).keys).toEqual([
      'uploads/alice~2F~2E~2E~2Fbob/x',
    ]);
    expect(plan({ operation: 'upload', keys: ['x'] }, profile(), caller('*')).keys).toEqual(['uploads/~2A/x']);
  });

  it('fails closed when the prefix claim is missing', () => {
    // Attack: a token without "sub" landing in "uploads//", shared by all such tokens.
    const noSub: Caller = { issuer: ISSUER, subject: 'alice', audiences: ['credvend'], claims: {} };
    expect(reasonOf(() => plan({ operation: 'upload', keys: ['x'] }, profile(), noSub))).toBe('claim_missing');
  });

  it.each(['../bob/x', '/x', 'a//b', 'a/./b', '', 'a\u0000'])('refuses the invalid key %j', (key) => {
    // Attack: path tricks escaping the prefix; see validateRelativeKey for each rule.
    expect(reasonOf(() => plan({ operation: 'upload', keys: ['ok', key] }))).toBe('invalid_key');
  });

  it('refuses a request with no keys and no prefix', () => {
    expect(reasonOf(() => plan({ operation: 'upload', keys: [] }))).toBe('invalid_key');
    expect(reasonOf(() => plan({ operation: 'upload' }))).toBe('invalid_key');
  });

  it('refuses more keys than maxKeys', () => {
    // Attack: one credential covering thousands of objects (and a policy near STS's limit).
    expect(reasonOf(() => plan({ operation: 'upload', keys: ['a', 'b', 'c', 'd'] }))).toBe('too_many_keys');
    expect(reasonOf(() => plan({ operation: 'upload', keys: ['a', 'b', 'c'] }))).toBe('no error');
  });

  it('collapses duplicate keys', () => {
    const pl = plan({ operation: 'upload', keys: ['a', 'a', 'b'] });
    expect(pl.keys).toEqual(['uploads/alice/a', 'uploads/alice/b']);
    expect(resources(pl)).toHaveLength(2);
  });

  it('refuses a prefix grant where the profile does not allow it', () => {
    // Attack: turning a per-object profile into a whole-directory credential.
    expect(reasonOf(() => plan({ operation: 'upload', prefix: 'team/' }))).toBe('prefix_grant_not_allowed');
  });

  it("grants a prefix under the filled prefix, only with a trailing '/'", () => {
    // Attack: prefix "team" also covering "team2/" and "teammate/".
    // Prepare
    const p = profile({ allowPrefixGrants: true });
    // Act
    const pl = plan({ operation: 'upload', prefix: 'team/' }, p);
    // Assess
    expect(pl.prefix).toBe('uploads/alice/team/');
    expect(pl.keys).toBeUndefined();
    expect(resources(pl)).toEqual(['arn:aws:s3:::tenant-bucket/uploads/alice/team/*']);
    expect(reasonOf(() => plan({ operation: 'upload', prefix: 'team' }, p))).toBe('invalid_key');
    expect(reasonOf(() => plan({ operation: 'upload', prefix: '../' }, p))).toBe('invalid_key');
  });

  it('escapes wildcards in keys by default', () => {
    // Attack: key "*" widening the grant to every object under the prefix.
    const pl = plan({ operation: 'upload', keys: ['*', 'a?', '$x'] });
    expect(pl.keys).toEqual(['uploads/alice/*', 'uploads/alice/a?', 'uploads/alice/$x']);
    expect(resources(pl)).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/alice/${*}',
      'arn:aws:s3:::tenant-bucket/uploads/alice/a${?}',
      'arn:aws:s3:::tenant-bucket/uploads/alice/${$}x',
    ]);
  });

  it.each(['a*', 'a?', 'a$', '${*}'])("refuses %j in 'reject' mode", (key) => {
    // Attack: S3-compatible servers (Ceph RGW) match ${*} literally and may honour a raw '*':
    // such keys must never reach a policy there.
    expect(reasonOf(() => plan({ operation: 'upload', keys: [key] }, profile(), caller('alice'), REJECT))).toBe(
      'invalid_key',
    );
  });

  it("refuses wildcards in a prefix grant in 'reject' mode, but keeps its own trailing *", () => {
    const p = profile({ allowPrefixGrants: true });
    expect(reasonOf(() => plan({ operation: 'upload', prefix: 'a*/' }, p, caller('alice'), REJECT))).toBe(
      'invalid_key',
    );
    expect(resources(plan({ operation: 'upload', prefix: 'a/' }, p, caller('alice'), REJECT))).toEqual([
      'arn:aws:s3:::tenant-bucket/uploads/alice/a/*',
    ]);
  });

  it('refuses a request whose policy would exceed 2048 characters instead of broadening it', () => {
    // Attack: a fallback to a prefix grant would hand out far more than requested.
    const keys = Array.from({ length: 20 }, (_, i) => `${'long-name-'.repeat(8)}${i}`);
    expect(reasonOf(() => plan({ operation: 'upload', keys }, profile({ maxKeys: 100 })))).toBe('policy_too_large');
  });

  it('clamps the duration and carries the role, tags, source identity and external id', () => {
    // Prepare
    const p = profile({
      maxDurationSeconds: 1800,
      sessionTags: { project: '{project_path}' },
      transitiveTagKeys: ['project'],
      sessionPolicyArns: ['arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess'],
      externalId: 'credvend-ci',
    });
    // Act
    const pl = plan(
      { operation: 'upload', keys: ['a'], durationSeconds: 43_200 },
      p,
      caller('alice', { project_path: 'group/app' }),
    );
    // Assess
    expect(pl).toMatchObject({
      profile: 'uploads',
      operation: 'upload',
      roleArn: 'arn:aws:iam::123456789012:role/credvend-uploads',
      bucket: 'tenant-bucket',
      region: 'eu-west-1',
      durationSeconds: 1800,
      tags: [{ Key: 'project', Value: 'group/app' }],
      transitiveTagKeys: ['project'],
      policyArns: ['arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess'],
      sourceIdentity: 'alice',
      externalId: 'credvend-ci',
    });
    expect(pl.roleSessionName).toMatch(/^alice\.[0-9a-f]{8}\./);
  });

  it('refuses a session tag claim with invalid characters rather than rewriting it', () => {
    // Attack: two identities rewritten to the same tag value passing the same ABAC condition.
    const p = profile({ sessionTags: { project: '{project_path}' } });
    expect(
      reasonOf(() => plan({ operation: 'upload', keys: ['a'] }, p, caller('alice', { project_path: 'group#1' }))),
    ).toBe('claim_invalid');
  });
});
