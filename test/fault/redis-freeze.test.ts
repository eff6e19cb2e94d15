// Issue 8, deliverable 1 (Redis): the shared rate-limit budget lives in Redis, and a frozen Redis
// (SIGSTOP: connections open, nothing answered) must not stall issuance. Each command has a
// deadline (CREDVEND_REDIS_COMMAND_TIMEOUT_MS, 250 ms) after which the limit fails open.
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, sleep } from '../helpers/e2e.js';
import { CREDENTIAL_REQUEST, waitFor } from '../helpers/service-process.js';
import { describeOutcome, percentile, startLoad, tally } from './load.js';
import { createRig, figure, type Rig } from './rig.js';

const FROZEN_MS = 3_000;
const LIMIT_MS = 1_000; // command timeout 250 ms, with room for two cores under load

let rig: Rig;
let redis: ChildProcess | undefined;
let port = 0;

beforeAll(async () => {
  rig = await createRig();
  port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined); // refused until the server is up: retried below
  const up = await waitFor(
    async () =>
      probe.connect().then(
        () => true,
        () => false,
      ),
    5_000,
  );
  if (up === undefined) throw new Error('redis-server did not come up (is it installed? scripts/install-test-deps.sh)');
  probe.disconnect();
});

afterAll(async () => {
  if (redis?.pid) {
    process.kill(redis.pid, 'SIGCONT');
    redis.kill('SIGTERM');
  }
  await rig?.close();
});

describe('rate limit with a frozen Redis', () => {
  it(`answers every request within ${LIMIT_MS} ms while Redis is stopped for ${FROZEN_MS} ms (fail open)`, async () => {
    const svc = await rig.start('redis', {
      CREDVEND_RATE_LIMIT_REDIS_URL: `redis://127.0.0.1:${port}`,
      CREDVEND_RATE_LIMIT_MAX: '1000000',
    });
    rig.sts.setMode('ok');
    const spec = {
      url: svc.url,
      token: rig.token,
      body: CREDENTIAL_REQUEST,
      concurrency: 4,
      maxRequests: 2_000,
      timeoutMs: 10_000,
    };
    const warm = await startLoad({ ...spec, maxRequests: 20, maxDurationMs: 5_000 }).done;
    expect(warm.every((o) => o.status === 200)).toBe(true);

    const pid = redis?.pid ?? 0;
    process.kill(pid, 'SIGSTOP');
    const thawed = sleep(FROZEN_MS).then(() => process.kill(pid, 'SIGCONT'));
    // Requests start during the freeze only; one still stuck after the thaw shows as too slow.
    const frozen = await startLoad({ ...spec, maxDurationMs: FROZEN_MS - 300 }).done;
    await thawed;
    const after = await startLoad({ ...spec, maxRequests: 20, maxDurationMs: 5_000 }).done;
    const ms = frozen.map((o) => o.end - o.start);
    figure(
      'frozen Redis',
      `${frozen.length} requests: ${tally(frozen, describeOutcome)}; latency p50 / p99 / max ${percentile(ms, 50)} / ${percentile(ms, 99)} / ${Math.max(...ms)} ms; after SIGCONT ${tally(after, describeOutcome)}`,
    );
    expect(frozen.length).toBeGreaterThan(0);
    expect(frozen.filter((o) => o.status !== 200 || o.end - o.start > LIMIT_MS).map(describeOutcome)).toEqual([]);
    expect(after.every((o) => o.status === 200)).toBe(true);
  });
});
