// The rate-limit budget shared by replicas through Redis (a real redis-server on loopback).
// Without it, N replicas behind a load balancer would each grant the full budget: N times the
// STS calls a single abusive subject may cause.
import { spawn, type ChildProcess } from 'node:child_process';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHarness, type Harness } from '../helpers/app.js';
import { freePort } from '../helpers/net.js';

let server: ChildProcess;
let port = 0;
const clients: Redis[] = [];

beforeAll(async () => {
  port = await freePort();
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 100 });
  probe.on('error', () => undefined); // refused until the server is up: retried below
  for (let i = 0; i < 50; i += 1) {
    try {
      await probe.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  expect(await probe.ping()).toBe('PONG');
  probe.disconnect();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  server?.kill('SIGKILL');
});

describe('rate limit shared through Redis', () => {
  it('two replicas share one budget per subject', async () => {
    const redis = () => {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      clients.push(c);
      return c;
    };
    const env = { CREDVEND_RATE_LIMIT_MAX: '3', CREDVEND_RATE_LIMIT_WINDOW: '1 minute' };
    const a: Harness = await buildHarness({ env, rateLimitRedis: redis() });
    const b: Harness = await buildHarness({ env, rateLimitRedis: redis() });
    const call = async (h: Harness, sub: string) =>
      h.app.inject({
        method: 'POST',
        url: '/v1/credentials',
        headers: { authorization: `Bearer ${await h.token({ sub })}` },
        payload: { profile: 'uploads', operation: 'upload', keys: ['a'] },
      });
    const sub = `carol-${port}`;
    expect((await call(a, sub)).statusCode).toBe(200);
    expect((await call(b, sub)).statusCode).toBe(200);
    expect((await call(a, sub)).statusCode).toBe(200);
    const limited = await call(b, sub); // the 4th in the window, on the other replica
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('CV_RATE_LIMITED');
    expect((await call(b, `dave-${port}`)).statusCode).toBe(200); // another subject has its own budget
    expect(a.sts.commandCalls(AssumeRoleCommand).length + b.sts.commandCalls(AssumeRoleCommand).length).toBe(4);
    await a.close();
    await b.close();
  });
});
