// The audit log: one JSON line per decision on its own pino destination, for the security team.
// It must answer "who got which credentials for what, and when" and join to CloudTrail through
// the temporary accessKeyId. It never holds a secret key, a session token or a JWT: the event
// types have no field for them, and auditLine censors those names should one slip in.
//
// Threat: forged records. Callers control some values written here (requested keys, claim values
// from their identity provider, the User-Agent). JSON escaping stops "\n" from starting a new
// record; the stream hook below also escapes the characters other line-oriented readers treat as
// line breaks (U+0085, U+2028, U+2029), so one decision is always exactly one line to any reader.
import { isoTimeCache } from '../iso-time.js';
import type { Metrics } from '../metrics/metrics.js';
import type { AuditSink } from './sink.js';

export interface AuditSubject {
  readonly iss: string;
  readonly sub: string;
  /** The claims the profile used (match rules and templates), with their values. */
  readonly claims: Readonly<Record<string, unknown>>;
}

interface AuditBase {
  readonly requestId: string;
  readonly subject?: AuditSubject;
  readonly profile?: string;
  readonly operation?: string;
  readonly clientIp: string;
  readonly userAgent?: string;
  /** Set on every record of a presigned-mode request (POST /v1/presigned). */
  readonly delivery?: 'presigned';
}

export interface PlanFields {
  readonly bucket: string;
  readonly keys?: readonly string[];
  readonly prefix?: string;
  readonly roleArn: string;
  readonly roleSessionName: string;
  readonly sourceIdentity: string;
  readonly sessionTags: Readonly<Record<string, string>>;
  readonly durationSeconds: number;
  readonly policySha256: string;
}

/** What a denied caller asked for (relative to the profile prefix), capped in size. */
export interface Requested {
  readonly requestedKeys?: readonly string[];
  readonly requestedKeyCount?: number;
  readonly requestedPrefix?: string;
}

export interface IssuedFields {
  readonly accessKeyId: string;
  readonly expiration: string;
  readonly packedPolicySize?: number;
}

/** One presigned URL or POST form: never the URL itself (its query carries the session token). */
interface PresignedUrlFields {
  /** The full object key (profile prefix applied). */
  readonly key: string;
  readonly method: 'PUT' | 'GET' | 'POST';
  readonly expiration: string;
}

export interface PresignedFields {
  readonly urls: readonly PresignedUrlFields[];
  /** The POST forms' content-length-range upper bound. */
  readonly maxObjectBytes?: number;
  /** False for the one request whose AssumeRole created the signing session. */
  readonly sessionReused: boolean;
  /** The request that created the signing session (its record names it, sessionReused false). */
  readonly sessionRequestId: string;
}

export type AuditEvent =
  | (AuditBase & PlanFields & IssuedFields & { readonly event: 'credentials.issued' })
  // Grant reuse: credentials issued earlier for an identical grant, handed out again. The plan
  // fields are this request's, except roleSessionName: that of the session actually used.
  | (AuditBase &
      PlanFields &
      IssuedFields & {
        readonly event: 'credentials.reused';
        /** The request the credentials were issued for (its record is the `credentials.issued` one). */
        readonly issuedForRequestId: string;
      })
  // Presigned mode: URLs signed with a cached signing session. The plan and issued fields are
  // the session's (its prefix grant, roleSessionName and accessKeyId: the join to CloudTrail);
  // the session itself never left the process, only the URLs listed.
  | (AuditBase & PlanFields & IssuedFields & PresignedFields & { readonly event: 'presigned.issued' })
  | (AuditBase &
      Requested & { readonly event: 'credentials.denied'; readonly errorCode: string; readonly reason: string })
  | (AuditBase &
      Partial<PlanFields> & {
        readonly event: 'credentials.failed';
        readonly errorCode: string;
        readonly reason?: string;
        readonly upstreamCode?: string;
        /** STS minted this key, but it never left the process (its record could not be written). */
        readonly accessKeyId?: string;
        readonly withheld?: boolean;
        /** A withheld reuse: the request its credentials were issued for. */
        readonly issuedForRequestId?: string;
      });

/** The audit record could not be written: the decision is refused (fail closed). */
export class AuditUnavailableError extends Error {
  constructor(readonly code: string) {
    super(`the audit log cannot be written (${code})`);
    this.name = 'AuditUnavailableError';
  }
}

