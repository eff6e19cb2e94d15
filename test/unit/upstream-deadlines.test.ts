// Deadlines and size caps of the STS and KMS clients, against a real loopback HTTP server that
// misbehaves on demand. Each case is an upstream failure seen in the field or in a benchmark:
//  - an STS that accepts and never answers used to hold callers and, worse, all pooled sockets;
//  - a slow STS used to be waited for whatever the configured timeout (smithy only logged);
//  - a reset connection was reported as a timeout (504) instead of unavailable (502);
//  - a 5 MB answer was parsed whole: 13.5 s of blocked event loop and ~1 GB RSS.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { upstreamDeadlineMs } from '../../src/aws/http-handler.js';
import { createKmsDescriber, kmsClientFactory, KeyDescribeError } from '../../src/kms/resolve.js';
import { BaseCredentialsUnavailableError } from '../../src/sts/base-credentials.js';
import { createStsClient, type StsClient, type StsClientOptions } from '../../src/sts/http-client.js';
import { createSts, StsError, translateStsError, type Sts } from '../../src/sts/sts.js';
import { freePort } from '../helpers/net.js';
import { PLAN } from '../helpers/policy.js';

type Mode =
  | 'ok'
  | 'hang'
  | 'slow'
  | 'reset'
  | 'error500'
  | 'throttle'
  | 'malformed'
  | 'oversize'
  | 'oversize-chunked'
  | 'trickle';

const TIMEOUT_MS = 300;
const ATTEMPTS = 2;
// Every attempt to its timeout, plus the SDK's longest backoff: 2 x 300 ms + 1 s.
const DEADLINE_MS = upstreamDeadlineMs({ requestTimeoutMs: TIMEOUT_MS, maxAttempts: ATTEMPTS });
// Scheduling noise on a busy CI machine; a failure to enforce a deadline overshoots by seconds.
const SLACK_MS = 750;
const FIVE_MB = randomBytes((5 * 1024 * 1024) / 2).toString('hex');
const CREDENTIALS = { accessKeyId: 'AKIDUPSTREAMTEST', secretAccessKey: 'upstream-test-secret' };

