// src/sts/http-client.ts, credvend's own STS wire client, against the SDK it replaces: the same
// form body, the same SigV4 signature, the same reading of an answer; and against a loopback
// server for what only a socket shows (abort, retries). Deadlines, caps and error classes are in
// test/unit/upstream-deadlines.test.ts; a real STS (Ceph RGW) verifies the signature in e2e.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import {
  AssumeRoleCommand,
  GetCallerIdentityCommand,
  STSClient,
  type AssumeRoleCommandInput,
} from '@aws-sdk/client-sts';
import { HttpRequest, HttpResponse } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { describe, expect, it } from 'vitest';
import {
  assumeRoleBody,
  createStsClient,
  elementText,
  regionalStsEndpoint,
  signStsRequest,
  StsServiceError,
} from '../../src/sts/http-client.js';
import { createSts } from '../../src/sts/sts.js';
import { freePort } from '../helpers/net.js';
import { PLAN } from '../helpers/policy.js';

const CREDS = { accessKeyId: 'ASIASERVICEKEY', secretAccessKey: 'service/secret+key', sessionToken: 'service-token==' };

// Every AssumeRole parameter credvend sends, with characters that need escaping.
const FULL_INPUT: AssumeRoleCommandInput = {
  RoleArn: 'arn:aws:iam::123456789012:role/path/vendor',
  RoleSessionName: 'cv-alice@example.com',
  DurationSeconds: 3600,
  Policy: JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 's3:PutObject', Resource: "arn:aws:s3:::b/u/a b+c(1)*!'~é.txt" }],
  }),
  PolicyArns: [{ arn: 'arn:aws:iam::123456789012:policy/a' }, { arn: 'arn:aws:iam::123456789012:policy/b' }],
  Tags: [
    { Key: 'tenant', Value: 'acme & co' },
    { Key: 'sub', Value: 'alice/ü' },
  ],
  TransitiveTagKeys: ['tenant'],
  ExternalId: 'ext=1&2',
  SourceIdentity: 'alice',
};

