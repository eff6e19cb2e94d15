// Issue 8, deliverables 1-3 and 8: at least 5,000 bounded requests through the built service while
// the STS stub and the container-credentials endpoint cycle through their faults. Whatever an
// upstream does, a caller gets credentials or a mapped 5xx problem+json within the deadline the
// settings promise, the process stays up and small, and once the upstreams are healthy again
// (after a hang, whose sockets only the service can free) the next 200 requests all succeed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/e2e.js';
import type { ContainerMode, StsMode } from '../helpers/fault-stubs.js';
import { SECRET_MARKERS } from '../helpers/fault-stubs.js';
import { adminGet, CREDENTIAL_REQUEST, waitFor, type Service } from '../helpers/service-process.js';
import { contractViolations, describeOutcome, percentile, startLoad, tally, type Outcome } from './load.js';
import { createRig, decisionsByRequest, figure, leakedSecrets, rememberSample, type Rig } from './rig.js';

const TIMEOUT_MS = 300;
const ATTEMPTS = 2;
const BASE_CREDENTIALS_TIMEOUT_MS = 500;
// The SDK's backoff before the second attempt: at most 1 s (after throttling; 50 ms otherwise).
const BACKOFF_ALLOWANCE_MS = 1_000;
const SLACK_MS = 500; // loopback, two cores shared by the service, the stubs and the load client
/** The longest any request may take under these settings. */
const DEADLINE_MS = BASE_CREDENTIALS_TIMEOUT_MS + TIMEOUT_MS * ATTEMPTS + BACKOFF_ALLOWANCE_MS + SLACK_MS;
const CONCURRENCY = 24; // below CREDVEND_STS_MAX_IN_FLIGHT (64): nothing is over capacity here
const MIN_REQUESTS = 5_000;
const MAX_RUN_MS = 55_000;
// A bound only: the cycle, not the count, ends the run (it must reach the slow and hang phases).
// Generous: fast 503s while base credentials are out come back at thousands per second.
const MAX_REQUESTS = 150_000;
// After the container endpoint recovers, the service may wait out its refresh backoff (a few
// seconds after a few failures) before it can sign again: that answer stays allowed meanwhile.
const BASE_BACKOFF_CARRY_MS = 15_000;
// Healthy base credentials live 36 s: within 30 s of expiry the service must not sign with them,
// so they are usable for ~6 s and a container fault longer than that is always felt.
const CONTAINER_TTL_MS = 36_000;
// The longest a container-fault phase waits for the service to ask the endpoint.
const CONTAINER_PHASE_MAX_MS = 9_000;

interface Phase {
  readonly sts: StsMode;
  readonly container: ContainerMode;
  readonly ms: number;
  /** The answers a request made wholly inside this phase may get. */
  readonly expect: readonly string[];
}

const stsPhase = (sts: StsMode, expect: string[]): Phase => ({ sts, container: 'healthy', ms: 2_500, expect });
const containerPhase = (container: ContainerMode): Phase => ({
  sts: 'ok',
  container,
  ms: 3_000,
  expect: ['200', 'CV_BASE_CREDENTIALS_UNAVAILABLE'],
});
const STS_PHASES: Phase[] = [
  stsPhase('ok', ['200']),
  stsPhase('latency', ['200']),
  stsPhase('throttle', ['CV_STS_THROTTLED']),
  stsPhase('error500', ['CV_STS_UNAVAILABLE']),
  stsPhase('ok', ['200']),
  stsPhase('error503', ['CV_STS_UNAVAILABLE']),
  stsPhase('reset', ['CV_STS_UNAVAILABLE']),
  stsPhase('malformed', ['CV_STS_UNAVAILABLE']),
  stsPhase('oversized', ['CV_STS_UNAVAILABLE']),
  stsPhase('slow', ['CV_STS_TIMEOUT']),
  stsPhase('hang', ['CV_STS_TIMEOUT']),
];
const CONTAINER_PHASES: Phase[] = [containerPhase('error500'), containerPhase('hang'), containerPhase('expired')];

interface Ran extends Phase {
  readonly from: number;
  readonly to: number;
}

let rig: Rig;
let svc: Service;
let outcomes: Outcome[] = [];
const ran: Ran[] = [];
let recovery: Outcome[] = [];

