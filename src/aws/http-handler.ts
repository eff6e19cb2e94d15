// The one HTTP handler behind every AWS SDK client we build (KMS), the deadline every upstream
// call runs under, and the bounds src/sts/http-client.ts applies to STS alike.
//
// Threat model: STS and KMS are upstreams we do not control, and neither is a slow or hostile
// answer from an S3-compatible server or a proxy in between. Without bounds:
//  - `requestTimeout` alone only logs a warning (smithy needs `throwOnRequestTimeout`), so a slow
//    STS held every caller for as long as it liked;
//  - a server that accepts and never answers kept its pooled keep-alive socket busy for ever:
//    once all `maxSockets` were hung, every later call queued behind them even after recovery;
//  - an oversized answer was buffered and parsed whole (a 5 MB answer: 13.5 s of blocked event
//    loop, ~1 GB RSS), which is a denial of service for every other caller.
// So: requests that exceed their timeout fail and destroy their socket, a socket idle past its
// timeout is destroyed rather than reused, answers are capped before they are parsed, and each
// call has one overall deadline that also covers retries and backoff.
import { Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** The part of smithy's HttpHandler contract the SDK clients use; what `requestHandler` takes. */
export type UpstreamHttpHandler = Pick<
  NodeHttpHandler,
  'metadata' | 'handle' | 'updateHttpClientConfig' | 'httpHandlerConfigs' | 'destroy'
>;

export interface HttpHandlerOptions {
  readonly connectTimeoutMs: number;
  /** One attempt, from sending the request to the response headers; also the socket idle limit. */
  readonly requestTimeoutMs: number;
  /** Keep-alive sockets per origin; more requests wait for a free one (inside their timeout). */
  readonly maxSockets: number;
  /** Largest answer body accepted; anything bigger fails before it is parsed. */
  readonly maxResponseBytes: number;
}

// A pooled socket nobody used for this long is closed by us. Below the 5 s keep-alive timeout
// common to servers and proxies, so we never write a request onto a socket the server is closing
// at that moment (an ECONNRESET that is nobody's fault).
export const IDLE_SOCKET_TIMEOUT_MS = 4_000;

/** The answer was larger than the cap: it is dropped unparsed and its socket destroyed. */
export class ResponseTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`upstream answer larger than ${limitBytes} bytes`);
    // Stable: error translation classifies by this name.
    this.name = 'ResponseTooLarge';
  }
}

/** The answer ended before its last byte (the socket closed): a network failure, like a reset. */
export class TruncatedResponseError extends Error {
  readonly code = 'ECONNRESET';

  constructor() {
    super('upstream answer closed before its end');
    this.name = 'TruncatedResponse';
  }
}

/**
 * Reads the body of an answer we fetch ourselves (STS, container credentials), at most `maxBytes`:
 * `settle(undefined, text)` at its end, else `settle(err)` once with ResponseTooLargeError (its
 * declared length, before reading, or the bytes counted), the stream's error or
 * TruncatedResponseError. The caller destroys the request on an error (and ignores later calls).
 */
export function readCappedBody(
  res: IncomingMessage,
  maxBytes: number,
  settle: (err: Error | undefined, text?: string) => void,
): void {
  const declared = res.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
    settle(new ResponseTooLargeError(maxBytes)); // not read at all
    return;
  }
  const chunks: Buffer[] = [];
  let seen = 0;
  let ended = false;
  res.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) settle(new ResponseTooLargeError(maxBytes));
    else chunks.push(chunk);
  });
  res.on('error', (err) => settle(err));
  res.on('end', () => {
    ended = true;
    settle(undefined, Buffer.concat(chunks).toString('utf8'));
  });
  res.on('close', () => {
    if (!ended) settle(new TruncatedResponseError());
  });
}

/** The host a socket connects to: an IPv6 literal without the brackets a URL keeps. */
export function socketHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

class ByteCap extends Transform {
  private seen = 0;

  constructor(private readonly limitBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limitBytes) {
      done(new ResponseTooLargeError(this.limitBytes));
      return;
    }
    done(null, chunk);
  }
}

/**
 * A NodeHttpHandler with every bound set: keep-alive agents (http and https) with `maxSockets`,
 * a connect timeout, a request timeout that fails the attempt and destroys its socket, a socket
 * idle timeout, and a response size cap.
 */