const ANSWER = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/vendor/cv-test</Arn><AssumedRoleId>AROA:cv</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAISSUED</AccessKeyId>
      <SecretAccessKey>se/cr+et&amp;&lt;x&gt;&#65;&#x42;</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2lu+/token==</SessionToken>
      <Expiration>2099-01-02T03:04:05Z</Expiration>
    </Credentials>
    <PackedPolicySize>7</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>`;

/** An SDK STSClient whose requests are captured and answered with `xml`, never sent. */
function capturingSdk(xml: string, status = 200): { client: STSClient; requests: HttpRequest[] } {
  const requests: HttpRequest[] = [];
  const client = new STSClient({
    region: 'eu-west-1',
    endpoint: 'https://sts.example.test',
    credentials: CREDS,
    maxAttempts: 1,
    requestHandler: {
      handle: (request: HttpRequest) => {
        requests.push(request);
        return Promise.resolve({
          response: new HttpResponse({
            statusCode: status,
            headers: { 'content-type': 'text/xml' },
            body: Readable.from([Buffer.from(xml)]),
          }),
        });
      },
    },
  });
  return { client, requests };
}

const sorted = (form: string): string[][] => [...new URLSearchParams(form)].sort(([a], [b]) => a.localeCompare(b));

describe('the AssumeRole form body', () => {
  it("is the SDK's, parameter for parameter and value for value", async () => {
    // Threat: a parameter serialised differently (a list index, an escaped character) would send
    // STS another policy, tag or session than the plan's; the inline policy must arrive as built.
    const { client, requests } = capturingSdk(ANSWER);
    await client.send(new AssumeRoleCommand(FULL_INPUT));
    const sdkBody = String(requests[0]?.body);
    expect(sorted(assumeRoleBody(FULL_INPUT))).toEqual(sorted(sdkBody));
    expect(new URLSearchParams(assumeRoleBody(FULL_INPUT)).get('Policy')).toBe(FULL_INPUT.Policy);
  });

  it('always carries the inline session policy the plan built', () => {
    // Threat: an AssumeRole without Policy gets the role's full permissions.
    const body = new URLSearchParams(
      assumeRoleBody({ RoleArn: PLAN.roleArn, RoleSessionName: 's', Policy: PLAN.policy.json }),
    );
    expect(body.get('Policy')).toBe(PLAN.policy.json);
  });
});

describe('the SigV4 signature', () => {
  it("equals the SDK signer's for the same request, keys and time", async () => {
    // Threat: a signature STS refuses is an outage; one that signs less than the body (the
    // policy) would let a path in between change the grant. The body's hash is signed.
    const at = new Date('2026-11-30T12:34:56Z');
    const body = assumeRoleBody(FULL_INPUT);
    for (const [host, credentials] of [
      ['sts.eu-west-1.amazonaws.com', CREDS],
      ['127.0.0.1:7480', { accessKeyId: 'AKIDLONGTERM', secretAccessKey: 'long-term' }],
    ] as const) {
      const ours = signStsRequest(body, {
        host,
        region: 'eu-west-1',
        credentials,
        at,
        signingKey: (secret, day) => {
          // SigV4's key derivation, written out here rather than taken from the module under test.
          const h = (k: string | Buffer, d: string): Buffer => createHmac('sha256', k).update(d).digest();
          return h(h(h(h(`AWS4${secret}`, day), 'eu-west-1'), 'sts'), 'aws4_request');
        },
      });
      const signer = new SignatureV4({
        service: 'sts',
        region: 'eu-west-1',
        credentials,
        sha256: NodeSha256,
        applyChecksum: false,
      });
      const sdk = await signer.sign(
        new HttpRequest({
          method: 'POST',
          protocol: 'https:',
          hostname: host.split(':')[0] ?? host,
          path: '/',
          headers: { 'content-type': ours['content-type'] ?? '', host },
          body,
        }),
        { signingDate: at },
      );
      expect(ours.authorization).toBe(sdk.headers.authorization);
      expect(ours['x-amz-date']).toBe(sdk.headers['x-amz-date']);
      expect(ours['x-amz-security-token']).toBe(sdk.headers['x-amz-security-token']);
    }
  });
});

describe('reading an answer', () => {
  it("reads AssumeRole's credentials as the SDK does (entities decoded, dates and sizes typed)", async () => {
    const { client } = capturingSdk(ANSWER);
    const sdk = await client.send(new AssumeRoleCommand({ RoleArn: PLAN.roleArn, RoleSessionName: 's' }));
    const server = await loopback(() => ({ status: 200, body: ANSWER }));
    const ours = await server.client().assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' });
    expect(ours.Credentials).toEqual(sdk.Credentials);
    expect(ours.PackedPolicySize).toBe(sdk.PackedPolicySize);
    expect(ours.Credentials?.SecretAccessKey).toBe('se/cr+et&<x>AB');
    await server.close();
  });

  it('reads GetCallerIdentity as the SDK does', async () => {
    const xml = `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/t/x</Arn><UserId>AROA:x</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`;
    const { client } = capturingSdk(xml);
    const sdk = await client.send(new GetCallerIdentityCommand({}));
    const server = await loopback(() => ({ status: 200, body: xml }));
    const ours = await server.client().getCallerIdentity();
    expect({ Account: ours.Account, Arn: ours.Arn }).toEqual({ Account: sdk.Account, Arn: sdk.Arn });
    await server.close();
  });

  it("names an error by STS's <Code> (AWS's ErrorResponse and S3's Error shape), never by its message", async () => {
    const aws = `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>user arn:aws:iam::1:user/x</Message></Error></ErrorResponse>`;
    const s3 = `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>m</Message><RequestId>r</RequestId></Error>`;
    for (const body of [aws, s3]) {
      const server = await loopback(() => ({ status: 403, body }));
      const err = await server
        .client()
        .assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StsServiceError);
      expect(err).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      expect(String((err as Error).message)).not.toContain('arn:');
      await server.close();
    }
  });

  it('an error code that is not a plain name becomes Unknown (it becomes a metric label)', async () => {
    const server = await loopback(() => ({ status: 400, body: '<Error><Code>a b<script></Code></Error>' }));
    const err = await server
      .client()
      .assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'Unknown' });
    await server.close();
  });

  it('a character reference past Unicode in an error answer becomes Unknown; the process survives', async () => {
    // Threat: `&#x110000;` made String.fromCodePoint throw inside the socket's callback, an
    // uncaught exception: one malformed answer from STS or a proxy took every instance down.
    const server = await loopback(() => ({ status: 400, body: '<Error><Code>&#x110000;&#99999999;</Code></Error>' }));
    const err = await server
      .client()
      .assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'Unknown', $metadata: { httpStatusCode: 400 } });
    expect(elementText('<A>&#x110000;&#65;</A>', 'A')).toBe('&#x110000;A');
    await server.close();
  });

  it('elementText reads only the element named, and nothing from an unclosed one', () => {
    expect(elementText('<A>1</A><AB>2</AB>', 'AB')).toBe('2');
    expect(elementText('<A>1', 'A')).toBeUndefined();
  });
});

describe('retries (the SDK standard mode)', () => {
  it('a 500 is retried; a 403 is not', async () => {
    let n = 0;
    const server = await loopback(() =>
      ++n === 1 ? { status: 500, body: '<Error><Code>InternalFailure</Code></Error>' } : { status: 200, body: ANSWER },
    );
    const out = await server.client({ maxAttempts: 3 }).assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' });
    expect(out.Credentials?.AccessKeyId).toBe('ASIAISSUED');
    expect(n).toBe(2);
    await server.close();

    let m = 0;
    const denied = await loopback(() => (++m, { status: 403, body: '<Error><Code>AccessDenied</Code></Error>' }));
    await expect(
      denied.client({ maxAttempts: 3 }).assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' }),
    ).rejects.toThrow();
    expect(m).toBe(1);
    await denied.close();
  });

  it('a throttling answer is retried after the long backoff', async () => {
    let n = 0;
    const waits: [number, boolean][] = [];
    const server = await loopback(() =>
      ++n < 3 ? { status: 400, body: '<Error><Code>Throttling</Code></Error>' } : { status: 200, body: ANSWER },
    );
    const client = server.client({
      maxAttempts: 3,
      backoffMs: (retry, throttled) => {
        waits.push([retry, throttled]);
        return 1;
      },
    });
    await client.assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' });
    expect(waits).toEqual([
      [0, true],
      [1, true],
    ]);
    await server.close();
  });
});

