// Loopback stand-ins for the two upstreams the service's hot path depends on, with faults that a
// test switches at run time: the STS query API (AssumeRole, GetCallerIdentity) and the ECS / EKS
// container-credentials endpoint the service gets its own AWS credentials from. Both live in the
// test process, listen on 127.0.0.1 only and count every call they receive.
//
// The STS stub behaves as real STS does about the signing key: a request signed with base
// credentials that have expired is refused with ExpiredToken and counted, so a test can prove
// that expired keys are never used to sign (issue 8, deliverable 3).
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { callerIdentityReply, containerCredentialsReply } from './loopback.js';

export const ACCOUNT = '123456789012';
export const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/x`;
/** The service's own identity as GetCallerIdentity reports it: an ECS task role session. */
export const SERVICE_ARN = `arn:aws:sts::${ACCOUNT}:assumed-role/credvend-task/x`;

// Markers in every secret a stub hands out: a log or audit line that contains one holds a
// secret (or a slice of one), whichever credential it was. One search covers thousands of them.
export const SECRET_MARKERS = ['cvSECRETx', 'cvTOKENx', 'cvBASESECRETx', 'cvBASETOKENx'] as const;

const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const keyId = (): string => `ASIA${[...randomBytes(16)].map((b) => KEY_ALPHABET[b & 31]).join('')}`;
const secretWith = (marker: string, bytes: number): string => `${marker}${randomBytes(bytes).toString('base64url')}`;

export type StsMode =
  'ok' | 'latency' | 'throttle' | 'error500' | 'error503' | 'hang' | 'reset' | 'malformed' | 'slow' | 'oversized';

export interface StsStubOptions {
  /** Answer delay in mode `latency` (below the service's STS timeout). */
  latencyMs?: number;
  /** Answer delay in mode `slow` (beyond the service's STS timeout). */
  slowMs?: number;
  /** Body size in mode `oversized`. */
  oversizedBytes?: number;
}

export interface StsStub {
  readonly url: string;
  mode(): StsMode;
  setMode(mode: StsMode, opts?: StsStubOptions): void;
  /** AssumeRole calls received, in total and by the mode that answered them. */
  assumeRoleCalls(): number;
  callsByMode(): Readonly<Record<string, number>>;
  callerIdentityCalls(): number;
  /** Requests signed with base credentials that had expired (refused as real STS does). */
  signedWithExpiredKeys(): number;
  /** Requests the stub is holding without an answer (hang, slow, latency). */
  pending(): number;
  /** Access key ids handed out, in order. */
  issuedKeyIds(): readonly string[];
  close(): Promise<void>;
}

export interface ContainerStub {
  readonly url: string;
  mode(): ContainerMode;
  setMode(mode: ContainerMode): void;
  /** Lifetime of the credentials answered in mode `healthy`. */
  setTtlMs(ms: number): void;
  calls(): number;
  callsByMode(): Readonly<Record<string, number>>;
  /** True for an access key id this endpoint issued whose Expiration has passed. */
  isExpired(accessKeyId: string): boolean;
  close(): Promise<void>;
}

export type ContainerMode = 'healthy' | 'error500' | 'hang' | 'expired';

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

function stsError(type: 'Sender' | 'Receiver', code: string, message: string): string {
  return `<ErrorResponse xmlns="${STS_NS}"><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
}

