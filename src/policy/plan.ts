// planIssuance: everything decided before the AssumeRole call, from a profile, the verified
// caller and the request. Pure, so every rule here is a unit and property test.
import type { Profile } from '../config/load.js';
import { authorize } from './authorize.js';
import { PolicyError } from './errors.js';
import { hasIamSpecialChars, validateRelativeKey } from './keys.js';
import type { Caller } from './caller.js';
import { buildSessionPolicy, type Operation, type SessionPolicy } from './session-policy.js';
import { clampDuration, defaultSourceIdentity, PRESIGN_SESSION_SECONDS, roleSessionName } from './session.js';
import { fillPrefix, fillSourceIdentity, fillTag, templateClaims } from './templates.js';

export interface CredentialRequest {
  readonly operation: Operation;
  readonly keys?: readonly string[] | undefined;
  readonly prefix?: string | undefined;
  readonly durationSeconds?: number | undefined;
}

export interface IssuancePlan {
  readonly profile: string;
  readonly operation: Operation;
  readonly roleArn: string;
  readonly bucket: string;
  readonly region: string;
  /** Full object keys (profile prefix applied) or the full granted prefix. */
  readonly keys?: readonly string[];
  readonly prefix?: string;
  readonly roleSessionName: string;
  readonly durationSeconds: number;
  readonly policy: SessionPolicy;
  readonly policyArns: readonly string[];
  readonly tags: readonly { Key: string; Value: string }[];
  readonly transitiveTagKeys: readonly string[];
  readonly sourceIdentity: string;
  readonly externalId?: string;
  /** Claim names the decision used (match rules and templates), for the audit record. */
  readonly claimsUsed: readonly string[];
}

export interface PlanOptions {
  /** 'reject' for S3-compatible servers that match `${*}` literally (Ceph RGW). */
  readonly wildcardKeys: 'escape' | 'reject';
  /**
   * How the grant leaves the service; a profile serves only its own `delivery`. Threat: a
   * presigned profile (whose uploads are size-capped by a POST policy) asked for credentials,
   * which no size cap binds, or a credentials profile's callers getting the prefix-wide signing
   * session of presigned mode without its operator opting in.
   */
  readonly delivery?: 'credentials' | 'presigned';
}

/** What a request targets, once authorized and checked: full keys, or a full prefix. */
export interface RequestTarget {
  /** The profile prefix filled from the caller's claims. */
  readonly base: string;
  readonly target: { keys: string[] } | { prefix: string };
}

export function planIssuance(
  profile: Profile,
  caller: Caller,
  req: CredentialRequest,
  requestId: string,
  opts: PlanOptions,
): IssuancePlan {
  const { target } = checkRequest(profile, caller, req, opts);
  return planFromTarget(profile, caller, req.operation, target, clampDuration(req.durationSeconds, profile), requestId);
}

/** The session for a checked target (checkRequest's): its policy, name, tags and identity. */
function planFromTarget(
  profile: Profile,
  caller: Caller,
  operation: Operation,
  target: RequestTarget['target'],
  durationSeconds: number,
  requestId: string,
): IssuancePlan {
  const policy = buildSessionPolicy({
    partition: profile.partition,
    bucket: profile.bucket,
    region: profile.region,
    operation,
    target,
    versionedReads: profile.versionedReads,
    kmsKeyArn: profile.kmsKeyArn,
    bucketKeyEnabled: profile.bucketKeyEnabled,
  });
  const tags = Object.entries(profile.sessionTags).map(([Key, t]) => ({ Key, Value: fillTag(t, caller.claims) }));
  const sourceIdentity = profile.sourceIdentity
    ? fillSourceIdentity(profile.sourceIdentity, caller.claims)
    : defaultSourceIdentity(caller);

  return {
    profile: profile.name,
    operation,
    roleArn: profile.roleArn,
    bucket: profile.bucket,
    region: profile.region,
    ...target,
    roleSessionName: roleSessionName(caller, requestId),
    durationSeconds,
    policy,
    policyArns: profile.sessionPolicyArns,
    tags,
    transitiveTagKeys: profile.transitiveTagKeys,
    sourceIdentity,
    ...(profile.externalId ? { externalId: profile.externalId } : {}),
    claimsUsed: profileClaims(profile), // the match rules' claims and the templates' (computed once per profile)
  };
}