describe('a caller that gives up', () => {
  it("a caller's abort destroys the request's socket at once, and no further attempt is made", async () => {
    // Threat: a shutdown (or a gone client) leaving calls and sockets to STS behind.
    let requests = 0;
    const closed: Promise<void>[] = [];
    const server = await loopback(() => {
      requests += 1;
      return undefined; // never answers
    }, closed);
    const sts = createSts(server.client({ requestTimeoutMs: 5000, maxAttempts: 3 }));
    const controller = new AbortController();
    const call = sts.assumeRole(PLAN, controller.signal);
    while (requests === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort(new Error('shutting down'));
    // Rejected with the reason at once; the server sees its socket closed well before the 5 s
    // attempt timeout, and no retry arrives.
    await expect(call).rejects.toThrow('shutting down');
    await Promise.race([
      Promise.all(closed),
      new Promise((_, reject) => setTimeout(() => reject(new Error('socket still open')), 2000)),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    expect(requests).toBe(1);
    await server.close();
  });
});

describe('the endpoint', () => {
  it('reaches an IPv6 literal endpoint, and signs the Host header it sends', async () => {
    let host: string | undefined;
    const server = createServer((req, res) => {
      host = req.headers.host;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/xml' }).end(ANSWER));
    });
    await new Promise<void>((r) => server.listen(0, '::1', r));
    const { port } = server.address() as { port: number };
    const client = createStsClient({
      region: 'eu-west-1',
      endpoint: `http://[::1]:${port}`,
      credentials: async () => CREDS,
      requestTimeoutMs: 2000,
      connectTimeoutMs: 1000,
      maxAttempts: 1,
    });
    try {
      const out = await client.assumeRole({ RoleArn: PLAN.roleArn, RoleSessionName: 's' });
      expect(out.Credentials?.AccessKeyId).toBe('ASIAISSUED');
      expect(host).toBe(`[::1]:${port}`);
    } finally {
      client.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it("is AWS's regional STS endpoint when none is configured (China regions on .com.cn)", () => {
    expect(regionalStsEndpoint('eu-west-1')).toBe('https://sts.eu-west-1.amazonaws.com');
    expect(regionalStsEndpoint('cn-north-1')).toBe('https://sts.cn-north-1.amazonaws.com.cn');
  });

  it('refuses an endpoint with a path or another scheme (it would sign a request STS never sees)', () => {
    const base = {
      region: 'eu-west-1',
      credentials: async () => CREDS,
      requestTimeoutMs: 1000,
      connectTimeoutMs: 1000,
      maxAttempts: 1,
    };
    expect(() => createStsClient({ ...base, endpoint: 'https://sts.example.test/prefix' })).toThrow(/path/);
    expect(() => createStsClient({ ...base, endpoint: 'ftp://sts.example.test' })).toThrow(/http/);
  });
});

/** The SDK signer's hash interface over node:crypto (what @smithy/hash-node does). */
class NodeSha256 {
  private readonly h: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }

  update(data: SourceData): void {
    this.h.update(bytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
}

const bytes = (d: SourceData): string | Uint8Array =>
  typeof d === 'string' ? d : d instanceof Uint8Array ? d : new Uint8Array(ArrayBuffer.isView(d) ? d.buffer : d);

// --- a loopback STS --------------------------------------------------------------------------------

async function loopback(
  reply: () => { status: number; body: string } | undefined,
  closed: Promise<void>[] = [],
): Promise<{
  client: (o?: Partial<Parameters<typeof createStsClient>[0]>) => ReturnType<typeof createStsClient>;
  close: () => Promise<void>;
}> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const r = reply();
      if (!r) return;
      res.writeHead(r.status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(r.body) }).end(r.body);
    });
  });
  server.on('connection', (s: Socket) => closed.push(new Promise((r) => s.on('close', () => r()))));
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const clients: ReturnType<typeof createStsClient>[] = [];
  return {
    client: (o = {}) => {
      const c = createStsClient({
        region: 'eu-west-1',
        endpoint: `http://127.0.0.1:${port}`,
        credentials: async () => CREDS,
        requestTimeoutMs: 2000,
        connectTimeoutMs: 1000,
        maxAttempts: 1,
        ...o,
      });
      clients.push(c);
      return c;
    },
    close: async () => {
      for (const c of clients) c.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
