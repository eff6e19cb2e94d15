// Bounded load against the credential route, and the answer contract of issue 8: every answer is
// either credentials (200) or a mapped 5xx application/problem+json with a CV_ code and no text
// of the AWS SDK or of Node's network stack.
//
// The load runs in its own process (load-client.ts): its CPU and event loop must not skew what
// the test process measures (admin /healthz latency) or serves (the STS stub's fixed latency).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../helpers/e2e.js';

export interface Outcome {
  /** Wall-clock ms (Date.now()) when the request was sent and when its answer (or failure) ended. */
  readonly start: number;
  readonly end: number;
  /** 0 when no HTTP answer arrived. */
  readonly status: number;
  readonly failure?: 'timeout' | 'network';
  readonly contentType?: string | undefined;
  readonly retryAfter?: string | undefined;
  readonly code?: string | undefined;
  readonly requestId?: string | undefined;
  readonly accessKeyId?: string | undefined;
  readonly secretAccessKey?: string | undefined;
  readonly sessionToken?: string | undefined;
  /** The body of a non-200 answer, for the contract check. */
  readonly text?: string | undefined;
}

export interface LoadSpec {
  readonly url: string;
  readonly token: string;
  readonly body: unknown;
  readonly concurrency: number;
  readonly maxRequests: number;
  readonly maxDurationMs: number;
  /** Client-side abort: a request still open then is recorded as failure `timeout`. */
  readonly timeoutMs: number;
  /** SIGKILL this pid from the client, right after the n-th 200 body has arrived. */
  readonly kill?: { readonly pid: number; readonly afterOk: number };
}

export type ToClient = { kind: 'start'; spec: LoadSpec } | { kind: 'stop' };
export type FromClient = { kind: 'outcomes'; outcomes: Outcome[] };

/** One POST /v1/credentials; never throws. */
export async function requestCredentials(
  url: string,
  token: string,
  body: unknown,
  timeoutMs: number,
): Promise<Outcome> {
  const start = Date.now();
  try {
    const res = await fetch(`${url}/v1/credentials`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const head = {
      start,
      end: Date.now(),
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      retryAfter: res.headers.get('retry-after') ?? undefined,
    };
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON: the contract check reports it
    }
    const s = (k: string): string | undefined => (typeof json[k] === 'string' ? json[k] : undefined);
    if (res.status === 200) {
      return {
        ...head,
        requestId: s('requestId'),
        accessKeyId: s('accessKeyId'),
        secretAccessKey: s('secretAccessKey'),
        sessionToken: s('sessionToken'),
      };
    }
    return { ...head, code: s('code'), requestId: s('requestId'), text };
  } catch (err) {
    const name = (err as { name?: string }).name;
    return {
      start,
      end: Date.now(),
      status: 0,
      failure: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network',
    };
  }
}

/** The status each CV_ code of the fault contract is answered with. */
export const FAULT_CODES: Readonly<Record<string, number>> = {
  CV_STS_THROTTLED: 503,
  CV_STS_UNAVAILABLE: 502,
  CV_STS_TIMEOUT: 504,
  CV_OVERLOADED: 503,
  CV_BASE_CREDENTIALS_UNAVAILABLE: 503,
  CV_AUDIT_UNAVAILABLE: 503,
  CV_SHUTTING_DOWN: 503,
};
const NEEDS_RETRY_AFTER = new Set(['CV_STS_THROTTLED', 'CV_OVERLOADED']);

// What an SDK error, a Node network error or an upstream body looks like; none may reach a caller.
const SDK_TEXT = [
  'Throttling',
  'Rate exceeded',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'socket hang up',
  'TimeoutError',
  'AbortError',
  'ExpiredToken',
  'InternalFailure',
  'ServiceUnavailable',
  'Deserializ',
  'smithy',
  '$metadata',
  '"stack"',
  '    at ',
  '<',
];

/**
 * What is wrong with one answer under the contract ([] when it holds). `allowed` lists the CV_
 * codes acceptable for this answer (all fault codes when omitted).
 */
export function contractViolations(
  o: Outcome,
  allowed: ReadonlySet<string> = new Set(Object.keys(FAULT_CODES)),
): string[] {
  if (o.status === 0) return [`no HTTP answer (${o.failure ?? 'unknown'}) after ${o.end - o.start} ms`];
  if (o.status === 200) {
    return o.accessKeyId?.startsWith('ASIA') && o.secretAccessKey && o.sessionToken ? [] : ['200 without credentials'];
  }
  const out: string[] = [];
  const code = o.code ?? '(none)';
  if (!o.contentType?.startsWith('application/problem+json'))
    out.push(`${o.status} ${code}: content-type ${o.contentType ?? '(none)'}`);
  if (!code.startsWith('CV_')) out.push(`${o.status}: no CV_ code: ${o.text?.slice(0, 200) ?? ''}`);
  else if (FAULT_CODES[code] === undefined) out.push(`${o.status} ${code}: not a fault code`);
  else if (!allowed.has(code)) out.push(`${o.status} ${code}: not expected here (expected ${[...allowed].join('|')})`);
  else if (FAULT_CODES[code] !== o.status) out.push(`${code} answered with ${o.status}, expected ${FAULT_CODES[code]}`);
  if (NEEDS_RETRY_AFTER.has(code) && !o.retryAfter) out.push(`${code} without Retry-After`);
  const leaked = SDK_TEXT.filter((t) => o.text?.includes(t));
  if (leaked.length > 0) out.push(`${o.status} ${code}: body carries ${leaked.join(', ')}`);
  return out;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Counts of `key(item)`, as "a=1 b=2" sorted by key: for one console line. */
export function tally<T>(items: readonly T[], key: (t: T) => string): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(key(i), (counts.get(key(i)) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
}

export const describeOutcome = (o: Outcome): string =>
  o.status === 0 ? `none:${o.failure ?? ''}` : o.status === 200 ? '200' : `${o.status}:${o.code ?? '?'}`;

export interface Load {
  /** Outcomes received so far (grows while the load runs). */
  readonly outcomes: Outcome[];
  /** Resolves with every outcome once the client has finished (count, time or stop()). */
  readonly done: Promise<Outcome[]>;
  stop(): void;
}

export function startLoad(spec: LoadSpec): Load {
  const client = fork(fileURLToPath(new URL('./load-client.ts', import.meta.url)), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const outcomes: Outcome[] = [];
  // Last resort: the client never outlives the test process.
  const hardStop = setTimeout(() => client.kill('SIGKILL'), spec.maxDurationMs + spec.timeoutMs + 15_000);
  const done = new Promise<Outcome[]>((resolve, reject) => {
    client.on('message', (m: FromClient) => {
      if (m.kind === 'outcomes') outcomes.push(...m.outcomes);
    });
    client.on('exit', (code, sig) => {
      clearTimeout(hardStop);
      if (code === 0) resolve(outcomes);
      else reject(new Error(`load client exited with ${code ?? sig}`));
    });
  });
  client.send({ kind: 'start', spec } satisfies ToClient);
  return {
    outcomes,
    done,
    stop: () => {
      if (client.connected) client.send({ kind: 'stop' } satisfies ToClient);
    },
  };
}
