// Issuance: authorize and plan (pure), call STS (through the narrow issuer), then record exactly
// one audit event and the metrics for the decision. Shared by every route that vends credentials.
import { createHash } from 'node:crypto';
import { markAudited, type AuditLog, type AuditSubject } from './audit/audit.js';
import type { Config } from './config/load.js';
import { toProblem } from './errors.js';
import type { Metrics } from './metrics/metrics.js';
import { PolicyError } from './policy/errors.js';
import { planIssuance, profileClaims, type CredentialRequest, type IssuancePlan } from './policy/plan.js';
import { claimAt, type Principal } from './policy/principal.js';
import { StsError, type CredentialIssuer, type IssuedCredentials } from './sts/issuer.js';

export interface VendContext {
  readonly requestId: string;
  readonly clientIp: string;
  readonly userAgent?: string;
}

export interface Vended {
  readonly plan: IssuancePlan;
  readonly credentials: IssuedCredentials;
}

export interface Vendor {
  vend(principal: Principal, profileName: string, req: CredentialRequest, ctx: VendContext): Promise<Vended>;
}

export interface VendorDeps {
  readonly config: Config;
  readonly issuer: CredentialIssuer;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly now: () => number;
}

export function createVendor({ config, issuer, audit, metrics, now }: VendorDeps): Vendor {
  return {
    async vend(principal, profileName, req, ctx) {
      const base = {
        ...ctx,
        profile: profileName,
        operation: req.operation,
      };
      const profile = config.profiles.get(profileName);
      let plan: IssuancePlan;
      try {
        if (!profile) throw new PolicyError('profile_unknown', `no profile named "${profileName}"`);
        plan = planIssuance(profile, principal, req, ctx.requestId, { wildcardKeys: config.env.CREDVEND_WILDCARD_KEYS });
      } catch (err) {
        if (err instanceof PolicyError) {
          metrics.denied.inc({ reason: err.reason });
          audit.record({
            ...base,
            ...requested(req),
            event: 'credentials.denied',
            subject: subjectOf(principal, profile ? profileClaims(profile) : []),
            errorCode: toProblem(err).code,
            reason: err.reason,
          });
        } else {
          // Not the caller's doing (e.g. a KMS key not resolved): still exactly one record.
          audit.record({ ...base, event: 'credentials.failed', subject: subjectOf(principal, profile ? profileClaims(profile) : []), errorCode: toProblem(err).code });
        }
        markAudited(err);
        throw err;
      }

      const planFields = {
        bucket: plan.bucket,
        ...(plan.keys ? { keys: plan.keys } : {}),
        ...(plan.prefix !== undefined ? { prefix: plan.prefix } : {}),
        roleArn: plan.roleArn,
        roleSessionName: plan.roleSessionName,
        sourceIdentity: plan.sourceIdentity,
        sessionTags: Object.fromEntries(plan.tags.map((t) => [t.Key, t.Value])),
        durationSeconds: plan.durationSeconds,
        policySha256: createHash('sha256').update(plan.policy.json).digest('hex'),
      };
      const subject = subjectOf(principal, plan.claimsUsed);
      const started = now();
      let credentials: IssuedCredentials;
      try {
        credentials = await issuer.issue(plan);
      } catch (err) {
        const sts = err instanceof StsError ? err : undefined;
        metrics.stsCalls.inc({ outcome: sts?.kind ?? 'error', code: sts?.code ?? 'internal' });
        metrics.stsLatency.observe({ outcome: 'error' }, (now() - started) / 1000);
        audit.record({ ...base, ...planFields, event: 'credentials.failed', subject, errorCode: toProblem(err).code, ...(sts ? { upstreamCode: sts.code } : {}) });
        markAudited(err);
        throw err;
      }
      metrics.stsCalls.inc({ outcome: 'success', code: 'none' });
      metrics.stsLatency.observe({ outcome: 'success' }, (now() - started) / 1000);
      metrics.issued.inc({ profile: plan.profile, operation: plan.operation });
      if (credentials.packedPolicySize !== undefined) metrics.packedPolicySize.observe(credentials.packedPolicySize);
      audit.record({
        ...base,
        ...planFields,
        event: 'credentials.issued',
        subject,
        accessKeyId: credentials.accessKeyId,
        expiration: credentials.expiration.toISOString(),
        ...(credentials.packedPolicySize !== undefined ? { packedPolicySize: credentials.packedPolicySize } : {}),
      });
      return { plan, credentials };
    },
  };
}

/** iss, sub and the values of the claims the profile looked at; nothing else of the token. */
function subjectOf(principal: Principal, claimNames: readonly string[]): AuditSubject {
  const claims: Record<string, unknown> = {};
  for (const name of claimNames) {
    const v = claimAt(principal.claims, name);
    if (v === undefined || typeof v !== 'object') claims[name] = v ?? null;
  }
  return { iss: principal.issuer, sub: principal.subject, claims };
}

// A denied request's keys say what was attempted (e.g. "../bob/x"). Capped: the body may hold up
// to 1000 keys of 2 KiB, which must not turn one audit line into megabytes.
const MAX_REQUESTED_KEYS = 10;
const MAX_REQUESTED_LENGTH = 1024;

function requested(req: CredentialRequest): { requestedKeys?: string[]; requestedKeyCount?: number; requestedPrefix?: string } {
  if (req.prefix !== undefined) return { requestedPrefix: req.prefix.slice(0, MAX_REQUESTED_LENGTH) };
  if (!req.keys) return {};
  return { requestedKeys: req.keys.slice(0, MAX_REQUESTED_KEYS).map((k) => k.slice(0, MAX_REQUESTED_LENGTH)), requestedKeyCount: req.keys.length };
}