function assumeRoleXml(form: URLSearchParams, accessKeyId: string, padding = ''): string {
  const session = form.get('RoleSessionName') ?? 'session';
  const role = (form.get('RoleArn') ?? ROLE_ARN).split('/').pop() ?? 'x';
  const expiration = new Date(Date.now() + 15 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `<AssumeRoleResponse xmlns="${STS_NS}"><AssumeRoleResult>${padding}
<AssumedRoleUser><Arn>arn:aws:sts::${ACCOUNT}:assumed-role/${role}/${session}</Arn><AssumedRoleId>AROAFAULTSTUB:${session}</AssumedRoleId></AssumedRoleUser>
<Credentials><AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${secretWith(SECRET_MARKERS[0], 30)}</SecretAccessKey><SessionToken>${secretWith(SECRET_MARKERS[1], 48)}${secretWith(SECRET_MARKERS[1], 300)}</SessionToken><Expiration>${expiration}</Expiration></Credentials>
<PackedPolicySize>6</PackedPolicySize></AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
}

// Built once per size: the stub must stay cheap while the service reads (or refuses) megabytes.
let oversized: Buffer = Buffer.alloc(0);
function oversizedAnswer(bytes: number): Buffer {
  if (oversized.length < bytes) {
    const form = new URLSearchParams({ RoleSessionName: 'oversized' });
    const xml = assumeRoleXml(form, keyId(), `<Padding>${'x'.repeat(bytes)}</Padding>`);
    oversized = Buffer.from(xml);
  }
  return oversized;
}

/** The access key id a SigV4 request was signed with (from `Credential=AKID/date/...`). */
function signingKeyId(req: IncomingMessage): string | undefined {
  return /Credential=([A-Z0-9]+)\//.exec(req.headers.authorization ?? '')?.[1];
}

interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

/** A loopback HTTP server that reads each request body, then calls `handle`; it tracks its sockets. */
async function listen(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<Listening> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 65_000; // as AWS endpoints: the service's pool, not the stub, closes idle sockets
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An XML answer with its length, as AWS sends them. */
function xml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) }).end(body);
}

function countInto(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

export async function startStsStub(
  opts: { baseCredentials?: Pick<ContainerStub, 'isExpired'> } = {},
): Promise<StsStub> {
  let mode: StsMode = 'ok';
  let settings: Required<StsStubOptions> = { latencyMs: 50, slowMs: 2_000, oversizedBytes: 5 * 1024 * 1024 };
  let assumeRole = 0;
  let callerIdentity = 0;
  let expiredSigned = 0;
  let pending = 0;
  const byMode: Record<string, number> = {};
  const issued: string[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const later = (ms: number, fn: () => void): void => {
    pending += 1;
    const t = setTimeout(() => {
      timers.delete(t);
      pending -= 1;
      fn();
    }, ms);
    timers.add(t);
  };

  const answerAssumeRole = (form: URLSearchParams, res: ServerResponse): void => {
    if (res.destroyed) return;
    const id = keyId();
    issued.push(id);
    xml(res, 200, assumeRoleXml(form, id));
  };

  const server = await listen((req, body, res) => {
    const form = new URLSearchParams(body);
    const action = form.get('Action');
    const signer = signingKeyId(req);
    if (signer && opts.baseCredentials?.isExpired(signer)) {
      expiredSigned += 1;
      xml(res, 400, stsError('Sender', 'ExpiredToken', 'The security token included in the request is expired'));
      return;
    }
    // Start-up check: always answered, whatever the mode, so a fault never stops a start.
    if (action === 'GetCallerIdentity') {
      callerIdentity += 1;
      return xml(res, 200, callerIdentityReply(SERVICE_ARN, ACCOUNT).body);
    }
    if (action !== 'AssumeRole') {
      xml(res, 400, stsError('Sender', 'InvalidAction', 'unsupported by the stub'));
      return;
    }
    assumeRole += 1;
    countInto(byMode, mode);
    switch (mode) {
      case 'ok':
        return answerAssumeRole(form, res);
      case 'latency':
        return later(settings.latencyMs, () => answerAssumeRole(form, res));
      case 'slow':
        return later(settings.slowMs, () => answerAssumeRole(form, res));
      case 'throttle':
        return xml(res, 400, stsError('Sender', 'Throttling', 'Rate exceeded'));
      case 'error500':
        return xml(
          res,
          500,
          stsError('Receiver', 'InternalFailure', 'We encountered an internal error. Please try again.'),
        );
      case 'error503':
        return xml(res, 503, stsError('Receiver', 'ServiceUnavailable', 'Service is unavailable. Please try again.'));
      case 'malformed':
        return xml(
          res,
          200,
          '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIA<<&&',
        );
      case 'reset':
        req.socket.destroy(); // accepted and read, then the connection is reset
        return;
      case 'hang':
        pending += 1; // accepted, read, never answered: only the service (or close()) frees the socket
        res.on('close', () => (pending -= 1));
        return;
      case 'oversized': {
        // Valid XML around a huge padding element: a client without a size cap parses all of it.
        // Every other answer declares its length, the others are chunked: both must be capped.
        const body = oversizedAnswer(settings.oversizedBytes);
        const declared = byMode.oversized! % 2 === 1;
        res
          .writeHead(200, { 'content-type': 'text/xml', ...(declared ? { 'content-length': body.length } : {}) })
          .end(body);
        return;
      }
    }
  });

  return {
    url: server.url,
    mode: () => mode,
    setMode(m, o = {}) {
      mode = m;
      settings = { ...settings, ...o };
    },
    assumeRoleCalls: () => assumeRole,
    callsByMode: () => ({ ...byMode }),
    callerIdentityCalls: () => callerIdentity,
    signedWithExpiredKeys: () => expiredSigned,
    pending: () => pending,
    issuedKeyIds: () => issued,
    async close() {
      for (const t of timers) clearTimeout(t);
      await server.close();
    },
  };
}

/** The ECS / EKS Pod Identity credentials endpoint: `AWS_CONTAINER_CREDENTIALS_FULL_URI=<url>/creds`. */
export async function startContainerStub(opts: { ttlMs?: number } = {}): Promise<ContainerStub> {
  let mode: ContainerMode = 'healthy';
  let ttlMs = opts.ttlMs ?? 60 * 60_000;
  let calls = 0;
  const byMode: Record<string, number> = {};
  const expiries = new Map<string, number>();

  const server = await listen((_req, _body, res) => {
    calls += 1;
    countInto(byMode, mode);
    switch (mode) {
      case 'error500':
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end('{"code":"InternalError","message":"internal error"}');
        return;
      case 'hang':
        return; // never answered
      case 'healthy':
      case 'expired': {
        const expiration = new Date(Date.now() + (mode === 'healthy' ? ttlMs : -60_000));
        const accessKeyId = keyId();
        expiries.set(accessKeyId, expiration.getTime());
        const reply = containerCredentialsReply({
          accessKeyId,
          secretAccessKey: secretWith(SECRET_MARKERS[2], 30),
          sessionToken: secretWith(SECRET_MARKERS[3], 200),
          expiration,
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end(reply.body);
      }
    }
  });

  return {
    url: `${server.url}/creds`,
    mode: () => mode,
    setMode: (m) => (mode = m),
    setTtlMs: (ms) => (ttlMs = ms),
    calls: () => calls,
    callsByMode: () => ({ ...byMode }),
    isExpired(accessKeyId) {
      const at = expiries.get(accessKeyId);
      return at !== undefined && at <= Date.now();
    },
    close: () => server.close(),
  };
}
