// A decision: what one request for credentials came to, as the facts the request path learned
// (who asked, for what, the plan, what STS answered). Auth, policy and issuance fill these facts;
// only the decision plugin (src/plugins/decision.ts) turns them into the one audit record, so
// "exactly one record per request" is held by one mechanism, not by call sites. Nothing of HTTP.
import type {
  AuditEvent,
  AuditSubject,
  IssuedFields as IssuedFacts,
  PlanFields as PlanFacts,
  PresignedFields as PresignedFacts,
  Requested as RequestedFacts,
} from './audit.js';

export type { IssuedFacts, PlanFacts, PresignedFacts, RequestedFacts };

export interface DecisionFacts {
  /** Aborted when the service must answer before the work is done (the shutdown deadline). */
  readonly signal?: AbortSignal | undefined;
  subject?: AuditSubject;
  profile?: string;
  operation?: string;
  requested?: RequestedFacts;
  plan?: PlanFacts;
  issued?: IssuedFacts;
  /** Set when the credentials are a reuse (src/sts/reuse.ts): the session they were issued for. */
  reused?: { readonly requestId: string; readonly roleSessionName: string };
  /** Presigned mode (src/presigned.ts): set from the start of the request. */
  delivery?: 'presigned';
  /** The URLs signed (plan and issued are then the signing session's). */
  presigned?: PresignedFacts;
  /** The upstream's bounded error code (e.g. STS's), for failed decisions. */
  upstreamCode?: string;
}

export interface RequestFacts {
  readonly requestId: string;
  readonly clientIp: string;
  readonly userAgent?: string;
}

export type Outcome =
  | { readonly kind: 'issued' }
  | { readonly kind: 'reused' }
  | { readonly kind: 'denied'; readonly errorCode: string; readonly reason: string }
  | { readonly kind: 'failed'; readonly errorCode: string; readonly reason?: string };

/** The one audit record of a decision (`event` first: what a reader scans for). */
export function decisionRecord(facts: DecisionFacts, request: RequestFacts, outcome: Outcome): AuditEvent {
  const base = {
    ...request,
    ...(facts.subject ? { subject: facts.subject } : {}),
    ...(facts.profile !== undefined ? { profile: facts.profile } : {}),
    ...(facts.operation !== undefined ? { operation: facts.operation } : {}),
    ...(facts.delivery ? { delivery: facts.delivery } : {}),
  };
  if (outcome.kind === 'issued' && facts.presigned && facts.plan && facts.issued) {
    return { event: 'presigned.issued', ...base, ...facts.plan, ...facts.issued, ...facts.presigned };
  }
  if (outcome.kind === 'issued' && facts.plan && facts.issued) {
    return { event: 'credentials.issued', ...base, ...facts.plan, ...facts.issued };
  }
  if (outcome.kind === 'reused' && facts.plan && facts.issued && facts.reused) {
    const { requestId: issuedForRequestId, roleSessionName } = facts.reused;
    return {
      event: 'credentials.reused',
      ...base,
      ...facts.plan,
      roleSessionName,
      ...facts.issued,
      issuedForRequestId,
    };
  }
  if (outcome.kind === 'denied') {
    return {
      event: 'credentials.denied',
      ...base,
      ...facts.requested,
      errorCode: outcome.errorCode,
      reason: outcome.reason,
    };
  }
  return {
    event: 'credentials.failed',
    ...base,
    ...facts.plan,
    // An answer of 200 without issued facts cannot happen; were it to, it is recorded as a failure.
    errorCode: outcome.kind === 'failed' ? outcome.errorCode : 'CV_INTERNAL',
    ...(outcome.kind === 'failed' && outcome.reason ? { reason: outcome.reason } : {}),
    ...(facts.upstreamCode ? { upstreamCode: facts.upstreamCode } : {}),
  };
}
