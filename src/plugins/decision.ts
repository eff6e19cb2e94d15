// The decision plugin: every request to a route with `config: { decision: true }` ends in exactly
// one audit record and its metrics, written here and nowhere else.
//
// Threat: a credential that leaves the process unrecorded (the security team never sees it). So
// the record is written in onSend, BEFORE the answer goes out, and an issued credential whose
// record could not be handed to the operating system is replaced by 503 CV_AUDIT_UNAVAILABLE:
// STS minted it, nobody receives it, and the owed record says so once the log recovers.
//
// Shutdown: each decision carries an AbortSignal; at the grace deadline `abortDecisions()` makes
// every request still waiting on an upstream answer 503 CV_SHUTTING_DOWN, recorded like any other.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { setMaxListeners } from 'node:events';
import fp from 'fastify-plugin';
import type { AuditLog } from '../audit/audit.js';
import { decisionRecord, type DecisionFacts, type Outcome } from '../audit/decision.js';
import type { Config } from '../config/load.js';
import { problemBody, toProblem, type HttpProblem } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { PolicyError } from '../policy/errors.js';
import { OPERATIONS, type Operation } from '../policy/session-policy.js';

declare module 'fastify' {
  interface FastifyRequest {
    decision?: DecisionFacts;
    /** Until the decision's one record is written (onSend): the problem the answer reports. */
    decisionPending?: PendingDecision | undefined;
  }
  interface FastifyContextConfig {
    /** Requests to this route are decisions: one audit record each (src/plugins/decision.ts). */
    decision?: boolean;
  }
  interface FastifyInstance {
    /** Ends every decision still in flight with `reason` (the shutdown deadline). */
    abortDecisions(reason: Error): void;
  }
}

export interface DecisionPluginOptions {
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly config: Config;
}

export interface PendingDecision {
  problem?: { readonly problem: HttpProblem; readonly err: unknown };
}

const decisionPlugin: FastifyPluginAsync<DecisionPluginOptions> = async (app, { audit, metrics, config }) => {
  // One signal for every decision: shutdown ends them all at once, and a controller per request
  // would cost more than the rest of this plugin. Each upstream call listens on it while it runs.
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal);
  app.decorateRequest('decision', undefined);
  // A request property, not a WeakMap keyed by the request: a WeakMap insertion per request is a
  // runtime call that measured as much as the rest of this hook.
  app.decorateRequest('decisionPending', undefined);
  app.decorate('abortDecisions', (reason: Error) => shutdown.abort(reason));

  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config.decision) {
      request.decisionPending = {};
      request.decision = { signal: shutdown.signal };
    }
    done();
  });

  // The error handler (src/plugins/errors.ts) reports the problem it answered with; the record names its code.
  app.decorateRequest('reportProblem', function (this: FastifyRequest, problem: HttpProblem, err: unknown) {
    const p = this.decisionPending;
    if (p) p.problem = { problem, err };
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const p = request.decisionPending;
    const facts = request.decision;
    if (!p || !facts) return payload;
    request.decisionPending = undefined; // exactly one record
    const outcome = outcomeOf(reply.statusCode, facts, p.problem);
    if (!facts.profile) Object.assign(facts, requestedProfile(request, config));
    if (!facts.subject && request.caller)
      facts.subject = { iss: request.caller.issuer, sub: request.caller.subject, claims: {} };
    const ua = request.headers['user-agent'];
    // Literals of two fixed shapes: the record spreads this object again (see decisionRecord).
    const asked =
      typeof ua === 'string'
        ? { requestId: request.id, clientIp: request.ip, userAgent: ua.slice(0, 256) }
        : { requestId: request.id, clientIp: request.ip };
    const record = decisionRecord(facts, asked, outcome);
    try {
      await audit.record(record);
    } catch (err) {
      // A refusal carries no credential: it goes out even unrecorded (its record is owed). A reuse
      // does: it is withheld like a fresh issue, and so are presigned URLs (outcome 'issued'):
      // each is a bearer token for its key.
      if (outcome.kind !== 'issued' && outcome.kind !== 'reused') return payload;
      const problem = toProblem(err);
      void reply
        .code(problem.status)
        .headers(problem.headers ?? {})
        .type('application/problem+json');
      return JSON.stringify(problemBody(problem, request.id));
    }
    // Counted once handed over (after the record): presigned URLs are not credentials.
    if (outcome.kind === 'issued' && facts.presigned)
      metrics.presignedUrls.inc(
        { profile: facts.profile ?? 'unknown', operation: facts.operation ?? 'unknown' },
        facts.presigned.urls.length,
      );
    else if (outcome.kind === 'issued')
      metrics.issued.inc({ profile: facts.profile ?? 'unknown', operation: facts.operation ?? 'unknown' });
    else if (outcome.kind === 'reused')
      metrics.reused.inc({ profile: facts.profile ?? 'unknown', operation: facts.operation ?? 'unknown' });
    else if (outcome.kind === 'denied') metrics.denied.inc({ reason: outcome.reason });
    return payload;
  });
};

declare module 'fastify' {
  interface FastifyRequest {
    reportProblem(problem: HttpProblem, err: unknown): void;
  }
}

function outcomeOf(status: number, facts: DecisionFacts, reported: PendingDecision['problem']): Outcome {
  if (status < 400 && facts.issued) return { kind: facts.reused ? 'reused' : 'issued' };
  const problem = reported?.problem;
  const errorCode = problem?.code ?? 'CV_INTERNAL';
  // A 4xx that an upstream answered (STS's PackedPolicyTooLarge) is a failure, not a denial.
  if (status >= 500 || !problem || facts.upstreamCode !== undefined)
    return { kind: 'failed', errorCode, ...(errorCode === 'CV_SHUTTING_DOWN' ? { reason: 'shutdown' } : {}) };
  const err = reported.err;
  const reason =
    err instanceof PolicyError
      ? err.reason
      : status === 401
        ? 'unauthenticated'
        : status === 429
          ? 'rate_limited'
          : 'invalid_request';
  return { kind: 'denied', errorCode, reason };
}

/** The profile and operation a failed request named, only when they are valid values. */
function requestedProfile(request: FastifyRequest, config: Config): { profile?: string; operation?: string } {
  const fields = (v: unknown): Record<string, unknown> =>
    typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  const params = fields(request.params);
  const query = fields(request.query);
  const body = fields(request.body);
  const profile = [params.profile, body.profile].find(
    (v): v is string => typeof v === 'string' && config.profiles.has(v),
  );
  const operation = [query.operation, body.operation].find(
    (v): v is Operation => typeof v === 'string' && (OPERATIONS as readonly string[]).includes(v),
  );
  return { ...(profile ? { profile } : {}), ...(operation ? { operation } : {}) };
}

export default fp(decisionPlugin, { name: 'credvend-decision', fastify: '5.x' });
