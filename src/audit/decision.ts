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
  if (outcome.kind === 'issued' && facts.presigned && facts.plan && facts.issued) {
    return record('presigned.issued', facts, request, facts.plan, facts.issued, facts.presigned);
  }
  if (outcome.kind === 'issued' && facts.plan && facts.issued) {
    return record('credentials.issued', facts, request, facts.plan, facts.issued);
  }
  if (outcome.kind === 'reused' && facts.plan && facts.issued && facts.reused) {
    const { requestId: issuedForRequestId, roleSessionName } = facts.reused;
    return record('credentials.reused', facts, request, facts.plan, { roleSessionName }, facts.issued, {
      issuedForRequestId,
    });
  }
  if (outcome.kind === 'denied') {
    return record('credentials.denied', facts, request, facts.requested ?? {}, {
      errorCode: outcome.errorCode,
      reason: outcome.reason,
    });
  }
  return record('credentials.failed', facts, request, facts.plan ?? {}, {
    // An answer of 200 without issued facts cannot happen; were it to, it is recorded as a failure.
    errorCode: outcome.kind === 'failed' ? outcome.errorCode : 'CV_INTERNAL',
    ...(outcome.kind === 'failed' && outcome.reason ? { reason: outcome.reason } : {}),
    ...(facts.upstreamCode ? { upstreamCode: facts.upstreamCode } : {}),
  });
}

/**
 * `{ event, ...request, subject, profile, operation, delivery, ...a, ...b, ...c, ...d }`, the
 * common head written once in one object literal: built as a separate object and spread again,
 * it made each record cost ~8 times as much (V8 copies a spread of a fresh object of varying
 * shape slowly), and one record is built per request.
 */
function record<E extends AuditEvent['event'], A extends object, B extends object, C = object, D = object>(
  event: E,
  facts: DecisionFacts,
  request: RequestFacts,
  a: A,
  b: B,
  c?: C,
  d?: D,
) {
  return {
    event,
    ...request,
    ...(facts.subject ? { subject: facts.subject } : {}),
    ...(facts.profile !== undefined ? { profile: facts.profile } : {}),
    ...(facts.operation !== undefined ? { operation: facts.operation } : {}),
    ...(facts.delivery ? { delivery: facts.delivery } : {}),
    ...a,
    ...b,
    ...(c as C),
    ...(d as D),
  };
}
