// Issuance: authorize and plan (pure), call STS (through the narrow Sts interface), and record
// what was learned in the request's decision facts. Shared by every route that vends credentials.
// It knows nothing of HTTP or of the audit log: the decision plugin turns the facts into the one
// record.
import type { AuditSubject } from './audit/audit.js';
import type { DecisionFacts, IssuedFacts, PlanFacts, RequestedFacts } from './audit/decision.js';
import type { Config, Profile } from './config/load.js';
import { sha256 } from './digest.js';
import { isoTimeCache } from './iso-time.js';
import type { Metrics } from './metrics/metrics.js';
import { PolicyError } from './policy/errors.js';
import { planIssuance, profileClaims, type CredentialRequest, type IssuancePlan } from './policy/plan.js';
import { claimAt, type Caller } from './policy/caller.js';
import { createPlanMemo } from './policy/plan-memo.js';
import { roleSessionName } from './policy/session.js';
import { StsError, type Sts, type IssuedCredentials } from './sts/sts.js';
import { grantKey, type GrantReuse } from './sts/reuse.js';

export interface Vended {
  /** The plan of the session the credentials belong to (a reused grant's: its session name). */
  readonly plan: IssuancePlan;
  readonly credentials: IssuedCredentials;
  /** The credentials' expiry in ISO 8601, as the audit record has it (formatted once). */
  readonly expiration: string;
}

export interface Vendor {
  /** Fills `facts` as it goes (a failure leaves what was known); throws domain errors. */
  vend(
    caller: Caller,
    profileName: string,
    req: CredentialRequest,
    requestId: string,
    facts: DecisionFacts,
  ): Promise<Vended>;
}

export interface VendorDeps {
  readonly config: Config;
  readonly sts: Sts;
  readonly metrics: Metrics;
  readonly now: () => number;
  /** Grant reuse for the profiles that turn it on (`reuse`); without it every grant calls STS. */
  readonly grants?: GrantReuse;
}

export function createVendor({ config, sts, metrics, now, grants }: VendorDeps): Vendor {
  const assumeRole = meteredAssumeRole(sts, metrics, now);
  const opts = { wildcardKeys: config.env.CREDVEND_WILDCARD_KEYS };
  // What a grant's requests share, planned once per caller and request on the reuse path, where
  // no STS call follows and planning was most of the work (src/policy/plan-memo.ts).
  const memo = createPlanMemo<Planned>();
  const planned = (profile: Profile, caller: Caller, req: CredentialRequest, requestId: string): Planned => {
    const plan = planIssuance(profile, caller, req, requestId, opts);
    return { plan, facts: planFacts(plan), key: profile.reuse && grants ? grantKey(caller, plan) : '' };
  };
  return {
    async vend(caller, profileName, req, requestId, facts) {
      const profile = beginDecision(facts, config, caller, profileName, req);
      const reuse = profile.reuse && grants ? { settings: profile.reuse, grants } : undefined;
      const p = reuse
        ? memo.get(caller, profile, req, () => planned(profile, caller, req, requestId))
        : planned(profile, caller, req, requestId);
      // A call this request makes carries its own session name, memoised plan or not: it joins
      // CloudTrail to this record. A reuse's record names the session it handed out.
      const name = roleSessionName(caller, requestId);
      // Counted once per STS call: with grant reuse, only by the request whose call it is.
      const callSts = () => assumeRole(named(p, name).plan, facts.signal);
      let credentials: IssuedCredentials;
      // The session the credentials belong to: this request's, or the reused grant's.
      let used: Pick<Planned, 'plan' | 'facts'>;
      try {
        // After planning (a refused request never reaches the cache), before the gate (a reuse
        // never takes an STS slot).
        if (reuse) {
          const got = await reuse.grants.obtain(
            {
              profile: profile.name,
              settings: reuse.settings,
              key: p.key,
              origin: { requestId, roleSessionName: name },
              signal: facts.signal,
            },
            callSts,
          );
          credentials = got.credentials;
          if (got.reused) facts.reused = got.origin;
          used = named(p, got.origin.roleSessionName);
        } else {
          used = named(p, name);
          credentials = await callSts();
        }
      } catch (err) {
        facts.plan = named(p, name).facts;
        if (err instanceof StsError) facts.upstreamCode = err.code;
        throw err;
      }
      facts.plan = used.facts;
      facts.issued = issuedFacts(credentials);
      return { plan: used.plan, credentials, expiration: facts.issued.expiration };
    },
  };
}

/** A request's plan, its audit fields and (with grant reuse) its grant key, as memoised. */
export interface Planned {
  readonly plan: IssuancePlan;
  readonly facts: PlanFacts;
  readonly key: string;
  /** The plan under the last other session name asked for (see named). */
  renamed?: Pick<Planned, 'plan' | 'facts'>;
}