export function createHttpHandler(opts: HttpHandlerOptions): UpstreamHttpHandler {
  // The agents' `timeout` destroys idle pooled sockets; smithy's `socketTimeout` covers a socket
  // that goes quiet during a request (e.g. mid-body, after the request timeout no longer runs).
  const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets, timeout: IDLE_SOCKET_TIMEOUT_MS };
  const httpAgent = new HttpAgent(agentOpts);
  const httpsAgent = new HttpsAgent(agentOpts);
  const inner = new NodeHttpHandler({
    httpAgent,
    httpsAgent,
    connectionTimeout: opts.connectTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    // Without it smithy only logs when requestTimeout passes, and the call goes on waiting.
    throwOnRequestTimeout: true,
    // Set explicitly: a custom handler does not get the SDK's default socket timeout.
    socketTimeout: opts.requestTimeoutMs,
  });
  const limit = opts.maxResponseBytes;

  return {
    metadata: inner.metadata,
    async handle(request, handlerOptions) {
      const out = await inner.handle(request, handlerOptions);
      const res = out.response;
      const body: unknown = res.body;
      const declared = res.headers['content-length'];
      if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) {
        // Not read at all; destroying an unfinished IncomingMessage destroys its socket.
        if (body instanceof Readable) body.destroy();
        throw new ResponseTooLargeError(limit);
      }
      // A declared length within the cap bounds the body already (Node's parser reads exactly
      // that many bytes): only an undeclared (chunked) body is counted as it arrives.
      if (body instanceof Readable && declared === undefined) {
        const capped = new ByteCap(limit);
        // pipeline destroys the source when the cap errors: the socket goes, not back to the
        // pool with the rest of the oversized answer still arriving.
        pipeline(body, capped, () => undefined);
        res.body = capped;
      }
      return out;
    },
    updateHttpClientConfig(key, value) {
      inner.updateHttpClientConfig(key, value);
    },
    httpHandlerConfigs() {
      return inner.httpHandlerConfigs();
    },
    destroy() {
      // The inner handler only knows its agents after its first request.
      inner.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

// --- the overall deadline of one SDK call --------------------------------------------------------

// The SDK's standard retry strategy (@smithy/core retry, "v2026" delays): before retry i
// (0-based) it waits at most min(base * 2^i, 20 s), with base 1 s after throttling (50 ms after a
// transient error). A Retry-After header may stretch a wait by up to 5 s more: that is the
// server asking for more than our budget, and the deadline below wins.
export const THROTTLING_BACKOFF_BASE_MS = 1_000;
export const TRANSIENT_BACKOFF_BASE_MS = 50;
export const MAX_BACKOFF_MS = 20_000;

/**
 * The longest one SDK call may take, retries included: every attempt running to its request
 * timeout, plus the longest backoff the SDK may sleep between attempts (throttling, the worst
 * case). E.g. 3000 ms x 3 attempts -> 9 s + (1 s + 2 s) = 12 s.
 */
export function upstreamDeadlineMs(opts: { readonly requestTimeoutMs: number; readonly maxAttempts: number }): number {
  let backoff = 0;
  for (let retry = 0; retry < opts.maxAttempts - 1; retry++)
    backoff += Math.min(THROTTLING_BACKOFF_BASE_MS * 2 ** retry, MAX_BACKOFF_MS);
  return opts.requestTimeoutMs * opts.maxAttempts + backoff;
}

// For a client built outside our factories (a test double): the deadline of the config defaults
// (CREDVEND_STS_TIMEOUT_MS 3000, CREDVEND_STS_MAX_ATTEMPTS 3).
export const FALLBACK_DEADLINE_MS = upstreamDeadlineMs({ requestTimeoutMs: 3000, maxAttempts: 3 });

/** The overall deadline of an SDK call passed, whatever the SDK was doing at the time. */
export class DeadlineExceededError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`upstream call exceeded its ${deadlineMs} ms deadline`);
    // Stable: error translation classifies by this name.
    this.name = 'DeadlineExceeded';
  }
}

/**
 * Settles with `call`'s outcome, or with DeadlineExceededError at the deadline, or with the
 * caller's abort reason when `signal` aborts (shutdown), whichever comes first. `signal` is also
 * handed to `call`, which destroys its socket on abort (src/sts/http-client.ts). A call past its deadline is not aborted:
 * every attempt of it already ends at its own request timeout (which destroys its socket), so the
 * deadline only cuts what lies outside those (credential resolution, backoff sleeps, a trickling
 * body). No AbortController per call: on the hot path one costs more than the rest of this file.
 */
export function withDeadline<T>(
  deadlineMs: number,
  signal: AbortSignal | undefined,
  call: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (finish()) reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      if (finish()) reject(new DeadlineExceededError(deadlineMs));
    }, deadlineMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    // Through a promise: a synchronous throw (or a plain value from a test double) is handled alike.
    Promise.resolve(signal)
      .then(call)
      .then(
        (value) => {
          if (finish()) resolve(value);
        },
        (err: unknown) => {
          // Whatever the SDK made of an abort (AbortError, a reset socket), the reason is the abort.
          if (finish()) reject(signal?.aborted ? (signal.reason as Error) : (err as Error));
        },
      );
  });
}

// --- classifying network failures ---------------------------------------------------------------

// Connection-level failures. smithy renames ECONNRESET, EPIPE and ETIMEDOUT errors to
// "TimeoutError" (so its retry logic treats them as transient) but keeps `code`: classify by the
// code, or a reset socket would be reported as a timeout.
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The Node network error code of `err` (or of a cause), when it is a connection-level failure. */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
