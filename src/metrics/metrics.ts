// Prometheus metrics on the service's own registry (never prom-client's global one), so two apps
// in one test process do not collide. Label values are bounded sets: profile names from the
// config, operations, reasons and codes from closed lists. Never a key, a subject or a token.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly issued: Counter<'profile' | 'operation'>;
  readonly reused: Counter<'profile' | 'operation'>;
  readonly denied: Counter<'reason'>;
  readonly stsCalls: Counter<'outcome' | 'code'>;
  readonly stsLatency: Histogram<'outcome'>;
  readonly packedPolicySize: Histogram;
  readonly httpDuration: Histogram<'route' | 'method' | 'status_code'>;
  readonly baseCredentialExpiry: Gauge;
  readonly buildInfo: Gauge<'version' | 'node_version'>;
  readonly ready: Gauge;
  readonly baseCredentialRefreshFailures: Counter<'code'>;
  readonly auditWriteFailures: Counter<'code'>;
  readonly auditWritable: Gauge;
  readonly shed: Counter<'reason'>;
  readonly stsInFlight: Gauge;
  readonly stsQueued: Gauge;
  readonly presignedUrls: Counter<'profile' | 'operation'>;
  readonly presignSessions: Counter<'outcome'>;
}

export function createMetrics(opts: { version: string; defaultMetrics?: boolean }): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const m: Metrics = {
    registry,
    issued: new Counter({
      name: 'credvend_credentials_issued_total',
      help: 'Credentials issued, by profile and operation',
      labelNames: ['profile', 'operation'],
      registers,
    }),
    reused: new Counter({
      name: 'credvend_credentials_reused_total',
      help: 'Credentials handed out again to an identical grant (grant reuse, no STS call), by profile and operation',
      labelNames: ['profile', 'operation'],
      registers,
    }),
    denied: new Counter({
      name: 'credvend_credentials_denied_total',
      help: 'Requests denied before any AWS call, by reason',
      labelNames: ['reason'],
      registers,
    }),
    stsCalls: new Counter({
      name: 'credvend_sts_calls_total',
      help: 'sts:AssumeRole calls, by outcome and error code',
      labelNames: ['outcome', 'code'],
      registers,
    }),
    stsLatency: new Histogram({
      name: 'credvend_sts_call_duration_seconds',
      help: 'sts:AssumeRole latency, retries included',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    packedPolicySize: new Histogram({
      name: 'credvend_packed_policy_size_percent',
      help: 'PackedPolicySize returned by STS (percent of the allowed size)',
      buckets: [10, 25, 50, 75, 90, 100],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'credvend_http_request_duration_seconds',
      help: 'HTTP request duration, by route template and status code',
      labelNames: ['route', 'method', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    baseCredentialExpiry: new Gauge({
      name: 'credvend_base_credentials_expiry_timestamp_seconds',
      help: "Expiry (Unix time) of the service's own AWS credentials; 0 when they do not expire",
      registers,
    }),
    buildInfo: new Gauge({
      name: 'credvend_build_info',
      help: 'Build information (always 1)',
      labelNames: ['version', 'node_version'],
      registers,
    }),
    ready: new Gauge({ name: 'credvend_ready', help: '1 once the start-up checks have passed', registers }),
    baseCredentialRefreshFailures: new Counter({
      name: 'credvend_base_credentials_refresh_failures_total',
      help: "Failed fetches of the service's own AWS credentials, by error code",
      labelNames: ['code'],
      registers,
    }),
    auditWriteFailures: new Counter({
      name: 'credvend_audit_write_failures_total',
      help: 'Audit records that could not be written (the decision was refused: fail closed), by error code',
      labelNames: ['code'],
      registers,
    }),
    auditWritable: new Gauge({
      name: 'credvend_audit_writable',
      help: '1 while the audit destination accepts writes; 0 while credentials are refused for want of an audit record',
      registers,
    }),
    shed: new Counter({
      name: 'credvend_requests_shed_total',
      help: 'Requests answered 503 without calling STS because the service was over capacity, by reason',
      labelNames: ['reason'],
      registers,
    }),
    stsInFlight: new Gauge({ name: 'credvend_sts_in_flight', help: 'sts:AssumeRole calls in flight', registers }),
    stsQueued: new Gauge({ name: 'credvend_sts_queued', help: 'Requests waiting for an STS slot', registers }),
    presignedUrls: new Counter({
      name: 'credvend_presigned_urls_total',
      help: 'Presigned URLs and POST forms handed out (presigned mode), by profile and operation',
      labelNames: ['profile', 'operation'],
      registers,
    }),
    presignSessions: new Counter({
      name: 'credvend_presign_sessions_total',
      help: 'Signing sessions used by presigned requests: new = this request called sts:AssumeRole, cached = an existing or in-flight session',
      labelNames: ['outcome'],
      registers,
    }),
  };
  m.auditWritable.set(1);
  m.buildInfo.set({ version: opts.version, node_version: process.version }, 1);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'credvend_' });
  return m;
}
