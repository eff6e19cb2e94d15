// The container-credentials endpoint client (ECS, EKS Pod Identity) against a real loopback
// endpoint switchable between the failure modes seen in production. The property that matters
// most: an endpoint that accepts and never answers (or answers slowly) has its socket destroyed
// at the deadline, as the server sees it, instead of left open for ever as the SDK's fromHttp
// did. Also: answers are capped before they are parsed, plain http goes only to the hosts the
// SDK allows (no token in clear text over a network), a token cannot inject headers, and no error
// message carries the answer body or the token (they end up in logs).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultCredentialChain } from '../../src/sts/base-credentials.js';
import { ContainerCredentialsError, fromContainerEndpoint, hostAllowed } from '../../src/sts/container-credentials.js';
import { isolateAwsCredentialChain } from '../helpers/loopback.js';
import { freePort } from '../helpers/net.js';

type Mode =
  'healthy' | '500' | 'hang' | 'slow-body' | 'oversized' | 'oversized-chunked' | 'bad-json' | 'missing-fields';

const TIMEOUT_MS = 300;
// Scheduling slack on a loaded CI machine; far below "never".
const SLACK_MS = 700;
const MAX_BYTES = 262_144;
const TOKEN = 'pod-identity-token-SECRET-7f3a';
// Text only the endpoint's answers contain; must never surface in an error.
const BODY_MARKER = 'BODY-MARKER-do-not-log';
const EXPIRATION = '2030-01-01T00:00:00Z';

let server: Server;
let port: number;
let base: string;
let mode: Mode = 'healthy';
let expectedAuth: string | undefined;
let seenAuth: Array<string | undefined> = [];
let opened = 0;
let closed = 0;
const intervals = new Set<NodeJS.Timeout>();
let dir: string;

beforeAll(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = createServer((req, res) => {
    seenAuth.push(req.headers.authorization);
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          Code: 'AccessDenied',
          Message: `${BODY_MARKER} bad token ${req.headers.authorization ?? ''}`,
        }),
      );
      return;
    }
    switch (mode) {
      case 'hang':
        return; // accepts, never answers
      case '500':
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ Message: BODY_MARKER }));
        return;
      case 'slow-body': {
        // Headers at once, then a byte every 50 ms: never finished within the deadline.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"AccessKeyId":"ASIASLOW"');
        const t = setInterval(() => res.write(' '), 50);
        intervals.add(t);
        res.on('close', () => {
          clearInterval(t);
          intervals.delete(t);
        });
        return;
      }
      case 'oversized':
        res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.alloc(5 * 1024 * 1024, 0x20));
        return;
      case 'oversized-chunked': {
        // No content-length: only the streamed count can stop it.
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        for (let i = 0; i < 80; i += 1) res.write(chunk);
        res.end();
        return;
      }
      case 'bad-json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(`{"AccessKeyId": "${BODY_MARKER}", `);
        return;
      case 'missing-fields':
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ AccessKeyId: BODY_MARKER, SecretAccessKey: BODY_MARKER, Expiration: EXPIRATION }));
        return;
      case 'healthy':
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            AccessKeyId: 'ASIAHEALTHY',
            SecretAccessKey: 'secret-1',
            Token: 'session-1',
            Expiration: EXPIRATION,
            AccountId: '123456789012',
          }),
        );
        return;
    }
  });
  server.on('connection', (s: Socket) => {
    opened += 1;
    s.on('close', () => {
      closed += 1;
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
});

afterAll(async () => {
  for (const t of intervals) clearInterval(t);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  mode = 'healthy';
  expectedAuth = undefined;
  seenAuth = [];
  opened = 0;
  closed = 0;
  dir = mkdtempSync(join(tmpdir(), 'credvend-container-'));
});

afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

function provider(env: NodeJS.ProcessEnv, overrides: { timeoutMs?: number; maxResponseBytes?: number } = {}) {
  return fromContainerEndpoint({
    env,
    timeoutMs: overrides.timeoutMs ?? TIMEOUT_MS,
    maxResponseBytes: overrides.maxResponseBytes ?? MAX_BYTES,
  });
}

async function failure(p: Promise<unknown>): Promise<ContainerCredentialsError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ContainerCredentialsError);
  const e = err as ContainerCredentialsError;
  expect(e.name).toBe('ContainerCredentialsError');
  // Nothing the endpoint said and no token, in any text a log line could carry.
  for (const text of [e.message, String(e), e.stack ?? '']) {
    expect(text).not.toContain(BODY_MARKER);
    expect(text).not.toContain(TOKEN);
  }
  return e;
}

