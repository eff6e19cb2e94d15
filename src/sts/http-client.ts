// The two STS actions credvend calls (AssumeRole, GetCallerIdentity), over HTTP with a SigV4
// signature of our own: the wire under src/sts/sts.ts.
//
// Why not the SDK's STSClient: every AssumeRole through it ran the SDK's generic machinery
// (endpoint rule evaluation, schema serde, a generic XML parser, user-agent and retry middleware),
// about 0.5 ms of CPU per call, more than all of credvend's own work on a request. These two
// actions are fixed and small: a form body, one signature (one SHA-256 of the body, one of the
// canonical request and one HMAC; the signing key is derived once per key, day and region), and
// an answer of a few known elements. test/unit/sts-http-client.test.ts checks the signature
// against the SDK's own signer and the serialised body against the SDK's serialiser; the e2e suite
// calls a real STS (Ceph RGW) with it.
//
// Every bound of src/aws/http-handler.ts holds here too, because the same upstream threats apply
// (threat model there): a keep-alive pool of exactly `maxSockets` sockets that an idle timeout
// empties, a connect timeout, a per-attempt timeout that destroys the socket, a response cap that
// drops an oversized answer before it is parsed, the SDK standard retry mode's attempts and
// backoff, and failures shaped as the SDK shapes them (name = the error code, $metadata with the
// HTTP status) so src/sts/sts.ts classifies both alike.
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_SOCKETS } from '../limits.js';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import {
  IDLE_SOCKET_TIMEOUT_MS,
  MAX_BACKOFF_MS,
  readCappedBody,
  socketHost,
  THROTTLING_BACKOFF_BASE_MS,
  TRANSIENT_BACKOFF_BASE_MS,
  upstreamDeadlineMs,
} from '../aws/http-handler.js';
import { ALGORITHM, amzDate, deriveSigningKey, escapeUri, signature } from '../aws/sigv4.js';
import { boundedName } from '../error-name.js';
import { sha256 } from '../digest.js';

/** What credvend reads of an AssumeRole answer (the SDK's names, so a mocked SDK client fits). */
export interface AssumeRoleOutput {
  readonly Credentials?:
    | {
        readonly AccessKeyId?: string | undefined;
        readonly SecretAccessKey?: string | undefined;
        readonly SessionToken?: string | undefined;
        readonly Expiration?: Date | undefined;
      }
    | undefined;
  readonly PackedPolicySize?: number | undefined;
}

export interface CallerIdentityOutput {
  readonly Account?: string | undefined;
  readonly Arn?: string | undefined;
}

/** The STS actions credvend calls; the SDK's STSClient fits it through a two-line adapter (tests). */
export interface StsClient {
  /** The longest one call may take, retries included (upstreamDeadlineMs of its options). */
  readonly deadlineMs?: number;
  assumeRole(input: AssumeRoleCommandInput, signal?: AbortSignal): Promise<AssumeRoleOutput>;
  getCallerIdentity(signal?: AbortSignal): Promise<CallerIdentityOutput>;
  destroy(): void;
}

export interface StsClientOptions {
  readonly region: string;
  /** STS (or an S3-compatible STS) endpoint; AWS's regional STS endpoint when absent. */
  readonly endpoint?: string | undefined;
  readonly credentials: AwsCredentialIdentityProvider;
  /** One attempt, from sending the request to the end of the answer. */
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxAttempts: number;
  /** Keep-alive sockets to STS (CREDVEND_STS_MAX_IN_FLIGHT); 64 when not given. */
  readonly maxSockets?: number | undefined;
  /** Largest STS answer accepted (CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES); 256 KiB when not given. */
  readonly maxResponseBytes?: number | undefined;
  /** Test hook: the backoff before retry `retry` (0-based) after a throttling or transient error. */
  readonly backoffMs?: (retry: number, throttled: boolean) => number;
}

