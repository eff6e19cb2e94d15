// decisionRecord (src/audit/decision.ts): each kind of decision's record, field by field and in
// order (event first, then who asked, then what was decided). Mistake stopped: a record that
// names the wrong session (a reuse must name the session it handed out, not this request's) or
// drops what a security reader joins on (accessKeyId, requestId, the refusal's reason).
import { describe, expect, it } from 'vitest';
import { decisionRecord, type DecisionFacts } from '../../src/audit/decision.js';

const request = { requestId: 'req-2', clientIp: '203.0.113.9', userAgent: 'curl/8' };
const subject = { iss: 'https://idp.example.com', sub: 'alice', claims: { team: 'red' } };
const plan = {
  bucket: 'b',
  keys: ['u/alice/a.txt'],
  roleArn: 'arn:aws:iam::123456789012:role/r',
  roleSessionName: 'alice.0a1b2c3d.req-2',
  sourceIdentity: 'alice',
  sessionTags: { team: 'red' },
  durationSeconds: 900,
  policySha256: 'f'.repeat(64),
};
const issued = { accessKeyId: 'ASIAEXAMPLE', expiration: '2026-11-30T12:15:00.000Z' };
const facts = (more: Partial<DecisionFacts>): DecisionFacts => ({
  subject,
  profile: 'uploads',
  operation: 'upload',
  ...more,
});
const head = ['event', 'requestId', 'clientIp', 'userAgent', 'subject', 'profile', 'operation'];
const planKeys = Object.keys(plan);

describe('decisionRecord', () => {
  it('credentials.issued: who asked, the plan, the key STS issued', () => {
    const r = decisionRecord(facts({ plan, issued }), request, { kind: 'issued' });
    expect(Object.keys(r)).toEqual([...head, ...planKeys, 'accessKeyId', 'expiration']);
    expect(r).toMatchObject({ event: 'credentials.issued', ...request, subject, ...plan, ...issued });
  });

  it('credentials.reused: the session handed out, and the request it was issued for', () => {
    const reused = { requestId: 'req-1', roleSessionName: 'alice.0a1b2c3d.req-1' };
    const r = decisionRecord(facts({ plan, issued, reused }), request, { kind: 'reused' });
    expect(Object.keys(r)).toEqual([...head, ...planKeys, 'accessKeyId', 'expiration', 'issuedForRequestId']);
    expect(r).toMatchObject({
      event: 'credentials.reused',
      requestId: 'req-2',
      roleSessionName: 'alice.0a1b2c3d.req-1',
      accessKeyId: 'ASIAEXAMPLE',
      issuedForRequestId: 'req-1',
    });
  });

  it('presigned.issued: the signing session and every URL', () => {
    const presigned = {
      urls: [{ key: 'u/alice/a.txt', method: 'PUT' as const, expiration: '2026-11-30T12:15:00.000Z' }],
      sessionReused: true,
      sessionRequestId: 'req-1',
    };
    const r = decisionRecord(facts({ plan, issued, presigned, delivery: 'presigned' }), request, { kind: 'issued' });
    expect(Object.keys(r)).toEqual([
      ...head,
      'delivery',
      ...planKeys,
      'accessKeyId',
      'expiration',
      'urls',
      'sessionReused',
      'sessionRequestId',
    ]);
    expect(r).toMatchObject({ event: 'presigned.issued', delivery: 'presigned', ...presigned });
  });

  it('credentials.denied: what was asked, and why not', () => {
    const requested = { requestedKeys: ['../bob/x'], requestedKeyCount: 1 };
    const r = decisionRecord(facts({ requested }), request, {
      kind: 'denied',
      errorCode: 'CV_INVALID_KEY',
      reason: 'invalid_key',
    });
    expect(Object.keys(r)).toEqual([...head, 'requestedKeys', 'requestedKeyCount', 'errorCode', 'reason']);
    expect(r).toMatchObject({ event: 'credentials.denied', errorCode: 'CV_INVALID_KEY', reason: 'invalid_key' });
  });

  it('credentials.failed: the plan so far and the upstream code; a 200 without issued facts is a failure', () => {
    const r = decisionRecord(facts({ plan, upstreamCode: 'Throttling' }), request, {
      kind: 'failed',
      errorCode: 'CV_STS_THROTTLED',
    });
    expect(Object.keys(r)).toEqual([...head, ...planKeys, 'errorCode', 'upstreamCode']);
    const odd = decisionRecord({ profile: 'uploads' }, { requestId: 'r', clientIp: 'ip' }, { kind: 'issued' });
    expect(odd).toEqual({
      event: 'credentials.failed',
      requestId: 'r',
      clientIp: 'ip',
      profile: 'uploads',
      errorCode: 'CV_INTERNAL',
    });
  });
});
