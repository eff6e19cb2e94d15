// The alert rules (ops/prometheus/alerts.yml) checked with Prometheus' own tools:
// - `promtool check rules`, and `promtool test rules ops/prometheus/alerts.test.yml`: every alert
//   has a case where it fires and a case where it does not;
// - a REAL Prometheus (Debian's /usr/bin/prometheus, on 127.0.0.1, its own TSDB in a temp dir)
//   scrapes a running built credvend's admin port with those rules loaded: the target is up,
//   credvend_build_info is queryable, and every rule is loaded and evaluates without error.
// Prometheus is stopped by its PID. Where promtool or prometheus is missing (Debian package
// `prometheus`: scripts/install-test-deps.sh) each test is skipped with one line saying why.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBuilt,
  freePort,
  ROOT,
  removeTempRoot,
  startIssuer,
  tail,
  tempRoot,
  type Issuer,
} from '../helpers/e2e.js';
import { startContainerStub, startStsStub, type ContainerStub, type StsStub } from '../helpers/fault-stubs.js';
import { CREDENTIAL_REQUEST, startService, waitFor, type Service } from '../helpers/service-process.js';

const SUITE = 'packaging/prometheus';
const RULES = join(ROOT, 'ops/prometheus/alerts.yml');
const RULE_TESTS = join(ROOT, 'ops/prometheus/alerts.test.yml');
const PROMETHEUS = '/usr/bin/prometheus';

interface AlertRule {
  alert: string;
  expr: string;
}
const GROUPS = (parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: AlertRule[] }[] }).groups;
const ALERTS = GROUPS.flatMap((g) => g.rules.map((r) => r.alert));

function promtoolMissing(): string | undefined {
  return spawnSync('promtool', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0
    ? undefined
    : 'promtool is not installed (Debian package prometheus: scripts/install-test-deps.sh)';
}

describe('alert rules: promtool', () => {
  it('every alert has a promtool unit test where it fires and one where it does not', () => {
    type RuleTest = { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] };
    const tests = parse(readFileSync(RULE_TESTS, 'utf8')) as { rule_files: string[]; tests: RuleTest[] };
    expect(tests.rule_files).toEqual(['alerts.yml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of ALERTS) {
      expect(
        cases.some((c) => c.alertname === alert && (c.exp_alerts ?? []).length > 0),
        `${alert} fires somewhere`,
      ).toBe(true);
      expect(
        cases.some((c) => c.alertname === alert && (c.exp_alerts ?? []).length === 0),
        `${alert} stays silent somewhere`,
      ).toBe(true);
    }
    expect([...new Set(cases.map((c) => c.alertname))].sort()).toEqual([...ALERTS].sort());
  });

  it('promtool check rules and promtool test rules pass', (ctx) => {
    const missing = promtoolMissing();
    if (missing) {
      console.log(`SKIPPED ${SUITE}: ${missing}`);
      return ctx.skip();
    }
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8', timeout: 60_000 });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    const test = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8', timeout: 120_000 });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toContain('SUCCESS');
  });
});

interface PromResponse<T> {
  status: string;
  data: T;
  error?: string;
}