/** AWS's regional STS endpoint (the SDK's default since v3.6xx); China regions have their own domain. */
export function regionalStsEndpoint(region: string): string {
  return `https://sts.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

// --- the SDK's standard retry mode -----------------------------------------------------------------

// Error codes the SDK treats as throttling (retried after the long backoff) and HTTP statuses and
// codes it treats as transient (retried after the short one). Anything else is final.
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
]);
const TRANSIENT_CODES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);

/** Full jitter, as the SDK: a random wait up to min(base x 2^retry, 20 s); upstreamDeadlineMs covers it. */
function jitteredBackoff(retry: number, throttled: boolean): number {
  const base = throttled ? THROTTLING_BACKOFF_BASE_MS : TRANSIENT_BACKOFF_BASE_MS;
  return Math.random() * Math.min(base * 2 ** retry, MAX_BACKOFF_MS);
}

/** An STS answer with an error status, named by its `<Code>` as the SDK names its exceptions. */
export class StsServiceError extends Error {
  readonly $metadata: { readonly httpStatusCode: number };
  readonly $retryable?: { readonly throttling: boolean };

  constructor(code: string, status: number) {
    // Never STS's <Message>: it can name ARNs and identities.
    super(`STS answered ${status} ${code}`);
    this.name = code;
    this.$metadata = { httpStatusCode: status };
    if (THROTTLING.has(code) || status === 429) this.$retryable = { throttling: true };
  }
}

/** The attempt ran past its timeout (connect, or the whole answer); its socket is destroyed. */
class AttemptTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';

  constructor(what: string, ms: number) {
    super(`${what} took longer than ${ms} ms`);
    // The SDK's name for its own request timeouts: classified as a timeout and retried.
    this.name = 'TimeoutError';
  }
}

function retryable(err: unknown): { throttled: boolean } | undefined {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  if (e instanceof StsServiceError) {
    if (e.$retryable?.throttling) return { throttled: true };
    if (TRANSIENT_STATUS.has(e.$metadata.httpStatusCode) || TRANSIENT_CODES.has(e.name)) return { throttled: false };
    return undefined;
  }
  if (e.name === 'TimeoutError' || (e.code !== undefined && TRANSIENT_NETWORK.has(e.code))) return { throttled: false };
  return undefined;
}

// --- the awsQuery form body ------------------------------------------------------------------------

const STS_VERSION = '2011-06-15';

/** AssumeRole's parameters as the awsQuery protocol writes them (lists as `Name.member.N`). */
export function assumeRoleBody(input: AssumeRoleCommandInput): string {
  const parts = [`Action=AssumeRole&Version=${STS_VERSION}`];
  const add = (name: string, value: string | number | undefined): void => {
    if (value !== undefined) parts.push(`${name}=${escapeUri(String(value))}`);
  };
  add('RoleArn', input.RoleArn);
  add('RoleSessionName', input.RoleSessionName);
  input.PolicyArns?.forEach((p, i) => add(`PolicyArns.member.${i + 1}.arn`, p.arn));
  add('Policy', input.Policy);
  add('DurationSeconds', input.DurationSeconds);
  input.Tags?.forEach((t, i) => {
    add(`Tags.member.${i + 1}.Key`, t.Key);
    add(`Tags.member.${i + 1}.Value`, t.Value);
  });
  input.TransitiveTagKeys?.forEach((k, i) => add(`TransitiveTagKeys.member.${i + 1}`, k));
  add('ExternalId', input.ExternalId);
  add('SerialNumber', input.SerialNumber);
  add('TokenCode', input.TokenCode);
  add('SourceIdentity', input.SourceIdentity);
  return parts.join('&');
}

const CALLER_IDENTITY_BODY = `Action=GetCallerIdentity&Version=${STS_VERSION}`;

// --- the answer ------------------------------------------------------------------------------------

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

const MAX_CODE_POINT = 0x10ffff;

function decodeXml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, e: string) => {
    if (!e.startsWith('#')) return ENTITIES[e] ?? whole;
    // Threat: a reference past Unicode's last code point made String.fromCodePoint throw inside a
    // socket callback, an uncaught exception that took the process down. It stays as it is.
    const cp = e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
    return cp <= MAX_CODE_POINT ? String.fromCodePoint(cp) : whole;
  });
}

/**
 * The text of the first `<name>` element, or undefined. Enough for STS's answers: each element
 * read here occurs once and holds text only (an ID, a key, a token, a date, a number).
 */
export function elementText(xml: string, name: string): string | undefined {
  const open = xml.indexOf(`<${name}>`);
  if (open < 0) return undefined;
  const start = open + name.length + 2;
  const end = xml.indexOf(`</${name}>`, start);
  return end < 0 ? undefined : decodeXml(xml.slice(start, end).trim());
}

function parseAssumeRole(xml: string): AssumeRoleOutput {
  if (!xml.includes('<Credentials>')) return {};
  const expiration = elementText(xml, 'Expiration');
  const packed = elementText(xml, 'PackedPolicySize');
  const expiresAt = expiration !== undefined ? new Date(expiration) : undefined;
  return {
    Credentials: {
      AccessKeyId: elementText(xml, 'AccessKeyId'),
      SecretAccessKey: elementText(xml, 'SecretAccessKey'),
      SessionToken: elementText(xml, 'SessionToken'),
      Expiration: expiresAt && !Number.isNaN(expiresAt.getTime()) ? expiresAt : undefined,
    },
    ...(packed !== undefined && /^\d+$/.test(packed) ? { PackedPolicySize: Number(packed) } : {}),
  };
}

function parseCallerIdentity(xml: string): CallerIdentityOutput {
  return { Account: elementText(xml, 'Account'), Arn: elementText(xml, 'Arn') };
}

/** `<Code>` of an error answer: STS's `<ErrorResponse><Error>` and S3's `<Error>` (Ceph RGW). */
function errorCode(xml: string): string {
  // A bounded, plain name: it becomes an error name and, through the adapter, a metric label.
  return boundedName(elementText(xml, 'Code')) ?? 'Unknown';
}

// --- SigV4 -----------------------------------------------------------------------------------------

const CONTENT_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';

/** The headers of a signed STS POST; `host` as sent (with a non-default port). */
export function signStsRequest(
  body: string,
  opts: {
    readonly host: string;
    readonly region: string;
    readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined };
    readonly at: Date;
    readonly signingKey: (secret: string, day: string) => Buffer;
  },
): Record<string, string> {
  const date = amzDate(opts.at);
  const day = date.slice(0, 8);
  const token = opts.credentials.sessionToken;
  const signedHeaders = token ? 'content-type;host;x-amz-date;x-amz-security-token' : 'content-type;host;x-amz-date';
  const canonical =
    `POST\n/\n\ncontent-type:${CONTENT_TYPE}\nhost:${opts.host}\nx-amz-date:${date}\n` +
    `${token ? `x-amz-security-token:${token}\n` : ''}\n${signedHeaders}\n${sha256(body)}`;
  const scope = `${day}/${opts.region}/sts/aws4_request`;
  const toSign = `${ALGORITHM}\n${date}\n${scope}\n${sha256(canonical)}`;
  const signed = signature(opts.signingKey(opts.credentials.secretAccessKey, day), toSign);
  return {
    'content-type': CONTENT_TYPE,
    host: opts.host,
    'x-amz-date': date,
    ...(token ? { 'x-amz-security-token': token } : {}),
    authorization: `${ALGORITHM} Credential=${opts.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signed}`,
  };
}

/** kSigning for one secret, day and region (service sts), derived once and kept until any changes. */
function signingKeyCache(region: string): (secret: string, day: string) => Buffer {
  let cached: { secret: string; day: string; key: Buffer } | undefined;
  return (secret, day) => {
    if (cached?.secret === secret && cached.day === day) return cached.key;
    const key = deriveSigningKey(secret, day, region, 'sts');
    cached = { secret, day, key };
    return key;
  };
}

// --- the client ------------------------------------------------------------------------------------

export function createStsClient(opts: StsClientOptions): StsClient {
  const url = new URL(opts.endpoint ?? regionalStsEndpoint(opts.region));
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:') throw new Error(`STS endpoint must be http(s): ${url.protocol}`);
  const port = url.port ? Number(url.port) : https ? 443 : 80;
  if (url.pathname !== '/') throw new Error('STS endpoint must not have a path');
  // The Host header as signed; Node would send the same (hostname plus a non-default port).
  const host = url.host;
  const hostname = socketHost(url);
  // Keep-alive pool; `timeout` destroys a pooled socket nobody used for a while (http-handler.ts).
  const maxSockets = opts.maxSockets ?? DEFAULT_MAX_SOCKETS;
  const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const agentOpts = { keepAlive: true, maxSockets, timeout: IDLE_SOCKET_TIMEOUT_MS };
  const agent = https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
  const request = https ? httpsRequest : httpRequest;
  const signingKey = signingKeyCache(opts.region);
  const backoff = opts.backoffMs ?? jitteredBackoff;

  /** One attempt: the answer's body (2xx) or an StsServiceError / network error / timeout. */
  const attempt = (body: string, signal: AbortSignal | undefined, headers: Record<string, string>): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, text?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(connectTimer);
        if (err) reject(err);
        else resolve(text ?? '');
      };
      // Fails the attempt and destroys its socket: it never goes back to the pool half-read.
      const fail = (err: Error): void => {
        settle(err);
        req.destroy(err);
      };
      const req = request({
        host: hostname,
        port,
        path: '/',
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(signal ? { signal } : {}),
      });
      let connectTimer: NodeJS.Timeout | undefined;
      // The whole attempt, request to the end of the answer: an STS answer is a few KB.
      const timer = setTimeout(
        () => fail(new AttemptTimeoutError('STS answer', opts.requestTimeoutMs)),
        opts.requestTimeoutMs,
      );
      req.once('socket', (socket) => {
        // A new socket must connect within its own timeout; a pooled one is connected already.
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () => fail(new AttemptTimeoutError('connecting to STS', opts.connectTimeoutMs)),
          opts.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (err) => settle(err));
      req.once('response', (res: IncomingMessage) => {
        readCappedBody(res, maxResponseBytes, (err, text = '') => {
          if (err) return fail(err);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return settle(undefined, text);
          // In a socket callback: anything thrown here would be an uncaught exception.
          try {
            settle(new StsServiceError(errorCode(text), status));
          } catch {
            settle(new StsServiceError('Unknown', status));
          }
        });
      });
      req.end(body);
    });

  /** Signs and sends `body`, with the SDK standard mode's attempts and backoff. */
  const call = async (body: string, signal: AbortSignal | undefined): Promise<string> => {
    for (let n = 1; ; n++) {
      // Per attempt, as the SDK: the provider may have rotated the service's own keys meanwhile.
      const credentials = await opts.credentials();
      const headers = signStsRequest(body, { host, region: opts.region, credentials, at: new Date(), signingKey });
      try {
        return await attempt(body, signal, headers);
      } catch (err) {
        const retry = retryable(err);
        if (!retry || n >= opts.maxAttempts || signal?.aborted) throw err;
        await sleep(backoff(n - 1, retry.throttled), signal);
      }
    }
  };

  return {
    deadlineMs: upstreamDeadlineMs(opts),
    async assumeRole(input, signal) {
      return parseAssumeRole(await call(assumeRoleBody(input), signal));
    },
    async getCallerIdentity(signal) {
      return parseCallerIdentity(await call(CALLER_IDENTITY_BODY, signal));
    },
    destroy() {
      agent.destroy();
    },
  };
}

/** Waits `ms`, or rejects with the abort reason as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
