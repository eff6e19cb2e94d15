// A decision: what one request for credentials came to, as the facts the request path learned
// (who asked, for what, the plan, what STS answered). Auth, policy and issuance fill these facts;
// only the decision plugin (src/plugins/decision.ts) turns them into the one audit record, so
// "exactly one record per request" is held by one mechanism, not by call sites. Nothing of HTTP.
import type { AuditEvent, AuditSubject, IssuedFields as IssuedFacts, PlanFields as PlanFacts, Requested as RequestedFacts } from './audit.js';

export type { IssuedFacts, PlanFacts, RequestedFacts };

export interface DecisionFacts {
  /** Aborted when the service must answer before the work is done (the shutdown deadline). */
  readonly signal?: AbortSignal | undefined;
  subject?: AuditSubject;
  profile?: string;
  operation?: string;
  requested?: RequestedFacts;
  plan?: PlanFacts;
  issued?: IssuedFacts;
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
  | { readonly kind: 'denied'; readonly errorCode: string; readonly reason: string }
  | { readonly kind: 'failed'; readonly errorCode: string; readonly reason?: string };

/** The one audit record of a decision. */
export function decisionRecord(facts: DecisionFacts, request: RequestFacts, outcome: Outcome): AuditEvent {
  const base = {
    ...request,
    ...(facts.subject ? { subject: facts.subject } : {}),
    ...(facts.profile !== undefined ? { profile: facts.profile } : {}),
    ...(facts.operation !== undefined ? { operation: facts.operation } : {}),
  };
  if (outcome.kind === 'issued' && facts.plan && facts.issued) {
    return { ...base, ...facts.plan, ...facts.issued, event: 'credentials.issued' };
  }
  if (outcome.kind === 'denied') {
    return { ...base, ...facts.requested, event: 'credentials.denied', errorCode: outcome.errorCode, reason: outcome.reason };
  }
  return {
    ...base,
    ...facts.plan,
    event: 'credentials.failed',
    // An answer of 200 without issued facts cannot happen; were it to, it is recorded as a failure.
    errorCode: outcome.kind === 'failed' ? outcome.errorCode : 'CV_INTERNAL',
    ...(outcome.kind === 'failed' && outcome.reason ? { reason: outcome.reason } : {}),
    ...(facts.upstreamCode ? { upstreamCode: facts.upstreamCode } : {}),
  };
}
