// The service's own credentials from the ECS / EKS Pod Identity container-credentials endpoint,
// fetched by us instead of the SDK's `fromHttp`, which in the installed version applies its
// `timeout` to connecting only: an endpoint that accepts and never answers kept that socket open
// for ever, and an answer of any size was buffered whole.
//
// Threat model: the endpoint is a local agent we do not control, and whatever sits between us and
// it may be slow, wedged or hostile. So:
//  - one deadline covers the whole exchange (DNS, connect, headers, body); when it passes the
//    request and its socket are destroyed, not abandoned;
//  - no keep-alive: a fresh socket per fetch (a few an hour), so nothing hung is ever reused;
//  - the answer is capped while it streams, before it is parsed (memory / event-loop DoS);
//  - plain http only to the hosts the SDK allows (loopback and the ECS / EKS link-local agents),
//    so the Authorization token and the credentials never cross a network in clear text;
//  - a token with CR or LF is refused (header injection into the request to the agent);
//  - errors carry a bounded `code`, never the answer body or the token: both can be secret and
//    error messages end up in logs.
import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { readCappedBody, ResponseTooLargeError, socketHost } from '../aws/http-handler.js';

export const ENV_FULL_URI = 'AWS_CONTAINER_CREDENTIALS_FULL_URI';
export const ENV_RELATIVE_URI = 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI';
export const ENV_TOKEN = 'AWS_CONTAINER_AUTHORIZATION_TOKEN';
export const ENV_TOKEN_FILE = 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE';

// The ECS agent; a relative URI is a path on it (as the SDK's DEFAULT_LINK_LOCAL_HOST).
const ECS_CONTAINER_HOST = '169.254.170.2';
const ECS_BASE_URL = `http://${ECS_CONTAINER_HOST}`;

export type ContainerCredentialsErrorCode =
  | 'NoEndpoint'
  | 'InvalidUri'
  | 'ForbiddenHost'
  | 'InvalidToken'
  | 'TokenFileUnreadable'
  | 'Timeout'
  | 'NetworkError'
  | 'ResponseTooLarge'
  | 'MalformedResponse'
  | `HttpStatus${number}`;

/** A failed fetch. `code` is bounded (a metric label, a log field); the message never carries the body or the token. */
export class ContainerCredentialsError extends Error {
  constructor(
    readonly code: ContainerCredentialsErrorCode,
    options?: { cause?: unknown },
  ) {
    super(`container credentials endpoint: ${code}`, options);
    // Stable: callers classify by name and code, never by message.
    this.name = 'ContainerCredentialsError';
  }
}

export interface ContainerEndpointOptions {
  /** Where the endpoint and token settings are read, at each fetch; process.env when not given. */
  readonly env?: NodeJS.ProcessEnv;
  /** One deadline for the whole exchange, from DNS to the last byte of the body. */
  readonly timeoutMs: number;
  /** Largest answer accepted (CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES). */
  readonly maxResponseBytes: number;
  /** Reads the token file; injected for tests. */
  readonly readFile?: (path: string) => string;
}

/**
 * The container credentials protocol (ECS task role, EKS Pod Identity): GET the URI from
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2; it takes precedence, as in the SDK)
 * or AWS_CONTAINER_CREDENTIALS_FULL_URI, with the Authorization header from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read at every fetch: EKS rotates it; it takes
 * precedence) or AWS_CONTAINER_AUTHORIZATION_TOKEN. Every call fetches; caching is the caller's.
 * Rejects with ContainerCredentialsError.
 */
export function fromContainerEndpoint(opts: ContainerEndpointOptions): AwsCredentialIdentityProvider {
  const readFile = opts.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  return async () => {
    const env = opts.env ?? process.env;
    const url = endpointUrl(env);
    const authorization = authorizationHeader(env, readFile);
    const body = await get(url, authorization, opts.timeoutMs, opts.maxResponseBytes);
    return parseCredentials(body);
  };
}

/** Whether a container-credentials endpoint is configured at all. */
export function hasContainerEndpoint(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env[ENV_RELATIVE_URI] || env[ENV_FULL_URI]);
}

function endpointUrl(env: NodeJS.ProcessEnv): URL {
  const relative = env[ENV_RELATIVE_URI];
  const full = env[ENV_FULL_URI];
  if (relative) {
    // Stricter than the SDK: a relative URI is a path. "@host/..." would otherwise move the
    // request (and the token) off the ECS agent to any host the loopback rule lets through.
    if (!relative.startsWith('/')) throw new ContainerCredentialsError('InvalidUri');
    const url = parseUrl(`${ECS_BASE_URL}${relative}`);
    if (url.hostname !== ECS_CONTAINER_HOST) throw new ContainerCredentialsError('InvalidUri');
    return url;
  }
  if (!full) throw new ContainerCredentialsError('NoEndpoint');
  const url = parseUrl(full);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ContainerCredentialsError('InvalidUri');
  if (!hostAllowed(url)) throw new ContainerCredentialsError('ForbiddenHost');
  return url;
}

function parseUrl(s: string): URL {
  try {
    return new URL(s);
  } catch {
    throw new ContainerCredentialsError('InvalidUri');
  }
}

