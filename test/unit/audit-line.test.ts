// auditLine (src/audit/audit.ts) against the pino logger that used to format audit records:
// the same bytes for every kind of record, so readers and shippers see no change; secret-named
// fields censored wherever an event can nest them; and no character any reader takes as a line
// break left raw (forged records).
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { auditLine, SECRET_FIELDS, type AuditEvent } from '../../src/audit/audit.js';

const AT = new Date('2024-05-06T07:08:09.123Z');

/** The audit logger as it was configured before auditLine (the reference). */
function pinoLine(event: AuditEvent): string {
  let line = '';
  const LINE_BREAKS = /[\u0080-\u009f\u2028\u2029]/g;
  const logger = pino(
    {
      base: { log: 'audit' },
      timestamp: () => `,"time":"${AT.toISOString()}"`,
      messageKey: 'msg',
      redact: {
        paths: ['', 'subject.', 'subject.claims.', 'sessionTags.'].flatMap((at) =>
          SECRET_FIELDS.map((f) => `${at}${f}`),
        ),
        censor: '[REDACTED]',
      },
      hooks: {
        streamWrite: (s: string) =>
          s.replace(LINE_BREAKS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
      },
    },
    new Writable({ write: (chunk: Buffer, _enc, cb) => ((line = chunk.toString('utf8')), cb()) }),
  );
  const { event: name, ...fields } = event;
  logger.info({ event: name, ...fields });
  return line;
}

const FORGED = JSON.stringify({
  level: 30,
  log: 'audit',
  event: 'credentials.issued',
  requestId: 'x',
  accessKeyId: 'ASIAFORGED',
});

const plan = {
  bucket: 'tenant-bucket',
  keys: ['uploads/alice/a.txt', `uploads/alice/b\u2028${FORGED}\u2029c`, 'uploads/alice/"quoted"\\back\u0000\n'],
  roleArn: 'arn:aws:iam::123456789012:role/vend',
  roleSessionName: 'alice.1234abcd.r-1',
  sourceIdentity: 'alice',
  sessionTags: { team: 'blue', project: 'ü-ñ' },
  durationSeconds: 900,
  policySha256: 'ab'.repeat(32),
};
const base = {
  requestId: 'r-1',
  clientIp: '10.0.0.1',
  userAgent: `agent\u0085${FORGED}`,
  subject: { iss: 'https://issuer.test', sub: 'alice', claims: { team: 'blue', n: 3, missing: null } },
  profile: 'uploads',
  operation: 'upload',
};
const issued = { accessKeyId: 'ASIAEXAMPLE', expiration: '2030-01-01T00:00:00.000Z', packedPolicySize: 7 };

const EVENTS: AuditEvent[] = [
  { event: 'credentials.issued', ...base, ...plan, ...issued },
  { ...base, ...plan, ...issued, event: 'credentials.issued' }, // event last: moved first
  { event: 'credentials.reused', ...base, ...plan, ...issued, issuedForRequestId: 'r-0' },
  {
    event: 'presigned.issued',
    ...base,
    ...plan,
    ...issued,
    delivery: 'presigned',
    urls: [{ key: 'uploads/alice/a.txt', method: 'PUT', expiration: '2030-01-01T00:00:00.000Z' }],
    sessionReused: true,
    sessionRequestId: 'r-0',
    maxObjectBytes: 1024,
  },
  {
    event: 'credentials.denied',
    requestId: 'r-2',
    clientIp: '10.0.0.2',
    errorCode: 'CV_TOKEN_MISSING',
    reason: 'unauthenticated',
  },
  {
    event: 'credentials.denied',
    ...base,
    requestedKeys: ['../bob/x', 'é\u2028'],
    requestedKeyCount: 2,
    errorCode: 'CV_INVALID_KEY',
    reason: 'invalid_key',
  },
  {
    event: 'credentials.failed',
    ...base,
    ...plan,
    errorCode: 'CV_AUDIT_UNAVAILABLE',
    withheld: true,
    accessKeyId: 'ASIAEXAMPLE',
    upstreamCode: undefined,
  } as unknown as AuditEvent, // an undefined field is left out
];

describe('auditLine', () => {
  for (const e of EVENTS) {
    it(`writes the same line as the pino audit logger did: ${e.event}`, () => {
      expect(auditLine(e, AT)).toBe(pinoLine(e));
    });
  }

  it('censors secret-named fields at the top, in subject, in its claims and in session tags, as pino redact did', () => {
    // Prepare: every secret name, everywhere an event nests objects
    const secrets = Object.fromEntries(SECRET_FIELDS.map((f, i) => [f, `SECRET-${i}`]));
    const e = {
      event: 'credentials.issued',
      ...base,
      ...secrets,
      subject: { ...base.subject, ...secrets, claims: { ...base.subject.claims, ...secrets } },
      ...plan,
      sessionTags: { ...plan.sessionTags, ...secrets },
      ...issued,
    } as unknown as AuditEvent;
    // Act
    const line = auditLine(e, AT);
    // Assess
    expect(line).toBe(pinoLine(e));
    for (const v of Object.values(secrets)) expect(line).not.toContain(v);
    const rec = JSON.parse(line) as {
      secretAccessKey: string;
      subject: { jwt: string; claims: { token: string } };
      sessionTags: { authorization: string };
    };
    expect([rec.secretAccessKey, rec.subject.jwt, rec.subject.claims.token, rec.sessionTags.authorization]).toEqual(
      Array(4).fill('[REDACTED]'),
    );
    // the event passed in is not modified
    expect((e as unknown as { subject: { jwt: string } }).subject.jwt).toBe(secrets.jwt);
  });

  it('is always exactly one line to any reader', () => {
    for (const e of EVENTS) {
      const line = auditLine(e, AT);
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1).split(/\r\n|[\n\v\f\r\u001c-\u001e\u0085\u2028\u2029]/)).toHaveLength(1);
      expect(JSON.parse(line)).toMatchObject({ level: 30, time: AT.toISOString(), log: 'audit', event: e.event });
    }
  });
});
