import { describe, it, expect } from 'vitest';
import type { MatchConfig } from '../../src/config/schema.js';
import { authorize, globMatch, matches } from '../../src/policy/authorize.js';
import { PolicyError } from '../../src/policy/errors.js';
import type { Caller } from '../../src/policy/caller.js';

const GITLAB = 'https://gitlab.example.com';

function caller(claims: Record<string, unknown>, opts: { issuer?: string; audiences?: string[] } = {}): Caller {
  return {
    issuer: opts.issuer ?? GITLAB,
    subject: 'project_path:group/app',
    audiences: opts.audiences ?? ['credvend'],
    claims,
  };
}

function match(m: Partial<MatchConfig>): MatchConfig {
  return { claims: {}, ...m };
}

function denial(m: MatchConfig, p: Caller): string {
  try {
    authorize(m, p);
  } catch (e) {
    if (e instanceof PolicyError && e.reason === 'profile_mismatch') return e.message;
    throw e;
  }
  return 'allowed';
}

const CI_RULES = match({
  iss: GITLAB,
  aud: 'credvend',
  claims: { project_path: 'group/*', ref_protected: 'true', environment: ['production', 'staging'] },
});
const CI_CLAIMS = { project_path: 'group/app', ref_protected: 'true', environment: 'production' };

describe('authorize', () => {
  it('allows a token that satisfies every rule and reports the claims it used', () => {
    // Act
    const used = authorize(CI_RULES, caller(CI_CLAIMS));
    // Assess
    expect(used).toEqual(['project_path', 'ref_protected', 'environment']);
  });

  it('requires the issuer to be on the list', () => {
    // Attack: a token from another (valid, allowed elsewhere) issuer using this profile's role.
    expect(denial(CI_RULES, caller(CI_CLAIMS, { issuer: 'https://evil.example.com' }))).toContain('iss');
    expect(matches(match({ iss: ['https://a.example.com', GITLAB] }), caller({}))).toBe(true);
  });

  it('requires one of the token audiences to be on the list', () => {
    // Attack: a token minted for another service (another aud) replayed against credvend.
    expect(denial(CI_RULES, caller(CI_CLAIMS, { audiences: ['other-service'] }))).toContain('aud');
    expect(matches(match({ aud: 'credvend' }), caller({}, { audiences: ['other', 'credvend'] }))).toBe(true);
    expect(matches(match({ aud: ['x', 'credvend'] }), caller({}))).toBe(true);
  });

  it('matches a claim exactly when the rule has no *', () => {
    // Attack: an unprotected branch (ref_protected "false") getting production credentials.
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, ref_protected: 'false' }))).toContain('ref_protected');
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, ref_protected: 'true ' }))).toContain('ref_protected');
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, ref_protected: 'TRUE' }))).toContain('ref_protected');
  });

  it('compares boolean and number claims by their string form', () => {
    // GitHub/GitLab send some claims as JSON booleans; "true" in YAML must match them.
    expect(matches(CI_RULES, caller({ ...CI_CLAIMS, ref_protected: true }))).toBe(true);
    expect(matches(match({ claims: { project_id: '42' } }), caller({ project_id: 42 }))).toBe(true);
  });

  it('accepts any of an array of alternatives, and nothing else', () => {
    // Attack: a "review" environment job using the production profile.
    expect(matches(CI_RULES, caller({ ...CI_CLAIMS, environment: 'staging' }))).toBe(true);
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, environment: 'review/feature' }))).toContain('environment');
  });

  it.each<[string, unknown]>([
    ['missing', undefined],
    ['empty', ''],
    ['null', null],
    ['an object', { path: 'group/app' }],
    ['an array', ['group/app']],
  ])('denies when a ruled claim is %s (fail closed)', (_name, value) => {
    // Attack: a token simply omitting the claim (or sending a non-scalar) slipping past the rule.
    // Prepare
    const claims: Record<string, unknown> = { ...CI_CLAIMS };
    if (value === undefined) delete claims.project_path;
    else claims.project_path = value;
    // Act / Assess
    expect(denial(CI_RULES, caller(claims))).toContain('project_path');
  });

  it('denies a missing claim even when the rule is a bare *', () => {
    // Attack: "*" read as "anything, including nothing" would make the claim optional.
    expect(denial(match({ claims: { environment: '*' } }), caller({}))).toContain('environment');
    expect(matches(match({ claims: { environment: '*' } }), caller({ environment: 'x' }))).toBe(true);
  });

  it('anchors globs: group/* does not match evilgroup/x or group-evil/x', () => {
    // Attack: a project in namespace "evilgroup" (or "group-evil") matching rules meant for "group".
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, project_path: 'evilgroup/x' }))).toContain('project_path');
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, project_path: 'group-evil/x' }))).toContain('project_path');
    expect(denial(CI_RULES, caller({ ...CI_CLAIMS, project_path: 'group' }))).toContain('project_path');
    expect(matches(CI_RULES, caller({ ...CI_CLAIMS, project_path: 'group/sub/app' }))).toBe(true);
  });

  it('needs every rule to hold, not just one', () => {
    // Attack: satisfying the easy rule (issuer) while failing the protective one.
    expect(denial(CI_RULES, caller({ project_path: 'group/app', ref_protected: 'true' }))).toContain('environment');
  });
});

describe('globMatch', () => {
  it.each<[string, string, boolean]>([
    ['group/*', 'group/app', true],
    ['group/*', 'group/', true],
    ['group/*', 'evilgroup/x', false],
    ['group/*', 'xgroup/app', false],
    ['group/*', 'Group/app', false],
    ['*', '', true],
    ['*', 'anything', true],
    ['a*', 'a', true],
    ['*b', 'b', true],
    ['a*b', 'ab', true],
    ['a*b', 'a', false],
    ['a*a', 'a', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'acb', false],
    ['a*b*c', 'a-b-b-c', true],
    ['group/*/deploy', 'group/x/deploy', true],
    ['group/*/deploy', 'group/x/deploy/extra', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
    ['exact', 'inexact', false],
    ['a?c', 'abc', false],
    ['a.c', 'abc', false],
  ])('globMatch(%j, %j) is %s', (pattern, value, expected) => {
    // Attack: an unanchored or regex-like glob ('?', '.') matching values the operator never meant.
    expect(globMatch(pattern, value)).toBe(expected);
  });
});