/** The server saw every connection it accepted closed again. */
async function allSocketsClosed(): Promise<void> {
  await vi.waitFor(
    () => {
      expect(opened).toBeGreaterThan(0);
      expect(closed).toBe(opened);
    },
    { timeout: 2000, interval: 20 },
  );
}

describe('fromContainerEndpoint: healthy endpoint', () => {
  it('returns the credentials and sends the token from AWS_CONTAINER_AUTHORIZATION_TOKEN', async () => {
    // Prepare
    expectedAuth = TOKEN;
    // Act
    const c = await provider({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: TOKEN,
    })();
    // Assess
    expect(c).toEqual({
      accessKeyId: 'ASIAHEALTHY',
      secretAccessKey: 'secret-1',
      sessionToken: 'session-1',
      expiration: new Date(EXPIRATION),
      accountId: '123456789012',
    });
    expect(seenAuth).toEqual([TOKEN]);
  });

  it('sends no Authorization header when no token is configured', async () => {
    await provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/v2/credentials/task` })();
    expect(seenAuth).toEqual([undefined]);
  });

  it('re-reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE at every fetch (EKS rotates it), ahead of the env token', async () => {
    // Prepare
    const file = join(dir, 'eks-pod-identity-token');
    writeFileSync(file, `${TOKEN}-1`);
    const get = provider({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'env-token-ignored',
    });
    // Act
    await get();
    writeFileSync(file, `${TOKEN}-2`);
    await get();
    // Assess
    expect(seenAuth).toEqual([`${TOKEN}-1`, `${TOKEN}-2`]);
  });

  it('opens a fresh socket per fetch and closes it after (no keep-alive)', async () => {
    const get = provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds` });
    await get();
    await get();
    await allSocketsClosed();
    expect(opened).toBe(2);
  });
});

describe('fromContainerEndpoint: failing endpoint', () => {
  it('hang: rejects with Timeout within the deadline, and the server sees the socket closed', async () => {
    // Prepare
    mode = 'hang';
    const started = performance.now();
    // Act
    const e = await failure(provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds` })());
    // Assess: the deadline covers the wait for the answer, not just the connect ...
    expect(e.code).toBe('Timeout');
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    // ... and the socket is destroyed, not abandoned (the SDK's fromHttp kept it open for ever).
    await allSocketsClosed();
    expect(opened).toBe(1);
  });

  it('slow body: rejects with Timeout within the deadline, and the server sees the socket closed', async () => {
    mode = 'slow-body';
    const started = performance.now();
    const e = await failure(provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds` })());
    expect(e.code).toBe('Timeout');
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    await allSocketsClosed();
  });

  it.each(['oversized', 'oversized-chunked'] as const)(
    '%s (5 MB): rejects fast with ResponseTooLarge and drops the socket',
    async (m) => {
      mode = m;
      const started = performance.now();
      const e = await failure(provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds` }, { timeoutMs: 5000 })());
      expect(e.code).toBe('ResponseTooLarge');
      expect(performance.now() - started).toBeLessThan(1000);
      await allSocketsClosed();
    },
  );

  it('500: rejects with HttpStatus500, without the body', async () => {
    mode = '500';
    expect((await failure(provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds` })())).code).toBe(
      'HttpStatus500',
    );
  });

  it('wrong token: rejects with HttpStatus401, without the body or the token', async () => {
    expectedAuth = 'the-right-token';
    const e = await failure(
      provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds`, AWS_CONTAINER_AUTHORIZATION_TOKEN: TOKEN })(),
    );
    expect(e.code).toBe('HttpStatus401');
    expect(seenAuth).toEqual([TOKEN]);
  });

  it.each(['bad-json', 'missing-fields'] as const)(
    '%s: rejects with MalformedResponse, without the body',
    async (m) => {
      mode = m;
      const e = await failure(provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds` })());
      expect(e.code).toBe('MalformedResponse');
      expect(e.cause).toBeUndefined();
    },
  );
});

