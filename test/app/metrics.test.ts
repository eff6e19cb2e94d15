// Prometheus metrics (docs/design.md §5) as a scraper sees them: the text of GET /metrics is parsed, not
// prom-client's objects. Label values must stay bounded sets (route templates, profile names,
// reasons, codes): a key, a subject or a raw URL in a label would explode cardinality and leak
// data into a system with far wider read access than the audit log.
import { randomUUID } from 'node:crypto';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAdminApp } from '../../src/app.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createReadiness } from '../../src/readiness.js';
import { allSecretsSeen, buildHarness, type Harness } from '../helpers/app.js';

// A small parser for the Prometheus text exposition format (0.0.4), so these tests assert on what
// a scraper reads from /metrics, not on prom-client's objects. It throws on anything malformed.
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;

function parseValue(v: string): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(v)) return Number.NaN; // Prometheus parses floats as Go does: any case
  const n = Number(v);
  if (Number.isNaN(n)) throw new Error(`bad sample value ${v}`);
  return n;
}

function parseLabels(s: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    const name = s.slice(i, eq).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || s[eq + 1] !== '"') throw new Error(`bad label at ${s.slice(i)}`);
    let j = eq + 2;
    let value = '';
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        j++;
        value += s[j] === 'n' ? '\n' : s[j];
      } else {
        value += s[j];
      }
    }
    if (j >= s.length) throw new Error(`unterminated label value in ${s}`);
    if (Object.hasOwn(labels, name)) throw new Error(`duplicate label ${name}`);
    labels[name] = value;
    i = j + 1;
    if (s[i] === ',') i++;
  }
  return labels;
}

function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const f = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      const next = kind === 'HELP' ? { ...f, help: rest } : { ...f, type: rest };
      families.set(name, next);
      current = next;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const [, name, labels, value] = m as unknown as [string, string, string | undefined, string];
    if (!current || !name.startsWith(current.name)) throw new Error(`sample ${name} outside its family`);
    const suffix = name.slice(current.name.length);
    const allowed =
      current.type === 'histogram'
        ? ['_bucket', '_sum', '_count']
        : current.type === 'summary'
          ? ['', '_sum', '_count']
          : [''];
    if (!allowed.includes(suffix)) throw new Error(`sample ${name} does not belong to ${current.type} ${current.name}`);
    current.samples.push({ name, labels: labels ? parseLabels(labels) : {}, value: parseValue(value) });
  }
  return families;
}

/** The value of the one sample with exactly these labels, or undefined. */
function valueOf(f: Family | undefined, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return f?.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}

let harnesses: Harness[] = [];
const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(harnesses.map((x) => x.close()));
  await Promise.all(apps.map((a) => a.close()));
  harnesses = [];
  apps.length = 0;
});

async function harness(env: Record<string, string> = {}): Promise<Harness> {
  const h = await buildHarness({ env: { CREDVEND_METRICS_ON_API_PORT: 'true', ...env } });
  harnesses.push(h);
  return h;
}

async function scrape(app: FastifyInstance): Promise<Map<string, Family>> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(res.body);
}

const silent = pino({ level: 'silent' });
const SECRET_KEY_NAME = 'very-secret-report-7f3a.pdf';
const ciClaims = {
  sub: 'project_path:group/app:ref_type:branch:ref:main',
  project_path: 'group/app',
  ref_protected: 'true',
  environment: 'production',
};

function stsError(name: string, status: number): Error {
  return Object.assign(new Error('not authorized detail-xyz'), { name, $metadata: { httpStatusCode: status } });
}

let n = 0;
function fakeAnswer() {
  n += 1;
  const Credentials = {
    AccessKeyId: `ASIAMETRICS${n}`,
    SecretAccessKey: `metrics-secret-${randomUUID()}`,
    SessionToken: `metrics-token-${randomUUID()}`,
    Expiration: new Date(Date.now() + 900_000),
  };
  allSecretsSeen.add(Credentials.SecretAccessKey);
  allSecretsSeen.add(Credentials.SessionToken);
  return { Credentials, PackedPolicySize: 12 };
}