beforeAll(async () => {
  rig = await createRig({ containerTtlMs: CONTAINER_TTL_MS });
  svc = await rig.start('cycling', {
    CREDVEND_STS_TIMEOUT_MS: String(TIMEOUT_MS),
    CREDVEND_STS_CONNECT_TIMEOUT_MS: String(TIMEOUT_MS),
    CREDVEND_STS_MAX_ATTEMPTS: String(ATTEMPTS),
    CREDVEND_BASE_CREDENTIALS_TIMEOUT_MS: String(BASE_CREDENTIALS_TIMEOUT_MS),
    CREDVEND_SHUTDOWN_GRACE_MS: '2000',
  });
  rig.sts.setMode('ok', { latencyMs: 50, slowMs: 2_000, oversizedBytes: 5 * 1024 * 1024 });

  const t0 = Date.now();
  const load = startLoad({
    url: svc.url,
    token: rig.token,
    body: CREDENTIAL_REQUEST,
    concurrency: CONCURRENCY,
    maxRequests: MAX_REQUESTS,
    maxDurationMs: MAX_RUN_MS + 5_000,
    timeoutMs: DEADLINE_MS + 2_000,
  });
  const runPhase = async (phase: Phase) => {
    rig.sts.setMode(phase.sts);
    rig.container.setMode(phase.container);
    const from = Date.now();
    // A phase lasts until the service has met its fault (asked the faulty upstream) at least once.
    const containerFault = phase.container !== 'healthy';
    const asked = () =>
      (containerFault ? rig.container.callsByMode()[phase.container] : rig.sts.callsByMode()[phase.sts]) ?? 0;
    const before = asked();
    await sleep(phase.ms);
    await waitFor(() => asked() > before, (containerFault ? CONTAINER_PHASE_MAX_MS : BASE_BACKOFF_CARRY_MS) - phase.ms);
    ran.push({ ...phase, from, to: Date.now() });
  };
  // Container faults first (STS healthy), then every STS fault, ending on slow and a hang. If the
  // request count is not reached yet, more rounds of the fast faults, then a final hang.
  for (const phase of [...CONTAINER_PHASES, ...STS_PHASES]) await runPhase(phase);
  const fast = STS_PHASES.filter((p) => p.sts !== 'slow' && p.sts !== 'hang');
  for (let i = 0; load.outcomes.length < MIN_REQUESTS && Date.now() - t0 < MAX_RUN_MS - 5_000; i += 1)
    await runPhase(fast[i % fast.length]!);
  if (ran.at(-1)?.sts !== 'hang') await runPhase(STS_PHASES.at(-1)!);
  load.stop();
  outcomes = await load.done;
  figure(
    'cycle',
    `${outcomes.length} requests in ${((Date.now() - t0) / 1000).toFixed(1)} s over ${ran.length} phases; ${tally(outcomes, describeOutcome)}`,
  );
  figure('sts stub calls by mode', JSON.stringify(rig.sts.callsByMode()));
  figure('container endpoint calls by mode', JSON.stringify(rig.container.callsByMode()));
  figure('requests signed with expired base keys', rig.sts.signedWithExpiredKeys());
  const healthyAgain = Math.max(...ran.filter((p) => p.container !== 'healthy').map((p) => p.to));
  const firstOk = outcomes.filter((o) => o.status === 200 && o.start >= healthyAgain).map((o) => o.end);
  figure(
    'container endpoint healthy again -> first 200 (ms)',
    firstOk.length ? Math.min(...firstOk) - healthyAgain : 'never',
  );
}, 120_000);

afterAll(async () => {
  await rig?.close();
});

/** The answers allowed for a request: those of every phase it overlapped, and of the one before. */
function allowedFor(o: Outcome): Set<string> {
  const allowed = new Set<string>();
  ran.forEach((p, i) => {
    // A phase's modes stay set until the next phase sets others: the last one's until the end (a
    // request the load client started in the microtasks between that phase's end and its stop met
    // the final hang too).
    const inForceUntil = ran[i + 1]?.from ?? Infinity;
    if (inForceUntil >= o.start && p.from <= o.end) {
      for (const e of [...p.expect, ...(ran[i - 1]?.expect ?? [])]) allowed.add(e);
    }
  });
  const lastContainerFault = Math.max(0, ...ran.filter((p) => p.container !== 'healthy').map((p) => p.to));
  if (o.start <= lastContainerFault + BASE_BACKOFF_CARRY_MS) allowed.add('CV_BASE_CREDENTIALS_UNAVAILABLE');
  return allowed;
}

