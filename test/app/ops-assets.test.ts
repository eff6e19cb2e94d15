// The Grafana dashboard and the Prometheus alerts must not drift from the code: every metric and
// label they query has to exist in createMetrics()'s registry (a renamed metric would otherwise
// leave an empty panel and an alert that can never fire), every service metric is on the
// dashboard, and every alert carries a summary and a runbook that docs/operating.md explains.
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/metrics/metrics.js';

const root = new URL('../../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');

// Labels Prometheus adds to every scraped series.
const TARGET_LABELS = ['job', 'instance'];
const REQUIRED_ALERTS = [
  'CredvendStsErrorRate',
  'CredvendStsThrottling',
  'CredvendDenialSpike',
  'CredvendBaseCredentialsExpiring',
  'CredvendNoIssuance',
  'CredvendNotReady',
  'CredvendAuditUnwritable',
  'CredvendOverloaded',
  'CredvendBaseCredentialsRefreshFailing',
];

interface Known {
  /** Series name -> the label names it carries. */
  readonly series: Map<string, Set<string>>;
  /** The service's own families (not the default process metrics). */
  readonly own: string[];
}

async function knownSeries(registry: Registry, own: Registry): Promise<Known> {
  const series = new Map<string, Set<string>>();
  for (const m of await registry.getMetricsAsJSON()) {
    const labels = new Set((registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? []);
    // Default metrics set some labels without declaring them: take the ones their values carry.
    for (const v of m.values) for (const l of Object.keys(v.labels)) if (l !== 'le' && l !== 'quantile') labels.add(l);
    const type = String(m.type);
    if (type === 'histogram') {
      series.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else if (type === 'summary') {
      series.set(m.name, new Set([...labels, 'quantile']));
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else {
      series.set(m.name, labels);
    }
  }
  return { series, own: (await own.getMetricsAsJSON()).map((m) => m.name) };
}

/** Metric names and label names an expression uses; throws if its brackets do not balance. */
function analyse(expr: string): { metrics: string[]; labels: string[] } {
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const stack: string[] = [];
  for (const ch of unquoted) {
    if ('([{'.includes(ch)) stack.push(ch);
    if (')]}'.includes(ch) && stack.pop() !== '([{'[')]}'.indexOf(ch)]) throw new Error(`unbalanced ${ch} in ${expr}`);
  }
  if (stack.length > 0 || /"/.test(unquoted.replace(/""/g, '')))
    throw new Error(`unbalanced brackets or quotes in ${expr}`);
  const metrics = [...unquoted.matchAll(/\b(credvend_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!);
  const labels: string[] = [];
  for (const m of unquoted.matchAll(/\{([^}]*)\}/g))
    for (const l of m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*""/g)) labels.push(l[1]!);
  for (const m of unquoted.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g))
    labels.push(
      ...m[1]!
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
  for (const m of unquoted.matchAll(
    /label_values\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g,
  ))
    labels.push(m[1]!);
  return { metrics, labels };
}

/** Problems of one expression against the registry: unknown metrics, labels no metric has. */
function problems(expr: string, known: Known): string[] {
  const { metrics, labels } = analyse(expr);
  const out: string[] = [];
  if (metrics.length === 0) out.push(`no credvend_ metric in ${expr}`);
  const available = new Set(TARGET_LABELS);
  for (const m of metrics) {
    const l = known.series.get(m);
    if (!l) out.push(`unknown metric ${m}`);
    else l.forEach((x) => available.add(x));
  }
  for (const l of labels) if (!available.has(l)) out.push(`label ${l} is on none of ${metrics.join(', ')}`);
  return out;
}

async function registryFacts(): Promise<Known> {
  const withDefaults = createMetrics({ version: 'test' });
  const own = createMetrics({ version: 'test', defaultMetrics: false });
  return knownSeries(withDefaults.registry, own.registry);
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string }[];
  panels?: Panel[];
}

function dashboard() {
  return JSON.parse(read('ops/grafana/credvend-dashboard.json')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
  };
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function alertRules(): Rule[] {
  const doc = parseYaml(read('ops/prometheus/alerts.yml')) as { groups: { name: string; rules: Rule[] }[] };
  expect(Array.isArray(doc.groups)).toBe(true);
  for (const g of doc.groups) {
    expect(g.name, 'group name').toMatch(/\S/);
    expect(Array.isArray(g.rules) && g.rules.length > 0, g.name).toBe(true);
  }
  return doc.groups.flatMap((g) => g.rules);
}

describe('the drift checker itself', () => {
  it('flags an unknown metric, a label the metric does not have, and unbalanced brackets', async () => {
    const known = await registryFacts();
    expect(problems('sum by (profile) (rate(credvend_credentials_issued_total[5m]))', known)).toEqual([]);
    expect(problems('rate(credvend_credentials_issue_total[5m])', known)).toEqual([
      'unknown metric credvend_credentials_issue_total',
    ]);
    expect(problems('sum by (subject) (rate(credvend_credentials_issued_total[5m]))', known)).toEqual([
      'label subject is on none of credvend_credentials_issued_total',
    ]);
    expect(problems('credvend_http_request_duration_seconds_count{status="500"}', known)).toEqual([
      'label status is on none of credvend_http_request_duration_seconds_count',
    ]);
    expect(
      problems('histogram_quantile(0.9, sum by (le) (rate(credvend_packed_policy_size_percent_bucket[5m])))', known),
    ).toEqual([]);
    expect(problems('sum by (le) (rate(credvend_packed_policy_size_percent_sum[5m]))', known)).toEqual([
      'label le is on none of credvend_packed_policy_size_percent_sum',
    ]);
    expect(() => analyse('sum(rate(credvend_ready[5m])')).toThrow(/unbalanced/);
    expect(() => analyse('credvend_ready{job="x}')).toThrow(/unbalanced/);
  });
});

describe('ops/grafana/credvend-dashboard.json', () => {
  it('is a Grafana dashboard: uid, title, schemaVersion, unique panel ids, grid positions, a datasource variable', () => {
    const d = dashboard();
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(d.title).toBe('credvend');
    expect(d.schemaVersion).toBeGreaterThanOrEqual(30);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels) {
      expect(p.title, `panel ${p.id}`).toMatch(/\S/);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.gridPos.h, p.title).toBeGreaterThan(0);
      if (p.type !== 'row') {
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        expect(new Set(p.targets!.map((t) => t.refId)).size, p.title).toBe(p.targets!.length);
      }
    }
    expect(d.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
  });

  it('queries only metrics and labels the service exposes, and shows every service metric', async () => {
    const known = await registryFacts();
    const d = dashboard();
    const exprs = d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const v of d.templating.list)
      if (v.type === 'query') exprs.push(typeof v.query === 'string' ? v.query : v.query!.query);
    const found = exprs.flatMap((e) =>
      problems(e.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*'), known),
    );
    expect(found).toEqual([]);
    const used = new Set(exprs.flatMap((e) => analyse(e).metrics).map((m) => m.replace(/_(bucket|sum|count)$/, '')));
    expect(known.own.filter((m) => !used.has(m))).toEqual([]);
  });

  it('has the panels operators look for', () => {
    const titles = dashboard().panels.map((p) => p.title.toLowerCase());
    for (const want of [
      'issued',
      'denials',
      'sts errors',
      'sts latency',
      'http p99',
      'packed policy',
      'time to expiry',
      'ready',
    ]) {
      expect(
        titles.some((t) => t.includes(want)),
        want,
      ).toBe(true);
    }
  });
});

describe('ops/prometheus/alerts.yml', () => {
  it('has the nine alerts, each with a severity, a duration, a summary and a runbook', () => {
    const rules = alertRules();
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    expect(names.sort()).toEqual([...REQUIRED_ALERTS].sort());
    for (const r of rules) {
      expect(r.labels?.severity, r.alert).toMatch(/^(warning|critical)$/);
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(r.annotations?.summary, r.alert).toMatch(/\S{10}/);
      expect(r.annotations?.runbook?.length ?? 0, r.alert).toBeGreaterThan(40);
      expect(r.expr, r.alert).not.toContain('$__'); // Grafana-only variables do not exist in Prometheus
    }
  });

  it('queries only metrics and labels the service exposes', async () => {
    const known = await registryFacts();
    const found = alertRules().flatMap((r) => problems(r.expr, known).map((p) => `${r.alert}: ${p}`));
    expect(found).toEqual([]);
  });

  it('the expressions check what their names say', () => {
    const expr = Object.fromEntries(alertRules().map((r) => [r.alert, r.expr.replace(/\s+/g, ' ')]));
    expect(expr.CredvendStsThrottling).toContain('outcome="throttled"');
    expect(expr.CredvendStsErrorRate).toMatch(/outcome!~"success\|throttled"/);
    expect(expr.CredvendBaseCredentialsExpiring).toMatch(
      /credvend_base_credentials_expiry_timestamp_seconds > 0\) - time\(\) < 600$/,
    );
    expect(expr.CredvendNotReady).toBe('credvend_ready == 0');
    expect(expr.CredvendNoIssuance).toMatch(
      /credvend_http_request_duration_seconds_count.*unless.*credvend_credentials_issued_total/,
    );
    expect(expr.CredvendDenialSpike).toContain('credvend_credentials_denied_total');
  });
});

describe('docs/operating.md', () => {
  it('explains every alert and every service metric', async () => {
    const doc = read('docs/operating.md');
    const missing = [...REQUIRED_ALERTS, ...(await registryFacts()).own].filter((n) => !doc.includes(n));
    expect(missing).toEqual([]);
  });
});