/** Issued x4, denied of five reasons, two STS failures, a random 404: returns what it sent. */
async function drive(h: Harness) {
  const subject = `subject-${randomUUID()}`;
  const token = await h.token({ sub: subject });
  const post = (
    body: Record<string, unknown>,
    headers: Record<string, string> = { authorization: `Bearer ${token}` },
  ) => h.app.inject({ method: 'POST', url: '/v1/credentials', headers, payload: body });
  const statuses: number[] = [];
  const randomPath = `/v1/credentials/${randomUUID()}/${SECRET_KEY_NAME}`;
  statuses.push((await post({ profile: 'uploads', operation: 'upload', keys: [SECRET_KEY_NAME] })).statusCode);
  statuses.push((await post({ profile: 'uploads', operation: 'upload', keys: ['b'] })).statusCode);
  statuses.push((await post({ profile: 'uploads', operation: 'download', keys: ['c'] })).statusCode);
  statuses.push(
    (
      await h.app.inject({
        method: 'GET',
        url: `/v1/container-credentials/ci?operation=upload&key=${SECRET_KEY_NAME}`,
        headers: { authorization: await h.token(ciClaims) },
      })
    ).statusCode,
  );
  statuses.push((await post({ profile: 'uploads', operation: 'upload', keys: ['a'] }, {})).statusCode); // unauthenticated
  statuses.push((await post({ profile: 'ci', operation: 'upload', keys: ['a'] })).statusCode); // profile_mismatch
  statuses.push((await post({ profile: 'uploads', operation: 'upload', keys: [`../${SECRET_KEY_NAME}`] })).statusCode); // invalid_key
  statuses.push(
    (await post({ profile: 'uploads', operation: 'upload', keys: ['1', '2', '3', '4', '5', '6'] })).statusCode,
  ); // too_many_keys
  statuses.push(
    (await post({ profile: 'uploads', operation: 'upload', keys: ['a'], roleSessionName: 'x' })).statusCode,
  ); // invalid_request
  h.sts.on(AssumeRoleCommand).rejects(stsError('AccessDenied', 403));
  statuses.push((await post({ profile: 'uploads', operation: 'upload', keys: ['a'] })).statusCode);
  h.sts
    .on(AssumeRoleCommand)
    .rejects(Object.assign(stsError('ThrottlingException', 400), { $retryable: { throttling: true } }));
  statuses.push((await post({ profile: 'uploads', operation: 'upload', keys: ['a'] })).statusCode);
  h.sts.on(AssumeRoleCommand).callsFake(fakeAnswer);
  statuses.push(
    (await h.app.inject({ method: 'GET', url: randomPath, headers: { authorization: `Bearer ${token}` } })).statusCode,
  );
  expect(statuses).toEqual([200, 200, 200, 200, 401, 403, 400, 400, 400, 502, 503, 404]);
  return { subject, token, randomPath };
}

const LABELS: Record<string, { type: string; labels: string[] }> = {
  credvend_credentials_issued_total: { type: 'counter', labels: ['operation', 'profile'] },
  credvend_credentials_reused_total: { type: 'counter', labels: ['operation', 'profile'] },
  credvend_credentials_denied_total: { type: 'counter', labels: ['reason'] },
  credvend_sts_calls_total: { type: 'counter', labels: ['code', 'outcome'] },
  credvend_sts_call_duration_seconds: { type: 'histogram', labels: ['outcome'] },
  credvend_packed_policy_size_percent: { type: 'histogram', labels: [] },
  credvend_http_request_duration_seconds: { type: 'histogram', labels: ['method', 'route', 'status_code'] },
  credvend_base_credentials_expiry_timestamp_seconds: { type: 'gauge', labels: [] },
  credvend_build_info: { type: 'gauge', labels: ['node_version', 'version'] },
  credvend_ready: { type: 'gauge', labels: [] },
  credvend_base_credentials_refresh_failures_total: { type: 'counter', labels: ['code'] },
  credvend_audit_write_failures_total: { type: 'counter', labels: ['code'] },
  credvend_audit_writable: { type: 'gauge', labels: [] },
  credvend_requests_shed_total: { type: 'counter', labels: ['reason'] },
  credvend_sts_in_flight: { type: 'gauge', labels: [] },
  credvend_sts_queued: { type: 'gauge', labels: [] },
  credvend_presigned_urls_total: { type: 'counter', labels: ['operation', 'profile'] },
  credvend_presign_sessions_total: { type: 'counter', labels: ['outcome'] },
};