export interface AuditLog {
  /**
   * Resolves once the record has been handed to the operating system; rejects with
   * AuditUnavailableError when it could not be. Whoever is about to release a credential awaits
   * this first: no credential leaves the process without its record.
   */
  record(event: AuditEvent): Promise<void>;
  /** False while the destination refuses writes (the service is then not ready). */
  writable(): boolean;
  /** Stops retrying and releases the destination; never waits on a stuck disk for long. */
  close(): Promise<void>;
}

export interface AuditLogOptions {
  readonly metrics?: Pick<Metrics, 'auditWriteFailures' | 'auditWritable'>;
  /** While unwritable, how often the owed records are retried (recovery needs no traffic). */
  readonly retryIntervalMs?: number;
  /** Records owed to an unwritable destination, kept for when it recovers; the oldest go first. */
  readonly maxOwed?: number;
}

/** Field names that must never be written, wherever they appear. */
export const SECRET_FIELDS = [
  'secretAccessKey',
  'sessionToken',
  'SecretAccessKey',
  'SessionToken',
  'Token',
  'token',
  'jwt',
  'authorization',
];

// Outside JSON strings only ASCII is written, so these can only occur inside a string value,
// where \uXXXX is the same JSON value.
const LINE_BREAK = /[\u0080-\u009f\u2028\u2029]/;
const LINE_BREAKS = new RegExp(LINE_BREAK.source, 'g');
// A line whose UTF-8 length is its length is all ASCII (Buffer.byteLength counts natively, many
// times faster than the regular expression scans): nothing to escape, the common case.
const escapeLineBreaks = (s: string): string =>
  Buffer.byteLength(s) !== s.length && LINE_BREAK.test(s)
    ? s.replace(LINE_BREAKS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : s;

const CENSOR = '[REDACTED]';
type Fields = Readonly<Record<string, unknown>>;

/** `o` itself, or a copy with every secret-named field's value censored (in place, same order). */
function censored(o: Fields): Fields {
  let copy: Record<string, unknown> | undefined;
  for (const f of SECRET_FIELDS) {
    if (o[f] !== undefined && Object.hasOwn(o, f)) (copy ??= { ...o })[f] = CENSOR;
  }
  return copy ?? o;
}

const isFields = (v: unknown): v is Fields => typeof v === 'object' && v !== null;

/** Censored at the top and in the only nested objects an event has (subject, its claims, tags). */
function redacted(event: Fields): Fields {
  let out = censored(event);
  const subject = out.subject;
  if (isFields(subject)) {
    let s = censored(subject);
    if (isFields(s.claims)) {
      const claims = censored(s.claims);
      if (claims !== s.claims) s = { ...s, claims };
    }
    if (s !== subject) out = { ...out, subject: s };
  }
  const tags = out.sessionTags;
  if (isFields(tags)) {
    const t = censored(tags);
    if (t !== tags) out = { ...out, sessionTags: t };
  }
  return out;
}

/**
 * One audit line: `{"level":30,"time":"<ISO 8601>","log":"audit","event":...}` and a newline, the
 * line pino wrote for this logger before (test/unit/audit-line.test.ts holds it to pino's output),
 * built with one JSON.stringify: pino's redaction and per-field formatting cost more than the rest
 * of a reused grant's request. Secret-named fields are censored wherever an event can nest one;
 * JSON escaping stops "\n" from starting a new record, and the characters other readers take as
 * line breaks are escaped too. `at` is the record's time, or its ISO 8601 string.
 */
export function auditLine(event: AuditEvent, at: Date | string): string {
  const e = redacted(event as unknown as Fields);
  let first: string | undefined;
  for (const k in e) {
    first = k;
    break;
  }
  // `event` first: what a reader scans for (decisionRecord builds it so; others are reordered).
  const body = JSON.stringify(first === 'event' ? e : { event: e.event, ...e });
  const head = `{"level":30,"time":"${typeof at === 'string' ? at : at.toISOString()}","log":"audit"`;
  return escapeLineBreaks(body.length > 2 ? `${head},${body.slice(1)}\n` : `${head}}\n`);
}

interface Pending {
  readonly line: string;
  readonly event: AuditEvent;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Group commit: records arriving while a write is in flight go out together in the next one, so
 * a busy instance makes one write(2) per batch, not per decision, and each caller still learns
 * whether its own line landed.
 */
export function createAuditLog(sink: AuditSink, opts: AuditLogOptions = {}): AuditLog {
  const isoNow = isoTimeCache();
  const format = (event: AuditEvent): string => auditLine(event, isoNow(Date.now()));

  const maxOwed = opts.maxOwed ?? 10_000;
  let queue: Pending[] = [];
  let owed: string[] = []; // lines of refused decisions, written once the destination recovers
  let writing: Promise<void> | undefined;
  let torn = false; // a short write left half a line: the next write starts a new one
  let ok = true;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const setWritable = (value: boolean, code?: string) => {
    if (value === ok) return;
    ok = value;
    opts.metrics?.auditWritable.set(value ? 1 : 0);
    if (!value && code && !retry && !closed) {
      retry = setInterval(() => void pump(), opts.retryIntervalMs ?? 1000);
      retry.unref();
    }
    if (value && retry) {
      clearInterval(retry);
      retry = undefined;
    }
  };

  const owe = (p: Pending, code: string) => {
    // The credential of an issued (or reused) record is withheld: what is owed is the refusal,
    // which still names the accessKeyId, so CloudTrail's AssumeRole entry has its explanation.
    const e = p.event;
    owed.push(
      e.event === 'credentials.issued' || e.event === 'credentials.reused' || e.event === 'presigned.issued'
        ? format({ ...e, event: 'credentials.failed', errorCode: 'CV_AUDIT_UNAVAILABLE', withheld: true })
        : p.line,
    );
    opts.metrics?.auditWriteFailures.inc({ code });
    if (owed.length > maxOwed) owed = owed.slice(owed.length - maxOwed);
  };

  const writeBatch = async (): Promise<void> => {
    const batch = queue;
    queue = [];
    const lines = owed;
    owed = [];
    const head = torn ? '\n' : '';
    const buf = Buffer.from(head + lines.join('') + batch.map((p) => p.line).join(''));
    const res = await sink.write(buf);
    if (!res.error) {
      torn = false;
      setWritable(true);
      for (const p of batch) p.resolve();
      return;
    }
    // Which lines landed whole: those do not need writing again.
    let end = Buffer.byteLength(head);
    const landed = (line: string) => (end += Buffer.byteLength(line)) <= res.written;
    const stillOwed = lines.filter((l) => !landed(l));
    const err = new AuditUnavailableError(res.error.code);
    const refused: Pending[] = [];
    for (const p of batch) {
      if (landed(p.line)) p.resolve();
      else refused.push(p);
    }
    owed = [...stillOwed, ...owed];
    for (const p of refused) {
      owe(p, res.error.code);
      p.reject(err);
    }
    torn = res.written > 0 && res.written < buf.length;
    setWritable(false, res.error.code);
  };

  const pump = (): Promise<void> => {
    if (writing) return writing;
    if (queue.length === 0 && (owed.length === 0 || ok)) return Promise.resolve();
    writing = (async () => {
      try {
        while (queue.length > 0 || (owed.length > 0 && !closed)) {
          await writeBatch();
          if (!ok && queue.length === 0) break; // retried by the timer, or by the next record
        }
      } finally {
        writing = undefined;
      }
    })();
    return writing;
  };

  // The first record of a batch waits for the end of the event loop's turn (setImmediate), so
  // every decision answered in the same turn shares its write: one thread-pool write(2) per turn
  // under load instead of one per decision or two. While a write is in flight, records wait for it
  // anyway (pump writes them next).
  let scheduled = false;
  const schedule = (): void => {
    if (scheduled || writing) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void pump();
    });
  };

  return {
    record(event) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ line: format(event), event, resolve, reject });
        schedule();
      });
    },
    writable: () => ok,
    async close() {
      closed = true;
      if (retry) clearInterval(retry);
      retry = undefined;
      // Bounded: on a stuck disk the process must still exit promptly on SIGTERM.
      await Promise.race([pump(), new Promise((r) => setTimeout(r, 1000).unref())]);
      await sink.close();
    },
  };
}