/**
 * The plan and its audit fields under session name `name`. The copy for another name is kept on
 * the memoised entry: the requests a reused grant or signing session serves all ask for its one
 * name, and copying a plan per request took V8's slow object-copy path.
 */
export function named(p: Planned, name: string): Pick<Planned, 'plan' | 'facts'> {
  if (p.plan.roleSessionName === name) return p;
  if (p.renamed?.plan.roleSessionName !== name) {
    p.renamed = { plan: { ...p.plan, roleSessionName: name }, facts: { ...p.facts, roleSessionName: name } };
  }
  return p.renamed;
}

/**
 * The first facts of every decision (profile, operation, what was asked, who asked) and the
 * profile, or PolicyError profile_unknown. Shared by credentials and presigned issuance.
 */
export function beginDecision(
  facts: DecisionFacts,
  config: Config,
  caller: Caller,
  profileName: string,
  req: CredentialRequest,
): Profile {
  facts.profile = profileName;
  facts.operation = req.operation;
  facts.requested = requested(req);
  const profile = config.profiles.get(profileName);
  facts.subject = subjectOf(caller, profile ? profileClaims(profile) : []);
  if (!profile) throw new PolicyError('profile_unknown', `no profile named "${profileName}"`);
  return profile;
}

/** The audit fields of a plan (the policy by its SHA-256, never its text). */
export function planFacts(plan: IssuancePlan): PlanFacts {
  return {
    bucket: plan.bucket,
    ...(plan.keys ? { keys: plan.keys } : {}),
    ...(plan.prefix !== undefined ? { prefix: plan.prefix } : {}),
    roleArn: plan.roleArn,
    roleSessionName: plan.roleSessionName,
    sourceIdentity: plan.sourceIdentity,
    sessionTags: Object.fromEntries(plan.tags.map((t) => [t.Key, t.Value])),
    durationSeconds: plan.durationSeconds,
    policySha256: sha256(plan.policy.json),
  };
}

// A reused grant's (or signing session's) expiry, formatted once for all the requests it serves.
const expirationIso = isoTimeCache();

export function issuedFacts(c: IssuedCredentials): IssuedFacts {
  return {
    accessKeyId: c.accessKeyId,
    expiration: expirationIso(c.expiration.getTime()),
    ...(c.packedPolicySize !== undefined ? { packedPolicySize: c.packedPolicySize } : {}),
  };
}

/** AssumeRole with its metrics: only STS's own answers count (shed, aborted or unsigned calls never reached it). */
export function meteredAssumeRole(
  sts: Sts,
  metrics: Metrics,
  now: () => number,
): (plan: IssuancePlan, signal: AbortSignal | undefined) => Promise<IssuedCredentials> {
  return async (plan, signal) => {
    const started = now();
    try {
      const c = await sts.assumeRole(plan, signal);
      metrics.stsCalls.inc({ outcome: 'success', code: 'none' });
      metrics.stsLatency.observe({ outcome: 'success' }, (now() - started) / 1000);
      if (c.packedPolicySize !== undefined) metrics.packedPolicySize.observe(c.packedPolicySize);
      return c;
    } catch (err) {
      if (err instanceof StsError) {
        metrics.stsCalls.inc({ outcome: err.kind, code: err.code });
        metrics.stsLatency.observe({ outcome: 'error' }, (now() - started) / 1000);
      }
      throw err;
    }
  };
}

/** iss, sub and the values of the claims the profile looked at; nothing else of the token. */
export function subjectOf(caller: Caller, claimNames: readonly string[]): AuditSubject {
  const claims: Record<string, unknown> = {};
  for (const name of claimNames) {
    const v = claimAt(caller.claims, name);
    if (v === undefined || typeof v !== 'object') claims[name] = v ?? null;
  }
  return { iss: caller.issuer, sub: caller.subject, claims };
}

// A denied request's keys say what was attempted (e.g. "../bob/x"). Capped: the body may hold up
// to 1000 keys of 2 KiB, which must not turn one audit line into megabytes.
const MAX_REQUESTED_KEYS = 10;
const MAX_REQUESTED_LENGTH = 1024;

export function requested(req: CredentialRequest): RequestedFacts {
  if (req.prefix !== undefined) return { requestedPrefix: req.prefix.slice(0, MAX_REQUESTED_LENGTH) };
  if (!req.keys) return {};
  return {
    requestedKeys: req.keys.slice(0, MAX_REQUESTED_KEYS).map((k) => k.slice(0, MAX_REQUESTED_LENGTH)),
    requestedKeyCount: req.keys.length,
  };
}