/**
 * Authorization, operation, delivery and key rules of a request, without planning a session:
 * presigned mode checks every request this way and signs from a session planned once.
 */
export function checkRequest(
  profile: Profile,
  caller: Caller,
  req: CredentialRequest,
  opts: PlanOptions,
): RequestTarget {
  authorize(profile.match, caller);
  if (profile.delivery !== (opts.delivery ?? 'credentials')) {
    throw new PolicyError(
      'delivery_mismatch',
      `profile "${profile.name}" delivers ${profile.delivery === 'presigned' ? 'presigned URLs' : 'credentials'} only`,
    );
  }
  if (!profile.operations.includes(req.operation)) {
    throw new PolicyError('operation_not_allowed', `profile "${profile.name}" does not allow ${req.operation}`);
  }
  if (profile.kmsKeyId && !profile.kmsKeyArn) {
    // A programming error, not a caller's: start-up resolves every key. Failing here keeps a
    // missing KMS statement from surfacing as confusing AccessDenied errors on upload.
    throw new Error(`profile "${profile.name}": KMS key not resolved`);
  }
  const base = fillPrefix(profile.prefix, caller.claims);
  let target: { keys: string[] } | { prefix: string };
  if (req.prefix !== undefined) {
    if (!profile.allowPrefixGrants) {
      throw new PolicyError(
        'prefix_grant_not_allowed',
        `profile "${profile.name}" grants named keys only, not prefixes`,
      );
    }
    validateRelativeKey(req.prefix, 'prefix', base);
    rejectWildcards(req.prefix, opts);
    target = { prefix: base + req.prefix };
  } else {
    const keys = req.keys ?? [];
    if (keys.length === 0) throw new PolicyError('invalid_key', 'give at least one key (or a prefix)');
    if (keys.length > profile.maxKeys) {
      throw new PolicyError(
        'too_many_keys',
        `profile "${profile.name}" allows at most ${profile.maxKeys} keys per request`,
      );
    }
    for (const k of keys) {
      validateRelativeKey(k, 'key', base);
      rejectWildcards(k, opts);
    }
    target = { keys: [...new Set(keys.map((k) => base + k))] };
  }
  return { base, target };
}

/**
 * The signing session of presigned mode: one prefix grant on the subject's whole profile prefix
 * `base` (the profile need not allow prefix grants to its callers: this session never leaves the
 * process), for as long as role chaining allows. `base` is checkRequest's: the request that
 * needs the session has passed authorization and every key rule already, and every URL signed
 * with it pins one of its keys.
 */
export function planPresignSession(
  profile: Profile,
  caller: Caller,
  operation: Operation,
  base: string,
  requestId: string,
): IssuancePlan {
  return planFromTarget(profile, caller, operation, { prefix: base }, PRESIGN_SESSION_SECONDS, requestId);
}

/**
 * Every claim a profile reads: its match rules and its prefix, session tag and SourceIdentity
 * templates. The audit record shows their values, so a reader can tell why a prefix or a tag
 * came out as it did, not only why the profile matched.
 */
export function profileClaims(
  profile: Pick<Profile, 'match' | 'prefix' | 'sessionTags' | 'sourceIdentity'>,
): readonly string[] {
  let names = claimNames.get(profile);
  if (!names) {
    const templates = [profile.prefix, ...Object.values(profile.sessionTags), profile.sourceIdentity ?? ''];
    names = Object.freeze([...new Set([...Object.keys(profile.match.claims), ...templates.flatMap(templateClaims)])]);
    claimNames.set(profile, names); // profiles are frozen at start-up: computed once, not per request
  }
  return names;
}
const claimNames = new WeakMap<object, readonly string[]>();

function rejectWildcards(key: string, opts: PlanOptions): void {
  if (opts.wildcardKeys === 'reject' && hasIamSpecialChars(key)) {
    throw new PolicyError('invalid_key', "this service does not accept '*', '?' or '$' in keys");
  }
}