describe('a real Prometheus scraping a running credvend, with the alert rules', () => {
  let skipReason: string | undefined;
  let dir = '';
  let prom: ChildProcess | undefined;
  let promExited: Promise<number | string | null> | undefined;
  let promUrl = '';
  let promLog = '';
  let svc: Service | undefined;
  let container: ContainerStub | undefined;
  let sts: StsStub | undefined;
  let issuer: Issuer | undefined;

  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${promUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await r.json()) as PromResponse<T>;
    expect(body.status, `${path}: ${body.error ?? ''}`).toBe('success');
    return body.data;
  };

  beforeAll(async () => {
    if (
      !existsSync(PROMETHEUS) ||
      spawnSync(PROMETHEUS, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status !== 0
    ) {
      skipReason = `${PROMETHEUS} is not installed (Debian package prometheus: scripts/install-test-deps.sh)`;
      console.log(`SKIPPED ${SUITE}: ${skipReason}`);
      return;
    }
    await ensureBuilt();
    dir = tempRoot('cv-prom-');
    container = await startContainerStub();
    sts = await startStsStub({ baseCredentials: container });
    issuer = await startIssuer();
    svc = await startService({ dir, name: 'scraped', sts, container, issuer });
    const adminTarget = new URL(svc.adminUrl).host;

    // Prometheus: loopback only, its own TSDB, a 1 s scrape and evaluation interval.
    writeFileSync(join(dir, 'alerts.yml'), readFileSync(RULES));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: [join(dir, 'alerts.yml')],
        scrape_configs: [
          { job_name: 'credvend', metrics_path: '/metrics', static_configs: [{ targets: [adminTarget] }] },
        ],
      }),
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    promLog = join(dir, 'prometheus.log');
    const log = openSync(promLog, 'a');
    prom = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { cwd: dir, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const child = prom;
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    promExited = new Promise((r) => child.on('exit', (code, sig) => (process.off('exit', killOnExit), r(code ?? sig))));
    const ready = await waitFor(
      async () =>
        (await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(1_000) }).then(
          (r) => r.status,
          () => 0,
        )) === 200,
      30_000,
      200,
    );
    if (ready === undefined) throw new Error(`prometheus not ready after 30 s:\n${tail(promLog)}`);
  }, 120_000);

  afterAll(async () => {
    if (prom?.pid !== undefined && promExited) {
      process.kill(prom.pid, 'SIGTERM');
      const timer = setTimeout(() => prom?.pid !== undefined && prom.kill('SIGKILL'), 15_000);
      await promExited;
      clearTimeout(timer);
    }
    await svc?.stop();
    await issuer?.close();
    await sts?.close();
    await container?.close();
    if (dir) removeTempRoot(dir);
  });

  it('scrapes the target (up), credvend_build_info and the issued-credentials counter are queryable', async (ctx) => {
    if (skipReason) return ctx.skip();
    // A credential request, so the issuance counter has a sample too.
    const token = await issuer!.sign({ sub: 'scraped-user' });
    const res = await fetch(`${svc!.url}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(CREDENTIAL_REQUEST),
    });
    expect(res.status, await res.clone().text()).toBe(200);

    type Target = { health: string; lastError: string; scrapeUrl: string; labels: Record<string, string> };
    let targets: Target[] = [];
    const up = await waitFor(
      async () => {
        targets = (await api<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets;
        return targets.length === 1 && targets[0]!.health === 'up';
      },
      30_000,
      250,
    );
    expect(up, JSON.stringify(targets)).toBeDefined();
    expect(targets[0]!.scrapeUrl).toBe(`${svc!.adminUrl}/metrics`);
    expect(targets[0]!.lastError).toBe('');

    type Vector = { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    const query = (q: string) => api<Vector>(`/api/v1/query?query=${encodeURIComponent(q)}`);
    expect((await query('up{job="credvend"}')).result.map((r) => r.value[1])).toEqual(['1']);
    const info = (await query('credvend_build_info')).result;
    expect(info).toHaveLength(1);
    expect(info[0]!.metric).toMatchObject({
      job: 'credvend',
      instance: new URL(svc!.adminUrl).host,
      version: expect.any(String),
      node_version: process.version,
    });
    expect(info[0]!.value[1]).toBe('1');
    expect((await query('credvend_ready')).result.map((r) => r.value[1])).toEqual(['1']);
    let issued: Vector['result'] = [];
    const counted = await waitFor(
      async () =>
        (issued = (await query('sum(credvend_credentials_issued_total)')).result).length === 1 &&
        issued[0]!.value[1] === '1',
      15_000,
      250,
    );
    expect(counted, JSON.stringify(issued)).toBeDefined();
  });

  it('loads every alert rule of ops/prometheus/alerts.yml and evaluates each without error', async (ctx) => {
    if (skipReason) return ctx.skip();
    type Rule = {
      name: string;
      type: string;
      health: string;
      lastError?: string;
      lastEvaluation: string;
      state?: string;
    };
    type Group = { name: string; file: string; rules: Rule[] };
    let groups: Group[] = [];
    // Loaded, and each rule evaluated at least once (health moves from "unknown" to "ok" or "err").
    const evaluated = await waitFor(
      async () => {
        groups = (await api<{ groups: Group[] }>('/api/v1/rules')).groups;
        const rules = groups.flatMap((g) => g.rules);
        return rules.length === ALERTS.length && rules.every((r) => r.health !== 'unknown');
      },
      30_000,
      250,
    );
    expect(evaluated, JSON.stringify(groups).slice(0, 2000)).toBeDefined();
    const rules = groups.flatMap((g) => g.rules);
    expect(groups.map((g) => g.name).sort()).toEqual(GROUPS.map((g) => g.name).sort());
    expect(rules.map((r) => r.name).sort()).toEqual([...ALERTS].sort());
    for (const r of rules) {
      expect(r.type, r.name).toBe('alerting');
      expect({ name: r.name, health: r.health, lastError: r.lastError ?? '' }).toEqual({
        name: r.name,
        health: 'ok',
        lastError: '',
      });
    }
    // A healthy, ready credvend: nothing is firing (CredvendNotReady above all).
    const alerts = (await api<{ alerts: { labels: { alertname: string }; state: string }[] }>('/api/v1/alerts')).alerts;
    expect(alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname)).toEqual([]);
    expect(readFileSync(promLog, 'utf8')).not.toMatch(/level=error/);
  });
});
