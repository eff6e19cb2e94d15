// Every HTTP error of the service, and the one place where domain errors become HTTP.
// Bodies are RFC 9457 problem+json with a stable CV_* code. 5xx bodies never carry upstream text.
import createError from '@fastify/error';
import { AuditUnavailableError } from './audit/audit.js';
import type { DenialReason } from './policy/errors.js';
import { PolicyError } from './policy/errors.js';
import { BaseCredentialsUnavailableError } from './sts/base-credentials.js';
import { OverloadedError } from './sts/gate.js';
import { StsError, type StsFailure } from './sts/sts.js';

export const TokenMissing = createError(
  'CV_TOKEN_MISSING',
  'An Authorization header with a bearer token is required',
  401,
);
export const TokenInvalid = createError('CV_TOKEN_INVALID', 'The token was rejected: %s', 401);
export const AuthorizationAmbiguous = createError('CV_BAD_REQUEST', 'send exactly one Authorization header', 400);
export const NotReady = createError('CV_NOT_READY', 'The service has not finished its start-up checks', 503);
export const ShuttingDown = createError(
  'CV_SHUTTING_DOWN',
  'The service is shutting down; retry (another instance will answer)',
  503,
);
export const UriTooLong = createError('CV_URI_TOO_LONG', 'The request URI is too long', 414);
export const MethodNotAllowed = createError(
  'CV_METHOD_NOT_ALLOWED',
  'Method %s is not allowed here (allowed: %s)',
  405,
);

export interface HttpProblem {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly headers?: Record<string, string>;
}

const POLICY: Record<DenialReason, { status: number; code: string; title: string }> = {
  profile_unknown: { status: 404, code: 'CV_PROFILE_UNKNOWN', title: 'Unknown profile' },
  profile_mismatch: { status: 403, code: 'CV_PROFILE_FORBIDDEN', title: 'Token does not match the profile' },
  claim_missing: { status: 403, code: 'CV_CLAIM_MISSING', title: 'Required claim missing' },
  claim_invalid: { status: 403, code: 'CV_CLAIM_INVALID', title: 'Claim value not usable' },
  operation_not_allowed: { status: 403, code: 'CV_OPERATION_FORBIDDEN', title: 'Operation not allowed by the profile' },
  prefix_grant_not_allowed: {
    status: 403,
    code: 'CV_PREFIX_FORBIDDEN',
    title: 'Prefix grants not allowed by the profile',
  },
  too_many_keys: { status: 400, code: 'CV_TOO_MANY_KEYS', title: 'Too many keys' },
  invalid_key: { status: 400, code: 'CV_INVALID_KEY', title: 'Invalid key' },
  policy_too_large: { status: 422, code: 'CV_POLICY_TOO_LARGE', title: 'Session policy too large' },
  delivery_mismatch: {
    status: 403,
    code: 'CV_DELIVERY_MISMATCH',
    title: 'The profile delivers grants another way (credentials or presigned URLs)',
  },
};

const STS: Record<StsFailure, { status: number; code: string; title: string; detail: string }> = {
  access_denied: {
    status: 502,
    code: 'CV_STS_ACCESS_DENIED',
    title: 'Upstream denied the role',
    detail: 'STS refused to let the service assume the role for this profile',
  },
  rejected: {
    status: 502,
    code: 'CV_STS_REJECTED',
    title: 'Upstream rejected the request',
    detail: 'STS rejected the AssumeRole request for this profile (role missing or misconfigured)',
  },
  throttled: {
    status: 503,
    code: 'CV_STS_THROTTLED',
    title: 'Upstream throttled',
    detail: 'STS is throttling requests; retry later',
  },
  timeout: { status: 504, code: 'CV_STS_TIMEOUT', title: 'Upstream timeout', detail: 'STS did not answer in time' },
  packed_policy_too_large: {
    status: 422,
    code: 'CV_STS_POLICY_TOO_LARGE',
    title: 'Session policy too large',
    detail: 'STS reports the packed session policy and tags are too large: request fewer or shorter keys',
  },
  unavailable: {
    status: 502,
    code: 'CV_STS_UNAVAILABLE',
    title: 'Upstream unavailable',
    detail: 'STS could not be reached or answered with an error',
  },
};

export const RETRY_AFTER_SECONDS = 2;

