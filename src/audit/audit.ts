// The audit log: one JSON line per decision on its own pino destination, for the security team.
// It must answer "who got which credentials for what, and when" and join to CloudTrail through
// the temporary accessKeyId. It never holds a secret key, a session token or a JWT: the event
// types have no field for them, and pino `redact` censors those names should one slip in.
import pino, { type DestinationStream, type Logger } from 'pino';

export interface AuditSubject {
  readonly iss: string;
  readonly sub: string;
  /** The claims the profile's rules used, with their values. */
  readonly claims: Readonly<Record<string, unknown>>;
}

interface AuditBase {
  readonly requestId: string;
  readonly subject?: AuditSubject;
  readonly profile?: string;
  readonly operation?: string;
  readonly clientIp: string;
  readonly userAgent?: string;
}

interface PlanFields {
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

export type AuditEvent =
  | (AuditBase & PlanFields & {
      readonly event: 'credentials.issued';
      readonly accessKeyId: string;
      readonly expiration: string;
      readonly packedPolicySize?: number;
    })
  | (AuditBase & { readonly event: 'credentials.denied'; readonly errorCode: string; readonly reason: string })
  | (AuditBase & Partial<PlanFields> & { readonly event: 'credentials.failed'; readonly errorCode: string; readonly upstreamCode?: string });

export interface AuditLog {
  record(event: AuditEvent): void;
}

/** Field names that must never be written, wherever they appear. */
export const SECRET_FIELDS = ['secretAccessKey', 'sessionToken', 'SecretAccessKey', 'SessionToken', 'Token', 'token', 'jwt', 'authorization'];

export function createAuditLog(destination: DestinationStream): AuditLog {
  const logger: Logger = pino(
    {
      base: { log: 'audit' },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      redact: { paths: [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`)], censor: '[REDACTED]' },
    },
    destination,
  );
  return {
    record(event) {
      logger.info(event);
    },
  };
}

/** 'stdout' (lines tagged "log":"audit"), or a file path opened for appending. */
export function auditDestination(spec: string): DestinationStream {
  return spec === 'stdout' ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: spec, mkdir: true, sync: false });
}