describe('GET /metrics after real traffic', () => {
  it('exposes every family with its type and label names, and counts each decision', async () => {
    // Prepare
    const h = await harness();
    // Act
    await drive(h);
    const families = await scrape(h.app);
    // Assess: the families and their label names
    for (const [name, want] of Object.entries(LABELS)) {
      const f = families.get(name);
      expect(f, name).toBeDefined();
      expect(f!.type, name).toBe(want.type);
      expect(f!.help.length, name).toBeGreaterThan(10);
      for (const s of f!.samples) {
        const names = Object.keys(s.labels)
          .filter((l) => l !== 'le')
          .sort();
        expect(names, `${s.name} ${JSON.stringify(s.labels)}`).toEqual(want.labels);
      }
    }
    expect([...families.keys()].every((n) => n.startsWith('credvend_'))).toBe(true);
    // Issued by profile and operation
    const issued = families.get('credvend_credentials_issued_total');
    expect(issued!.samples).toHaveLength(3);
    expect(valueOf(issued, 'credvend_credentials_issued_total', { profile: 'uploads', operation: 'upload' })).toBe(2);
    expect(valueOf(issued, 'credvend_credentials_issued_total', { profile: 'uploads', operation: 'download' })).toBe(1);
    expect(valueOf(issued, 'credvend_credentials_issued_total', { profile: 'ci', operation: 'upload' })).toBe(1);
    // Denials by reason
    const denied = families.get('credvend_credentials_denied_total');
    expect(Object.fromEntries(denied!.samples.map((s) => [s.labels.reason, s.value]))).toEqual({
      unauthenticated: 1,
      profile_mismatch: 1,
      invalid_key: 1,
      too_many_keys: 1,
      invalid_request: 1,
    });
    // STS calls by outcome and code, and their latency
    const sts = families.get('credvend_sts_calls_total');
    expect(Object.fromEntries(sts!.samples.map((s) => [`${s.labels.outcome}/${s.labels.code}`, s.value]))).toEqual({
      'success/none': 4,
      'access_denied/AccessDenied': 1,
      'throttled/ThrottlingException': 1,
    });
    const latency = families.get('credvend_sts_call_duration_seconds');
    expect(valueOf(latency, 'credvend_sts_call_duration_seconds_count', { outcome: 'success' })).toBe(4);
    expect(valueOf(latency, 'credvend_sts_call_duration_seconds_count', { outcome: 'error' })).toBe(2);
    expect(valueOf(latency, 'credvend_sts_call_duration_seconds_bucket', { outcome: 'success', le: '+Inf' })).toBe(4);
    // Packed policy size: the mocked STS answers 12 (percent) four times
    const packed = families.get('credvend_packed_policy_size_percent');
    expect(valueOf(packed, 'credvend_packed_policy_size_percent_count')).toBe(4);
    expect(valueOf(packed, 'credvend_packed_policy_size_percent_sum')).toBe(48);
    expect(valueOf(packed, 'credvend_packed_policy_size_percent_bucket', { le: '10' })).toBe(0);
    expect(valueOf(packed, 'credvend_packed_policy_size_percent_bucket', { le: '25' })).toBe(4);
    // HTTP duration by route template and status
    const http = families.get('credvend_http_request_duration_seconds');
    const count = (labels: Record<string, string>) =>
      valueOf(http, 'credvend_http_request_duration_seconds_count', labels);
    expect(count({ route: '/v1/credentials', method: 'POST', status_code: '200' })).toBe(3);
    expect(count({ route: '/v1/credentials', method: 'POST', status_code: '400' })).toBe(3);
    expect(count({ route: '/v1/container-credentials/:profile', method: 'GET', status_code: '200' })).toBe(1);
    expect(count({ route: 'unmatched', method: 'GET', status_code: '404' })).toBe(1);
    expect(new Set(http!.samples.map((s) => s.labels.route))).toEqual(
      new Set(['/v1/credentials', '/v1/container-credentials/:profile', 'unmatched']),
    );
    // Build info, readiness and base-credential expiry are present from the start
    expect(
      valueOf(families.get('credvend_build_info'), 'credvend_build_info', {
        version: 'test',
        node_version: process.version,
      }),
    ).toBe(1);
    expect(valueOf(families.get('credvend_ready'), 'credvend_ready')).toBe(0);
    expect(
      valueOf(
        families.get('credvend_base_credentials_expiry_timestamp_seconds'),
        'credvend_base_credentials_expiry_timestamp_seconds',
      ),
    ).toBe(0);
  });

  it('no label value carries a key, a subject, a raw path or a secret: cardinality stays bounded', async () => {
    const h = await harness();
    const { subject, token, randomPath } = await drive(h);
    // A second round with new subjects and keys must not add a single series.
    const before = await scrape(h.app);
    await drive(h);
    const after = await scrape(h.app);
    const series = (m: Map<string, Family>) =>
      [...m.values()].flatMap((f) => f.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`)).sort();
    // The /metrics scrape itself adds one series (route /metrics, 200) the first time round.
    expect(series(after).filter((s) => !s.includes('"/metrics"'))).toEqual(
      series(before).filter((s) => !s.includes('"/metrics"')),
    );
    const values = [...after.values()].flatMap((f) => f.samples.flatMap((s) => Object.values(s.labels)));
    const allowed = /^[A-Za-z0-9_.:+\-/]*$/;
    for (const v of values) expect(v, v).toMatch(allowed);
    const text = JSON.stringify(values);
    for (const needle of [
      SECRET_KEY_NAME,
      subject,
      'alice',
      randomPath.split('/')[3]!,
      token.split('.')[2]!,
      'ASIA',
      ...allSecretsSeen,
    ]) {
      expect(text.includes(needle), needle.slice(0, 20)).toBe(false);
    }
  });
});

describe('where /metrics is served', () => {
  it('not on the API port by default (404), on the admin app', async () => {
    const h = await buildHarness();
    harnesses.push(h);
    expect((await h.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    const admin = await buildAdminApp({
      metrics: h.metrics,
      logger: silent,
      readiness: h.readiness,
      withMetrics: true,
    });
    apps.push(admin);
    await h.app.inject({
      method: 'POST',
      url: '/v1/credentials',
      headers: { authorization: `Bearer ${await h.token()}` },
      payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
    });
    const families = await scrape(admin);
    // The admin app shows the API app's registry.
    expect(
      valueOf(families.get('credvend_credentials_issued_total'), 'credvend_credentials_issued_total', {
        profile: 'uploads',
        operation: 'upload',
      }),
    ).toBe(1);
  });

  it('not on the admin app either when it is served on the API port', async () => {
    const h = await harness();
    const admin = await buildAdminApp({
      metrics: h.metrics,
      logger: silent,
      readiness: h.readiness,
      withMetrics: false,
    });
    apps.push(admin);
    expect((await admin.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
  });
});

describe('registries', () => {
  it('two apps in one process do not share counters', async () => {
    const a = await harness();
    const b = await harness();
    await drive(a);
    const fa = await scrape(a.app);
    const fb = await scrape(b.app);
    expect(a.metrics.registry).not.toBe(b.metrics.registry);
    expect(fa.get('credvend_credentials_issued_total')!.samples.length).toBeGreaterThan(0);
    expect(fb.get('credvend_credentials_issued_total')!.samples).toEqual([]);
    expect(fb.get('credvend_credentials_denied_total')!.samples).toEqual([]);
    expect(fb.get('credvend_sts_calls_total')!.samples).toEqual([]);
  });

  it('default process metrics are on by default, prefixed credvend_, and build info carries the version', async () => {
    // Two sets of default metrics in one process: on the global registry this would throw.
    const one = createMetrics({ version: '1.2.3' });
    const two = createMetrics({ version: '1.2.3' });
    const admin = await buildAdminApp({
      metrics: one,
      logger: silent,
      readiness: createReadiness('ready'),
      withMetrics: true,
    });
    apps.push(admin);
    const families = await scrape(admin);
    for (const name of [
      'credvend_process_cpu_user_seconds_total',
      'credvend_process_resident_memory_bytes',
      'credvend_nodejs_heap_size_used_bytes',
      'credvend_nodejs_eventloop_lag_seconds',
      'credvend_process_start_time_seconds',
    ]) {
      expect(families.has(name), name).toBe(true);
    }
    expect([...families.keys()].filter((n) => !n.startsWith('credvend_'))).toEqual([]);
    expect(
      valueOf(families.get('credvend_build_info'), 'credvend_build_info', {
        version: '1.2.3',
        node_version: process.version,
      }),
    ).toBe(1);
    expect(
      (await two.registry.getMetricsAsJSON()).some((m) => m.name === 'credvend_process_cpu_user_seconds_total'),
    ).toBe(true);
  });

  it('the harness metrics (defaultMetrics: false) hold only the service families', async () => {
    const h = await harness();
    const families = await scrape(h.app);
    expect([...families.keys()].sort()).toEqual(Object.keys(LABELS).sort());
  });
});

describe('the exposition parser used above', () => {
  it('rejects malformed text, so a broken /metrics cannot pass these tests', () => {
    expect(() => parseExposition('# TYPE x counter\nx{a="1" 2')).toThrow();
    expect(() => parseExposition('# TYPE x counter\ny 1')).toThrow();
    expect(() => parseExposition('# TYPE x histogram\nx 1')).toThrow();
    expect(() => parseExposition('# TYPE x counter\nx{a="1",a="2"} 1')).toThrow();
    const f = parseExposition('# HELP x h\n# TYPE x counter\nx{a="q\\"uote",b="n\\nl"} 3\n').get('x');
    expect(f!.samples).toEqual([{ name: 'x', labels: { a: 'q"uote', b: 'n\nl' }, value: 3 }]);
  });
});