describe('fromContainerEndpoint: refused before any connection', () => {
  // 0.0.0.0 and the IPv4-mapped loopback reach this very server on Linux: a connection would be
  // seen. They are not on the SDK's list, so plain http to them is refused.
  it.each([
    ['a private address', () => 'http://10.0.0.1/creds'],
    ['0.0.0.0', () => `http://0.0.0.0:${port}/creds`],
    ['IPv4-mapped loopback', () => `http://[::ffff:127.0.0.1]:${port}/creds`],
    ['a DNS name', () => `http://credentials.example.com:${port}/creds`],
  ])('plain http to %s: ForbiddenHost', async (_name, uri) => {
    const started = performance.now();
    const e = await failure(
      provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: uri(), AWS_CONTAINER_AUTHORIZATION_TOKEN: TOKEN })(),
    );
    expect(e.code).toBe('ForbiddenHost');
    expect(performance.now() - started).toBeLessThan(100);
    expect(opened).toBe(0);
  });

  it.each([
    ['CR LF', `${TOKEN}\r\nX-Injected: 1`],
    ['LF', `${TOKEN}\nX-Injected: 1`],
    ['CR', `${TOKEN}\rX-Injected: 1`],
  ])('a token with %s: InvalidToken, from the env or the token file', async (_name, bad) => {
    const file = join(dir, 'token');
    writeFileSync(file, bad);
    const fromEnv = await failure(
      provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds`, AWS_CONTAINER_AUTHORIZATION_TOKEN: bad })(),
    );
    const fromFile = await failure(
      provider({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: file })(),
    );
    expect([fromEnv.code, fromFile.code]).toEqual(['InvalidToken', 'InvalidToken']);
    expect(opened).toBe(0);
  });

  it('an unreadable token file: TokenFileUnreadable', async () => {
    const e = await failure(
      provider({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${base}/creds`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: join(dir, 'missing'),
      })(),
    );
    expect(e.code).toBe('TokenFileUnreadable');
    expect(opened).toBe(0);
  });

  it('a relative URI that is not a path (would move the request off the ECS agent): InvalidUri', async () => {
    const e = await failure(provider({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: `@127.0.0.1:${port}/creds` })());
    expect(e.code).toBe('InvalidUri');
    expect(opened).toBe(0);
  });

  it('no URI at all: NoEndpoint', async () => {
    expect((await failure(provider({})())).code).toBe('NoEndpoint');
  });
});

describe('hostAllowed: the SDK rule for plain http (https goes anywhere)', () => {
  it.each([
    'https://credentials.example.com/x',
    'https://10.0.0.1/x',
    'http://169.254.170.2/v2/credentials/abc',
    'http://169.254.170.23/v1/credentials',
    'http://[fd00:ec2::23]/v1/credentials',
    'http://127.0.0.1:8080/x',
    'http://127.255.0.9/x',
    'http://[::1]:8080/x',
    'http://[0000:0000:0000:0000:0000:0000:0000:0001]/x',
    'http://localhost:8080/x',
  ])('allows %s', (u) => {
    expect(hostAllowed(new URL(u))).toBe(true);
  });

  it.each([
    'http://10.0.0.1/x',
    'http://169.254.169.254/latest/meta-data/',
    'http://169.254.170.3/x',
    'http://0.0.0.0/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://[fd00:ec2::24]/x',
    'http://128.0.0.1/x',
    'http://127.0.0.1.example.com/x',
    'http://127.0.0.1x/x',
    'ftp://127.0.0.1/x',
  ])('refuses %s', (u) => {
    expect(hostAllowed(new URL(u))).toBe(false);
  });
});

describe('defaultCredentialChain uses it for the container endpoint', () => {
  beforeEach(() => {
    isolateAwsCredentialChain();
  });

  it('hang: the chain rejects within its timeout and the socket is destroyed', async () => {
    mode = 'hang';
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${base}/v2/credentials/task`);
    const started = performance.now();
    const err: unknown = await defaultCredentialChain({ region: 'eu-west-1', timeoutMs: TIMEOUT_MS })().catch(
      (e: unknown) => e,
    );
    // Named as the SDK names its timeouts, which createBaseCredentials counts as 'Timeout'.
    expect(err).toMatchObject({ name: 'TimeoutError' });
    expect((err as Error).cause).toBeInstanceOf(ContainerCredentialsError);
    expect((err as Error).message).not.toContain(TOKEN);
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    await allSocketsClosed();
  });

  it('caps the answer at maxResponseBytes', async () => {
    mode = 'oversized-chunked';
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${base}/creds`);
    expect((await failure(defaultCredentialChain({ timeoutMs: 5000, maxResponseBytes: 4096 })())).code).toBe(
      'ResponseTooLarge',
    );
  });

  it('static keys in the environment win: the endpoint is not called (SDK chain as before)', async () => {
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', `${base}/creds`);
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIASTATIC');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'static-secret');
    expect((await defaultCredentialChain({ timeoutMs: TIMEOUT_MS })()).accessKeyId).toBe('AKIASTATIC');
    expect(opened).toBe(0);
  });
});