// The service itself cannot answer right now: each its own code, so a runbook never reads an
// overload or a full audit disk as an STS or role-trust problem.
const UNAVAILABLE = {
  overloaded: {
    status: 503,
    code: 'CV_OVERLOADED',
    title: 'Over capacity',
    detail: 'the service is over capacity; retry shortly',
    headers: { 'retry-after': '1' },
  },
  baseCredentials: {
    status: 503,
    code: 'CV_BASE_CREDENTIALS_UNAVAILABLE',
    title: 'Service credentials unavailable',
    detail: "the service's own AWS credentials are unavailable; retry later",
    headers: { 'retry-after': '5' },
  },
  audit: {
    status: 503,
    code: 'CV_AUDIT_UNAVAILABLE',
    title: 'Audit log unavailable',
    detail: 'no credentials are issued while the audit log cannot be written; retry later',
    headers: { 'retry-after': '5' },
  },
} as const;

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: unknown;
}

/** Maps any thrown error to the problem the caller sees. Unknown errors become an opaque 500. */
export function toProblem(err: unknown): HttpProblem {
  if (err instanceof PolicyError) {
    const p = POLICY[err.reason];
    return { ...p, detail: err.message };
  }
  if (err instanceof StsError) {
    const p = STS[err.kind];
    return { ...p, ...(err.kind === 'throttled' ? { headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } } : {}) };
  }
  if (err instanceof OverloadedError) return UNAVAILABLE.overloaded;
  if (err instanceof BaseCredentialsUnavailableError) return UNAVAILABLE.baseCredentials;
  if (err instanceof AuditUnavailableError) return UNAVAILABLE.audit;
  const e = (err ?? {}) as FastifyLikeError;
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (e.code?.startsWith('CV_') && status < 500)
    return { status, code: e.code, title: titleFor(status), detail: e.message ?? '' };
  if (e.code === 'CV_NOT_READY')
    return { status, code: e.code, title: 'Not ready', detail: e.message ?? '', headers: { 'retry-after': '1' } };
  if (e.code === 'CV_SHUTTING_DOWN')
    return {
      status,
      code: e.code,
      title: 'Shutting down',
      detail: e.message ?? '',
      headers: { 'retry-after': '1', connection: 'close' },
    };
  if (e.code === 'FST_ERR_VALIDATION' || e.validation)
    return { status: 400, code: 'CV_BAD_REQUEST', title: 'Invalid request', detail: e.message ?? 'invalid request' };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return { status: 413, code: 'CV_BODY_TOO_LARGE', title: 'Body too large', detail: 'the request body is too large' };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return {
      status: 415,
      code: 'CV_UNSUPPORTED_MEDIA_TYPE',
      title: 'Unsupported media type',
      detail: 'send application/json',
    };
  if (status === 429)
    return {
      status,
      code: 'CV_RATE_LIMITED',
      title: 'Too many requests',
      detail: 'rate limit exceeded for this caller',
    };
  if (status >= 400 && status < 500) {
    // Fastify's own 4xx (bad JSON, empty body, ...): safe, generic text.
    return { status, code: 'CV_BAD_REQUEST', title: 'Invalid request', detail: safeDetail(e) };
  }
  return {
    status: 500,
    code: 'CV_INTERNAL',
    title: 'Internal error',
    detail: 'an internal error occurred; quote the requestId when reporting it',
  };
}

function safeDetail(e: FastifyLikeError): string {
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
    return 'the body must be valid JSON';
  return 'the request could not be processed';
}

const TITLES: Readonly<Record<number, string>> = {
  400: 'Invalid request',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  414: 'URI too long',
  429: 'Too many requests',
};

function titleFor(status: number): string {
  return TITLES[status] ?? 'Error';
}

export function problemBody(p: HttpProblem, requestId: string): Record<string, unknown> {
  return {
    type: `urn:credvend:problem:${p.code}`,
    title: p.title,
    status: p.status,
    detail: p.detail,
    code: p.code,
    requestId,
  };
}

/**
 * Errors Node's HTTP parser answers before Fastify sees a request (headers over the size limit,
 * a malformed request line): the raw response, as problem+json like every other error.
 */
export function clientErrorResponse(err: { code?: string }, requestId: string): string {
  const p: HttpProblem =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? {
          status: 431,
          code: 'CV_HEADERS_TOO_LARGE',
          title: 'Request header fields too large',
          detail: 'the request line and headers are too large',
        }
      : { status: 400, code: 'CV_BAD_REQUEST', title: 'Invalid request', detail: 'the request could not be parsed' };
  const body = JSON.stringify(problemBody(p, requestId));
  const reason = p.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  return `HTTP/1.1 ${p.status} ${reason}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`;
}