/**
 * The SDK's rule (@aws-sdk/credential-provider-http checkUrl): https to any host; plain http
 * only to the ECS agent 169.254.170.2, the EKS Pod Identity agent 169.254.170.23 / [fd00:ec2::23],
 * localhost, [::1] and 127.0.0.0/8. Plain http elsewhere would send the token and receive the
 * credentials in clear text over a network. `url.hostname` is WHATWG-normalised (IPv4 in
 * canonical dotted decimal, IPv6 compressed and bracketed), so string comparison is exact.
 * One deliberate difference: the SDK checks the four 127.x parts with parseInt, which also
 * accepts a DNS name such as "127.0.0.1x"; we accept only decimal parts, i.e. real addresses.
 */
export function hostAllowed(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  if (url.protocol !== 'http:') return false;
  const host = url.hostname;
  if (host === ECS_CONTAINER_HOST || host === '169.254.170.23' || host === '[fd00:ec2::23]') return true;
  if (host === '[::1]' || host === 'localhost') return true;
  const parts = host.split('.');
  return parts.length === 4 && parts[0] === '127' && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function authorizationHeader(env: NodeJS.ProcessEnv, readFile: (path: string) => string): string | undefined {
  const tokenFile = env[ENV_TOKEN_FILE];
  let token: string | undefined;
  if (tokenFile) {
    try {
      token = readFile(tokenFile);
    } catch (err) {
      throw new ContainerCredentialsError('TokenFileUnreadable', { cause: err });
    }
  } else {
    token = env[ENV_TOKEN] || undefined;
  }
  if (token === undefined) return undefined;
  // Header injection: a CR or LF would start a new header (or request) towards the agent. The
  // SDK refuses only "\r\n"; Node refuses a lone one later with a message that quotes the header.
  if (/[\r\n]/.test(token)) throw new ContainerCredentialsError('InvalidToken');
  return token;
}

function get(url: URL, authorization: string | undefined, timeoutMs: number, maxBytes: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let req: ClientRequest | undefined;
    let res: IncomingMessage | undefined;
    let settled = false;
    const finish = (err: ContainerCredentialsError | undefined, body?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (err) {
        // Destroying the request destroys its socket, with or without a response in progress.
        res?.destroy();
        req?.destroy();
        reject(err);
      } else {
        resolve(body ?? '');
      }
    };
    // The whole exchange, not just the connect: this is what the SDK's fromHttp did not bound.
    const deadline = setTimeout(() => finish(new ContainerCredentialsError('Timeout')), timeoutMs);

    const options: RequestOptions = {
      method: 'GET',
      // Brackets off an IPv6 literal; no userinfo from the URI (the SDK sends none either).
      hostname: socketHost(url),
      ...(url.port ? { port: Number(url.port) } : {}),
      path: `${url.pathname}${url.search}`,
      // A fresh socket per fetch, closed after it: a hung one is never pooled or reused.
      agent: false,
      headers: {
        accept: 'application/json',
        connection: 'close',
        ...(authorization === undefined ? {} : { authorization }),
      },
    };
    try {
      req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(options);
    } catch (err) {
      finish(new ContainerCredentialsError('NetworkError', { cause: err }));
      return;
    }
    req.on('error', (err) => finish(new ContainerCredentialsError('NetworkError', { cause: err })));
    req.on('response', (r) => {
      res = r;
      const status = r.statusCode ?? 0;
      // The SDK takes only 200. The body of any other answer is not read (it may echo the token).
      if (status !== 200) {
        finish(new ContainerCredentialsError(`HttpStatus${status}`));
        return;
      }
      readCappedBody(r, maxBytes, (err, body) => {
        if (!err) finish(undefined, body);
        else if (err instanceof ResponseTooLargeError) finish(new ContainerCredentialsError('ResponseTooLarge'));
        // A stream error, or closed before the end: a truncated answer is a network failure, not a short JSON.
        else finish(new ContainerCredentialsError('NetworkError', { cause: err }));
      });
    });
    req.end();
  });
}

// RFC 3339 date-time, as the SDK's parseRfc3339DateTime requires.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseCredentials(body: string): AwsCredentialIdentity {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    // No cause: JSON.parse's message quotes the body, which may hold a secret.
    throw new ContainerCredentialsError('MalformedResponse');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new ContainerCredentialsError('MalformedResponse');
  const p = parsed as Record<string, unknown>;
  const { AccessKeyId, SecretAccessKey, Token, Expiration, AccountId } = p;
  if (
    typeof AccessKeyId !== 'string' ||
    AccessKeyId === '' ||
    typeof SecretAccessKey !== 'string' ||
    SecretAccessKey === '' ||
    typeof Token !== 'string' ||
    Token === '' ||
    typeof Expiration !== 'string' ||
    !RFC3339.test(Expiration)
  ) {
    throw new ContainerCredentialsError('MalformedResponse');
  }
  const expiration = new Date(Expiration);
  if (Number.isNaN(expiration.getTime())) throw new ContainerCredentialsError('MalformedResponse');
  if (AccountId !== undefined && typeof AccountId !== 'string')
    throw new ContainerCredentialsError('MalformedResponse');
  return {
    accessKeyId: AccessKeyId,
    secretAccessKey: SecretAccessKey,
    sessionToken: Token,
    expiration,
    ...(AccountId ? { accountId: AccountId } : {}),
  };
}