function assumeRoleXml(): string {
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/vendor/cv-test</Arn><AssumedRoleId>AROATEST:cv-test</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIATESTISSUED</AccessKeyId>
      <SecretAccessKey>issued-secret</SecretAccessKey>
      <SessionToken>issued-token</SessionToken>
      <Expiration>${new Date(Date.now() + 15 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>`;
}

function errorXml(code: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>internal-detail-xyz</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;
}

let mode: Mode = 'ok';
let requests = 0;
let server: Server;
let endpoint: string;
const sockets = new Set<Socket>();
const clients: (StsClient | KMSClient)[] = [];

function answer(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  const send = (status: number, body: string): void => {
    res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  switch (mode) {
    case 'ok':
      return send(200, assumeRoleXml());
    case 'hang':
      return; // accepted, never answered; the socket stays open on our side
    case 'slow': {
      const t = setTimeout(() => send(200, assumeRoleXml()), 1_000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    case 'reset':
      return void req.socket.destroy();
    case 'error500':
      return send(500, errorXml('InternalFailure'));
    case 'throttle':
      return send(400, errorXml('Throttling'));
    case 'malformed':
      return send(200, '<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA</Acc');
    case 'oversize':
      return send(200, `<AssumeRoleResponse>${FIVE_MB}</AssumeRoleResponse>`);
    case 'oversize-chunked': {
      res.writeHead(200, { 'content-type': 'text/xml' }); // chunked: no length to refuse up front
      const body = Buffer.from(`<AssumeRoleResponse>${FIVE_MB}</AssumeRoleResponse>`);
      let at = 0;
      const more = (): void => {
        while (at < body.length && !res.destroyed) {
          const chunk = body.subarray(at, at + 65_536);
          at += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        if (!res.destroyed) res.end();
      };
      res.on('error', () => undefined);
      return more();
    }
    case 'trickle': {
      // Headers at once, then a byte every 100 ms: never idle long enough for a socket timeout,
      // never large enough for the cap; only the overall deadline ends it.
      res.writeHead(200, { 'content-type': 'text/xml' });
      const t = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(t));
      return;
    }
  }
}

function stsClient(overrides: Partial<StsClientOptions> = {}): StsClient {
  const client = createStsClient({
    region: 'eu-west-1',
    endpoint,
    credentials: async () => CREDENTIALS,
    requestTimeoutMs: TIMEOUT_MS,
    connectTimeoutMs: TIMEOUT_MS,
    maxAttempts: ATTEMPTS,
    maxSockets: 4,
    maxResponseBytes: 262_144,
    ...overrides,
  });
  clients.push(client);
  return client;
}

async function failure(p: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = performance.now();
  const err = await p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - started };
}

beforeAll(async () => {
  const port = await freePort();
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(req, res));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  mode = 'ok';
  requests = 0;
});

describe('the overall deadline', () => {
  it('is every attempt to its timeout plus the SDK backoff, documented as 12 s for the defaults', () => {
    expect(upstreamDeadlineMs({ requestTimeoutMs: 3000, maxAttempts: 3 })).toBe(12_000);
    expect(upstreamDeadlineMs({ requestTimeoutMs: 500, maxAttempts: 1 })).toBe(500);
  });
});

describe('STS that does not answer in time', () => {
  let sts: Sts;
  beforeAll(() => {
    sts = createSts(stsClient());
  });

  it('answers normally when STS is healthy', async () => {
    const c = await sts.assumeRole(PLAN);
    expect(c).toMatchObject({ accessKeyId: 'ASIATESTISSUED', sessionToken: 'issued-token', packedPolicySize: 6 });
  });

  it('a hung STS is a timeout within timeout x attempts + backoff, every attempt made', async () => {
    mode = 'hang';
    const { err, ms } = await failure(sts.assumeRole(PLAN));
    expect(err).toBeInstanceOf(StsError);
    expect(err).toMatchObject({ kind: 'timeout', code: 'TimeoutError' });
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS * ATTEMPTS - 50);
    expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
    expect(requests).toBe(ATTEMPTS);
  });

  it('a slow STS (1 s against a 300 ms timeout) is a timeout, not a late 200', async () => {
    mode = 'slow';
    const { err, ms } = await failure(sts.assumeRole(PLAN));
    expect(err).toMatchObject({ kind: 'timeout' });
    expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it("an answer that trickles in for ever is cut by each attempt's timeout, within the overall deadline", async () => {
    // A byte every 100 ms is never idle long enough for a socket timeout: the attempt's timeout
    // covers the whole answer, not only its headers, so a trickle holds a socket (and a gate
    // slot) no longer than a hung STS does.
    mode = 'trickle';
    const { err, ms } = await failure(sts.assumeRole(PLAN));
    expect(err).toMatchObject({ kind: 'timeout' });
    expect(requests).toBe(ATTEMPTS);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS * ATTEMPTS - 50);
    expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it('hung sockets are destroyed, not pooled: once STS recovers the next 50 calls all succeed', async () => {
    // Prepare: more hung calls than the pool has sockets (4).
    const client = stsClient({ maxAttempts: 1 });
    const fresh = createSts(client);
    mode = 'hang';
    const hung = await Promise.all(Array.from({ length: 8 }, () => failure(fresh.assumeRole(PLAN))));
    expect(hung.every((h) => h.err instanceof StsError && h.err.kind === 'timeout')).toBe(true);
    // Act: STS is healthy again; the hung connections are still open on its side.
    mode = 'ok';
    // Four at a time, the pool size: more would wait for a socket inside their 300 ms budget.
    const started = performance.now();
    const results: PromiseSettledResult<unknown>[] = [];
    while (results.length < 50)
      results.push(
        ...(await Promise.allSettled(
          Array.from({ length: Math.min(4, 50 - results.length) }, () => fresh.assumeRole(PLAN)),
        )),
      );
    // Assess
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('STS failures other than timeouts', () => {
  let sts: Sts;
  beforeAll(() => {
    sts = createSts(stsClient());
  });

  it('a reset connection is unavailable (502), not a timeout (504)', async () => {
    mode = 'reset';
    const { err } = await failure(sts.assumeRole(PLAN));
    expect(err).toMatchObject({ kind: 'unavailable', code: 'ECONNRESET' });
  });

  it('a 500 is unavailable, after the retries', async () => {
    mode = 'error500';
    const { err } = await failure(sts.assumeRole(PLAN));
    expect(err).toMatchObject({ kind: 'unavailable' });
    expect(requests).toBe(ATTEMPTS);
  });

  it('a throttling answer is throttled', async () => {
    mode = 'throttle';
    const { err, ms } = await failure(sts.assumeRole(PLAN));
    expect(err).toMatchObject({ kind: 'throttled', code: 'Throttling' });
    expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it('a malformed answer is unavailable', async () => {
    mode = 'malformed';
    const { err } = await failure(sts.assumeRole(PLAN));
    expect(err).toMatchObject({ kind: 'unavailable' });
  });

  it('no StsError carries SDK text', async () => {
    mode = 'throttle';
    const { err } = await failure(sts.assumeRole(PLAN));
    expect(err instanceof Error && err.message).toBe('STS call failed: throttled (Throttling)');
  });
});

describe('an oversized STS answer (5 MB)', () => {
  let sts: Sts;
  beforeAll(() => {
    sts = createSts(stsClient());
  });

  it.each<Mode>(['oversize', 'oversize-chunked'])(
    '%s: unavailable at once, never parsed, RSS stays flat',
    async (m) => {
      mode = m;
      const rssBefore = process.memoryUsage().rss;
      const { err, ms } = await failure(sts.assumeRole(PLAN));
      const grown = process.memoryUsage().rss - rssBefore;
      expect(err).toMatchObject({ kind: 'unavailable', code: 'ResponseTooLarge' });
      expect(ms).toBeLessThan(1_000);
      expect(requests).toBe(1); // not retried: it would only be as large again
      expect(grown).toBeLessThan(100 * 1024 * 1024);
      // The client is still usable afterwards.
      mode = 'ok';
      await expect(sts.assumeRole(PLAN)).resolves.toMatchObject({ accessKeyId: 'ASIATESTISSUED' });
    },
  );
});

describe('errors that are not STS failures', () => {
  it("the caller's abort rejects at once with the caller's reason, untranslated", async () => {
    mode = 'hang';
    const sts = createSts(stsClient());
    const controller = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => controller.abort(reason), 50);
    const { err, ms } = await failure(sts.assumeRole(PLAN, controller.signal));
    expect(err).toBe(reason);
    expect(ms).toBeLessThan(TIMEOUT_MS);
  });

  it('an already aborted signal sends nothing', async () => {
    const sts = createSts(stsClient());
    const reason = new Error('gone');
    const { err } = await failure(sts.assumeRole(PLAN, AbortSignal.abort(reason)));
    expect(err).toBe(reason);
    expect(requests).toBe(0);
  });

  it('the service without credentials of its own gets BaseCredentialsUnavailableError, not an STS error', async () => {
    const unavailable = new BaseCredentialsUnavailableError('expired');
    const sts = createSts(stsClient({ credentials: async () => Promise.reject(unavailable) }));
    const { err } = await failure(sts.assumeRole(PLAN));
    expect(err).toBe(unavailable);
    expect(requests).toBe(0);
  });
});

describe('translateStsError', () => {
  const sdk = (name: string, extra: Record<string, unknown> = {}): Error =>
    Object.assign(new Error('internal-detail-xyz'), { name }, extra);
  it.each<[string, Error, string, string]>([
    // smithy renames a reset socket TimeoutError but keeps its code: the code decides.
    ['a reset relabelled by smithy', sdk('TimeoutError', { code: 'ECONNRESET' }), 'unavailable', 'ECONNRESET'],
    ['a broken pipe', sdk('TimeoutError', { code: 'EPIPE' }), 'unavailable', 'EPIPE'],
    ['socket hang up', sdk('Error', { code: 'ECONNRESET' }), 'unavailable', 'ECONNRESET'],
    [
      'a network error kept as a cause',
      sdk('Error', { cause: sdk('Error', { code: 'ECONNREFUSED' }) }),
      'unavailable',
      'ECONNREFUSED',
    ],
    ['the request timeout', sdk('TimeoutError', { code: 'ETIMEDOUT' }), 'timeout', 'TimeoutError'],
    ['the overall deadline', sdk('DeadlineExceeded'), 'timeout', 'DeadlineExceeded'],
    ['an oversized answer', sdk('ResponseTooLarge'), 'unavailable', 'ResponseTooLarge'],
    ['an unparsable answer', sdk('SyntaxError'), 'unavailable', 'other'],
    ['an abort that is not our deadline', sdk('AbortError'), 'unavailable', 'other'],
    [
      'throttling',
      sdk('ThrottlingException', { $metadata: { httpStatusCode: 400 } }),
      'throttled',
      'ThrottlingException',
    ],
    ['a 4xx', sdk('Unknown', { $metadata: { httpStatusCode: 400 } }), 'rejected', 'Unknown'],
  ])('%s', (_name, err, kind, code) => {
    const t = translateStsError(err);
    expect(t).toMatchObject({ kind, code });
    expect(t.message).not.toContain('internal-detail-xyz');
  });
});

/** A KMS DescribeKey against the loopback server, with the start-up client's bounds. */
function kmsDescriber(maxAttempts: number): ReturnType<typeof createKmsDescriber> {
  const newClient = kmsClientFactory({
    endpoint,
    credentials: async () => CREDENTIALS,
    requestTimeoutMs: TIMEOUT_MS,
    connectTimeoutMs: TIMEOUT_MS,
    maxAttempts,
    maxResponseBytes: 262_144,
  });
  return createKmsDescriber((region) => {
    const c = newClient(region);
    clients.push(c);
    return c;
  });
}

describe('KMS DescribeKey', () => {
  it('a hung KMS fails start-up within timeout x attempts + backoff', async () => {
    mode = 'hang';
    const describer = kmsDescriber(ATTEMPTS);
    try {
      const { err, ms } = await failure(describer.describe('alias/uploads', 'eu-west-1'));
      expect(err).toBeInstanceOf(KeyDescribeError);
      expect(err).toMatchObject({ code: 'TimeoutError' });
      expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
      expect(requests).toBe(ATTEMPTS);
    } finally {
      describer.close();
    }
  });

  it.each(['oversize', 'oversize-chunked'] as const)(
    'a 5 MB KMS answer (%s) is refused unparsed, at once',
    async (m) => {
      // Threat: an oversized answer parsed whole blocks the event loop for seconds and costs
      // ~1 GB of memory; the KMS client's handler (src/aws/http-handler.ts) caps it.
      mode = m;
      const describer = kmsDescriber(1);
      try {
        const { err, ms } = await failure(describer.describe('alias/uploads', 'eu-west-1'));
        expect(err).toBeInstanceOf(KeyDescribeError);
        expect(err).toMatchObject({ code: 'ResponseTooLarge' });
        expect(ms).toBeLessThan(TIMEOUT_MS);
      } finally {
        describer.close();
      }
    },
  );
});
