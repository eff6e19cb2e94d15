// The Sts adapter calls the STS client with no send() options, so smithy's middleware cache
// (cacheMiddleware) is used; and a caller's abort still reaches the HTTP request it started
// (signalFor + the credvend middleware in src/aws/http-handler.ts): the socket is destroyed at
// once and no attempt follows, as with `send(cmd, { abortSignal })`.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IssuancePlan } from '../../src/policy/plan.js';
import { createStsClient, createSts } from '../../src/sts/sts.js';
import { freePort } from '../helpers/net.js';

const PLAN: IssuancePlan = {
  profile: 'uploads',
  operation: 'upload',
  roleArn: 'arn:aws:iam::123456789012:role/vendor',
  bucket: 'tenant-bucket',
  region: 'eu-west-1',
  keys: ['uploads/a'],
  roleSessionName: 'cv-test',
  durationSeconds: 900,
  policy: { document: {}, json: '{"Version":"2012-10-17","Statement":[]}' },
  policyArns: [],
  tags: [],
  transitiveTagKeys: [],
  sourceIdentity: 'cv-test',
  claimsUsed: [],
};

const XML = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIATESTISSUED</AccessKeyId><SecretAccessKey>issued-secret</SecretAccessKey><SessionToken>issued-token</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`;

let server: Server;
let endpoint: string;
let hang = false;
let requests = 0;
const closed: Promise<void>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests += 1;
    req.resume();
    if (hang) return; // never answers
    res.writeHead(200, { 'content-type': 'text/xml' }).end(XML);
  });
  server.on('connection', (s: Socket) => closed.push(new Promise((r) => s.on('close', () => r()))));
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const client = () =>
  createStsClient({
    region: 'eu-west-1',
    endpoint,
    credentials: async () => ({ accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }),
    requestTimeoutMs: 5000,
    connectTimeoutMs: 1000,
    maxAttempts: 3,
  });

describe('the Sts adapter and the SDK middleware cache', () => {
  it('sends with the command only (any options object would rebuild the middleware stack per call)', async () => {
    // Prepare
    hang = false;
    const c = client();
    const send = vi.spyOn(c, 'send');
    const sts = createSts(c);
    // Act
    const out = await sts.assumeRole(PLAN, new AbortController().signal);
    await sts.assumeRole(PLAN);
    // Assess
    expect(out.accessKeyId).toBe('ASIATESTISSUED');
    expect(send.mock.calls.map((args) => args.length)).toEqual([1, 1]);
    c.destroy();
  });

  it("a caller's abort still destroys the request's socket, and no further attempt is made", async () => {
    // Prepare: STS hangs
    hang = true;
    requests = 0;
    closed.length = 0;
    const c = client();
    const sts = createSts(c);
    const controller = new AbortController();
    const call = sts.assumeRole(PLAN, controller.signal);
    while (requests === 0) await new Promise((r) => setTimeout(r, 10));
    // Act
    controller.abort(new Error('shutting down'));
    // Assess: rejected with the reason at once; the server sees its socket closed, well before
    // the 5 s request timeout, and no retry arrives.
    await expect(call).rejects.toThrow('shutting down');
    await Promise.race([
      Promise.all(closed),
      new Promise((_, reject) => setTimeout(() => reject(new Error('socket still open')), 2000)),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    expect(requests).toBe(1);
    c.destroy();
  });
});