describe('fault cycling: STS and base-credential faults under load', () => {
  it(`sends at least ${MIN_REQUESTS} requests, each answered with credentials or a mapped 5xx problem+json without SDK text`, () => {
    const bad = outcomes
      .map((o) => contractViolations(o))
      .filter((v) => v.length > 0)
      .map((v) => v.join('; '));
    figure(
      'contract violations',
      `${bad.length}${bad.length ? ` (${tally(bad, (b) => b.replace(/\d+ ms/, 'N ms'))})` : ''}`,
    );
    expect(outcomes.length).toBeGreaterThanOrEqual(MIN_REQUESTS);
    expect(bad.slice(0, 10)).toEqual([]);
    // Every fault was met by the service, not only switched on in the stub.
    const [sts, container] = [rig.sts.callsByMode(), rig.container.callsByMode()];
    expect([
      ...STS_PHASES.map((p) => `sts ${p.sts}`).filter((m) => !sts[m.slice(4)]),
      ...CONTAINER_PHASES.map((p) => `container ${p.container}`).filter((m) => !container[m.slice(10)]),
    ]).toEqual([]);
  });

  it('answers each fault with its own code (reset is CV_STS_UNAVAILABLE, a hang CV_STS_TIMEOUT, ...)', () => {
    const wrong = outcomes.filter(
      (o) => o.status !== 0 && !allowedFor(o).has(o.status === 200 ? '200' : (o.code ?? '?')),
    );
    for (const p of ran) {
      const inside = outcomes.filter((o) => o.start >= p.from && o.end <= p.to);
      figure(
        `phase sts=${p.sts} container=${p.container}`,
        `${inside.length} requests: ${tally(inside, describeOutcome)}`,
      );
    }
    expect(
      wrong
        .slice(0, 10)
        .map(
          (o) =>
            `${describeOutcome(o)} at +${o.start - (ran[0]?.from ?? 0)} ms (allowed ${[...allowedFor(o)].join('|')})`,
        ),
    ).toEqual([]);
  });

  it(`answers every request within its deadline (${DEADLINE_MS} ms = base credentials ${BASE_CREDENTIALS_TIMEOUT_MS} + ${ATTEMPTS} x ${TIMEOUT_MS} + backoff ${BACKOFF_ALLOWANCE_MS} + slack ${SLACK_MS})`, () => {
    const ms = outcomes.map((o) => o.end - o.start);
    figure('latency p50 / p99 / max (ms)', `${percentile(ms, 50)} / ${percentile(ms, 99)} / ${Math.max(...ms)}`);
    const late = outcomes.filter((o) => o.end - o.start > DEADLINE_MS || o.status === 0);
    figure(
      'requests past the deadline or unanswered',
      `${late.length}${late.length ? ` (${tally(late, describeOutcome)})` : ''}`,
    );
    expect(late.length).toBe(0);
  });

  it('never signs with expired base credentials', () => {
    expect(rig.sts.signedWithExpiredKeys()).toBe(0);
  });

  it('stays up, with peak RSS under 512 MiB', async () => {
    const rss = svc.peakRssMiB();
    figure('peak RSS (VmHWM, MiB)', rss.toFixed(0));
    expect(svc.running()).toBe(true);
    expect((await adminGet(svc, '/healthz')).status).toBe(200);
    expect(rss).toBeLessThan(512);
  });

  it('serves 200/200 right after the upstreams are healthy again, hang included', async () => {
    figure('hung STS requests the service still held at recovery', rig.sts.pending());
    rig.sts.setMode('ok');
    rig.container.setMode('healthy');
    const t0 = Date.now();
    recovery = await startLoad({
      url: svc.url,
      token: rig.token,
      body: CREDENTIAL_REQUEST,
      concurrency: 20,
      maxRequests: 200,
      maxDurationMs: 30_000,
      timeoutMs: DEADLINE_MS + 2_000,
    }).done;
    const ok = recovery.filter((o) => o.status === 200).length;
    const ms = recovery.map((o) => o.end - o.start);
    figure(
      'recovery',
      `${ok}/${recovery.length} succeeded in ${Date.now() - t0} ms (latency p50 ${percentile(ms, 50)} ms, max ${Math.max(...ms)} ms); ${tally(recovery, describeOutcome)}`,
    );
    expect(ok).toBe(200);
  });

  it('writes exactly one audit record per answered credential request, and one issued record per credential', async () => {
    const all = [...outcomes, ...recovery];
    const answered = all.filter((o) => o.status !== 0);
    const { records, partial } = await svc.settledAudit();
    const decisions = decisionsByRequest(records);
    const missing = answered.filter((o) => (decisions.get(o.requestId ?? '')?.length ?? 0) === 0);
    const repeated = [...decisions.values()].filter((d) => d.length > 1);
    const issued = new Set(records.filter((r) => r.event === 'credentials.issued').map((r) => r.accessKeyId));
    const unaudited = answered.filter((o) => o.status === 200 && !issued.has(o.accessKeyId));
    figure(
      'audit',
      `${answered.length} answered, ${decisions.size} decisions recorded, ${missing.length} missing, ${repeated.length} recorded more than once, ${unaudited.length} credentials without an issued record, ${partial} partial lines`,
    );
    expect(answered.every((o) => typeof o.requestId === 'string')).toBe(true);
    expect({ missing: missing.length, repeated: repeated.length, unaudited: unaudited.length, partial }).toEqual({
      missing: 0,
      repeated: 0,
      unaudited: 0,
      partial: 0,
    });
    expect(decisions.size).toBeLessThanOrEqual(all.length);
  });

  it('never writes a secret to stdout, stderr or the audit file', () => {
    // The markers the scan looks for are really in what callers received.
    expect(
      [...outcomes, ...recovery]
        .filter((o) => o.status === 200)
        .every(
          (o) => o.secretAccessKey?.startsWith(SECRET_MARKERS[0]) && o.sessionToken?.startsWith(SECRET_MARKERS[1]),
        ),
    ).toBe(true);
    rememberSample([...outcomes, ...recovery]);
    expect(leakedSecrets(svc)).toEqual([]);
  });
});
