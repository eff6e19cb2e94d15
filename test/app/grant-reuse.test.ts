// Grant reuse through the whole app (buildApp + inject, STS mocked): an identical grant gets the
// same credentials without another AssumeRole, anything else never does; concurrent identical
// requests share one call; each reuse is its own audited, counted decision. Each test names the
// attack or mistake it stops.
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { exportSPKI } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditSink } from '../../src/audit/sink.js';
import type { Sts } from '../../src/sts/sts.js';
import { createGrantReuse } from '../../src/sts/reuse.js';
import {
  allSecretsSeen,
  AUDIENCE,
  baseProfiles,
  buildHarness,
  ISSUER,
  testKeys,
  type Harness,
  type HarnessOptions,
} from '../helpers/app.js';

const OTHER_ISSUER = 'https://idp.other.example.com';
const reuse = { minRemainingSeconds: 300, maxEntries: 100 };

/** `uploads` (prefix per subject), its twin `mirror`, `shared` (static prefix, tag and
 * SourceIdentity from claims) with reuse on; `plain` (= uploads) and `kms` without. */
function profiles(over: Record<string, unknown> = {}): Record<string, unknown> {
  const base = baseProfiles() as Record<string, Record<string, unknown>>;
  return {
    uploads: { ...base.uploads, reuse },
    mirror: { ...base.uploads, reuse },
    plain: { ...base.uploads },
    kms: base.kms,
    shared: {
      roleArn: 'arn:aws:iam::123456789012:role/credvend-shared',
      bucket: 'shared-bucket',
      region: 'eu-west-1',
      prefix: 'shared/',
      allowPrefixGrants: true,
      maxDurationSeconds: 1800,
      sessionTags: { team: '{team}' },
      sourceIdentity: '{login}',
      reuse,
      match: { aud: AUDIENCE },
    },
    ...over,
  };
}

let h: Harness | undefined;
afterEach(async () => {
  const open = h;
  h = undefined;
  await open?.close();
});

async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  h = await buildHarness({ profiles: profiles(), ...opts });
  return h;
}

async function post(harnessed: Harness, body: Record<string, unknown>, token?: string) {
  const t = token ?? (await harnessed.token({ sub: 'alice' }, { expiresIn: '2h' }));
  return harnessed.app.inject({
    method: 'POST',
    url: '/v1/credentials',
    headers: { authorization: `Bearer ${t}` },
    payload: body,
  });
}

const upload = { profile: 'uploads', operation: 'upload', keys: ['report.pdf'] };
const assumeCalls = (x: Harness) => x.sts.commandCalls(AssumeRoleCommand).length;
const records = (x: Harness) => x.audit.records();

/** An Sts wrapper that holds every STS call until `release()`. */
function heldSts() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const wrap = (inner: Sts): Sts => ({
    async assumeRole(plan, signal) {
      await gate;
      return inner.assumeRole(plan, signal);
    },
    serviceIdentity: (s) => inner.serviceIdentity(s),
  });
  return { wrap, release: () => release() };
}

function stsError(name: string, status: number): Error {
  return Object.assign(new Error('not authorized detail-xyz'), { name, $metadata: { httpStatusCode: status } });
}

describe('grant reuse: an identical grant', () => {
  it('gets the same credentials without another AssumeRole, audited as credentials.reused', async () => {
    // Mistake stopped: a reuse that leaves no trace (the security team cannot tell who holds the
    // key), or one whose record points at a session CloudTrail never saw.
    const x = await harness();
    const first = await post(x, upload);
    const second = await post(x, upload);
    expect(first.statusCode).toBe(200);
    expect(second.statusCode).toBe(200);
    const [a, b] = [first.json(), second.json()];
    expect(b.accessKeyId).toBe(a.accessKeyId);
    expect(b.sessionToken).toBe(a.sessionToken);
    expect(b.expiration).toBe(a.expiration);
    expect(b.requestId).not.toBe(a.requestId);
    expect(b.keys).toEqual(['uploads/alice/report.pdf']);
    expect(assumeCalls(x)).toBe(1);
    const sessionName = x.sts.commandCalls(AssumeRoleCommand)[0]!.args[0].input.RoleSessionName;
    const [issued, reused] = records(x);
    expect(issued).toMatchObject({
      event: 'credentials.issued',
      requestId: a.requestId,
      accessKeyId: a.accessKeyId,
      roleSessionName: sessionName,
    });
    expect(reused).toMatchObject({
      event: 'credentials.reused',
      requestId: b.requestId,
      issuedForRequestId: a.requestId,
      roleSessionName: sessionName,
      accessKeyId: a.accessKeyId,
      expiration: a.expiration,
      profile: 'uploads',
      operation: 'upload',
      keys: ['uploads/alice/report.pdf'],
      policySha256: issued!.policySha256,
      subject: { iss: ISSUER, sub: 'alice' },
    });
    expect(JSON.stringify(records(x))).not.toContain(a.sessionToken);
    expect(JSON.stringify(records(x))).not.toContain(a.secretAccessKey);
  });

  it('is counted in credvend_credentials_reused_total, not as an issue nor an STS call', async () => {
    const x = await harness();
    for (let i = 0; i < 3; i++) expect((await post(x, upload)).statusCode).toBe(200);
    expect((await post(x, { ...upload, operation: 'download' })).statusCode).toBe(200);
    const text = await x.metrics.registry.metrics();
    expect(text).toContain('credvend_credentials_reused_total{profile="uploads",operation="upload"} 2');
    expect(text).toContain('credvend_credentials_issued_total{profile="uploads",operation="upload"} 1');
    expect(text).toContain('credvend_credentials_issued_total{profile="uploads",operation="download"} 1');
    expect(text).not.toMatch(/credvend_credentials_reused_total\{profile="uploads",operation="download"\}/);
    expect(text).toContain('credvend_sts_calls_total{outcome="success",code="none"} 2');
  });

  it('works for the container-credentials route and prefix grants alike', async () => {
    const x = await harness();
    const token = await x.token({ sub: 'alice', team: 'red', login: 'alice' }, { expiresIn: '2h' });
    const get = () =>
      x.app.inject({
        method: 'GET',
        url: '/v1/container-credentials/uploads?operation=download&key=a.txt',
        headers: { authorization: token },
      });
    const [c1, c2] = [await get(), await get()];
    expect(c2.json().AccessKeyId).toBe(c1.json().AccessKeyId);
    const p1 = await post(x, { profile: 'shared', operation: 'upload', prefix: 'dir/' }, token);
    const p2 = await post(x, { profile: 'shared', operation: 'upload', prefix: 'dir/' }, token);
    expect(p2.json().accessKeyId).toBe(p1.json().accessKeyId);
    expect(assumeCalls(x)).toBe(2);
  });
});

describe('grant reuse: anything else never reuses', () => {
  it('another key, key set, operation, duration or prefix gets its own session', async () => {
    // Attack stopped: credentials for report.pdf (or for download only, or for 900 s) answering
    // a request for another object, operation or lifetime.
    const x = await harness();
    const token = await x.token({ sub: 'alice', team: 'red', login: 'alice' }, { expiresIn: '2h' });
    const bodies = [
      upload,
      { ...upload, keys: ['other.pdf'] },
      { ...upload, keys: ['report.pdf', 'other.pdf'] },
      { ...upload, keys: ['other.pdf', 'report.pdf'] }, // order counts: the policy is another one
      { ...upload, operation: 'download' },
      { ...upload, durationSeconds: 1800 },
      { profile: 'shared', operation: 'upload', prefix: 'a/' },
      { profile: 'shared', operation: 'upload', prefix: 'b/' },
    ];
    const keys = [];
    for (const body of bodies) {
      const res = await post(x, body, token);
      expect(res.statusCode, JSON.stringify(body)).toBe(200);
      keys.push(res.json().accessKeyId as string);
    }
    expect(new Set(keys).size).toBe(bodies.length);
    expect(assumeCalls(x)).toBe(bodies.length);
    expect(records(x).every((r) => r.event === 'credentials.issued')).toBe(true);
  });

  it('another subject never gets a session minted for alice, even with an identical policy', async () => {
    // Attack stopped: bob receiving alice's session (CloudTrail would blame alice for his
    // actions) where the prefix does not depend on the subject.
    const x = await harness();
    const body = { profile: 'shared', operation: 'upload', keys: ['a.txt'] };
    const alice = await post(x, body, await x.token({ sub: 'alice', team: 'red', login: 'same' }, { expiresIn: '2h' }));
    const bob = await post(x, body, await x.token({ sub: 'bob', team: 'red', login: 'same' }, { expiresIn: '2h' }));
    expect(bob.json().accessKeyId).not.toBe(alice.json().accessKeyId);
    expect(assumeCalls(x)).toBe(2);
  });

  it('the same subject from another issuer never reuses', async () => {
    // Attack stopped: another identity provider minting "alice" (which its owner may do at will)
    // and receiving the session issued to the real alice.
    const { publicKey } = await testKeys();
    const pem = await exportSPKI(publicKey);
    const x = await harness({
      issuers: [
        { issuer: ISSUER, audiences: [AUDIENCE], publicKey: pem, algorithms: ['RS256'] },
        { issuer: OTHER_ISSUER, audiences: [AUDIENCE], publicKey: pem, algorithms: ['RS256'] },
      ],
    });
    const body = { profile: 'shared', operation: 'upload', keys: ['a.txt'] };
    const claims = { sub: 'alice', team: 'red', login: 'alice' };
    const real = await post(x, body, await x.token(claims, { expiresIn: '2h' }));
    const forged = await post(x, body, await x.token(claims, { expiresIn: '2h', issuer: OTHER_ISSUER }));
    expect(real.statusCode).toBe(200);
    expect(forged.statusCode).toBe(200);
    expect(forged.json().accessKeyId).not.toBe(real.json().accessKeyId);
    expect(assumeCalls(x)).toBe(2);
  });

  it('another session tag value or SourceIdentity never reuses', async () => {
    // Attack stopped: a token with team=blue using a session tagged team=red (ABAC in the
    // bucket policy would grant red's access), or a SourceIdentity that is not the caller's.
    const x = await harness();
    const body = { profile: 'shared', operation: 'upload', keys: ['a.txt'] };
    const red = await post(x, body, await x.token({ sub: 'alice', team: 'red', login: 'alice' }, { expiresIn: '2h' }));
    const blue = await post(
      x,
      body,
      await x.token({ sub: 'alice', team: 'blue', login: 'alice' }, { expiresIn: '2h' }),
    );
    const otherLogin = await post(
      x,
      body,
      await x.token({ sub: 'alice', team: 'red', login: 'al1ce' }, { expiresIn: '2h' }),
    );
    expect(new Set([red, blue, otherLogin].map((r) => r.json().accessKeyId)).size).toBe(3);
    expect(assumeCalls(x)).toBe(3);
    expect(x.sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input.Tags?.[0]?.Value)).toEqual([
      'red',
      'blue',
      'red',
    ]);
  });

  it('another profile never reuses, even one identical but for its name', async () => {
    // Attack stopped: a grant of one profile answering a request to another (another role or
    // another audit trail), whatever their settings.
    const x = await harness();
    const a = await post(x, upload);
    const b = await post(x, { ...upload, profile: 'mirror' });
    expect(b.json().accessKeyId).not.toBe(a.json().accessKeyId);
    expect(assumeCalls(x)).toBe(2);
  });

  it('a profile without `reuse` calls STS for every request', async () => {
    // Mistake stopped: reuse turned on for every profile, widening who shares a session without
    // the operator choosing it.
    const x = await harness();
    for (let i = 0; i < 3; i++) await post(x, { ...upload, profile: 'plain' });
    await post(x, { profile: 'kms', operation: 'upload', keys: ['a'] });
    await post(x, { profile: 'kms', operation: 'upload', keys: ['a'] });
    expect(assumeCalls(x)).toBe(5);
    expect(records(x).every((r) => r.event === 'credentials.issued')).toBe(true);
  });

  it('authorization and key checks still run for every request that could reuse', async () => {
    // Attack stopped: a caller whose token no longer matches the profile (or who asks for a key
    // outside the prefix) being served from the cache because an identical grant is held.
    const x = await harness({
      profiles: profiles({
        shared: { ...(profiles().shared as object), match: { aud: AUDIENCE, claims: { team: 'red' } } },
      }),
    });
    const body = { profile: 'shared', operation: 'upload', keys: ['a.txt'] };
    expect(
      (await post(x, body, await x.token({ sub: 'alice', team: 'red', login: 'alice' }, { expiresIn: '2h' })))
        .statusCode,
    ).toBe(200);
    const mismatch = await post(
      x,
      body,
      await x.token({ sub: 'alice', team: 'red ', login: 'alice' }, { expiresIn: '2h' }),
    );
    expect(mismatch.statusCode).toBe(403);
    const traversal = await post(
      x,
      { ...body, keys: ['../a.txt'] },
      await x.token({ sub: 'alice', team: 'red', login: 'alice' }, { expiresIn: '2h' }),
    );
    expect(traversal.statusCode).toBe(400);
    expect(records(x).map((r) => r.event)).toEqual(['credentials.issued', 'credentials.denied', 'credentials.denied']);
  });
});

describe('grant reuse: single flight, expiry and failures', () => {
  it('50 concurrent identical requests make exactly one AssumeRole, and each has its own record', async () => {
    // Mistake stopped: a burst (a CI matrix starting together) costing one AssumeRole per
    // request, which is what exhausts the account's fixed STS rate.
    const held = heldSts();
    const x = await harness({ wrapSts: held.wrap });
    const token = await x.token({ sub: 'alice' }, { expiresIn: '2h' });
    const pending = Array.from({ length: 50 }, () => post(x, upload, token));
    await new Promise((r) => setTimeout(r, 50));
    held.release();
    const answers = await Promise.all(pending);
    expect(answers.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
    expect(assumeCalls(x)).toBe(1);
    expect(new Set(answers.map((r) => r.json().accessKeyId)).size).toBe(1);
    const issued = records(x).filter((r) => r.event === 'credentials.issued');
    const reused = records(x).filter((r) => r.event === 'credentials.reused');
    expect(issued).toHaveLength(1);
    expect(reused).toHaveLength(49);
    expect(new Set(records(x).map((r) => r.requestId)).size).toBe(50);
    expect(
      reused.every((r) => r.issuedForRequestId === issued[0]!.requestId && r.accessKeyId === issued[0]!.accessKeyId),
    ).toBe(true);
    expect(await x.metrics.registry.metrics()).toContain(
      'credvend_credentials_reused_total{profile="uploads",operation="upload"} 49',
    );
  });

  it('credentials with less than minRemainingSeconds left are not handed out again', async () => {
    // Mistake stopped: a caller handed credentials that expire before its upload finishes.
    let offset = 0;
    const x = await harness({ now: () => Date.now() + offset });
    const token = await x.token({ sub: 'alice' }, { expiresIn: '2h' });
    const first = (await post(x, upload, token)).json();
    offset = 500_000; // 400 s of 900 left: more than the 300 s margin
    const second = (await post(x, upload, token)).json();
    offset = 650_000; // 250 s left
    const third = (await post(x, upload, token)).json();
    expect(second.accessKeyId).toBe(first.accessKeyId);
    expect(third.accessKeyId).not.toBe(first.accessKeyId);
    expect(assumeCalls(x)).toBe(2);
    expect(records(x).map((r) => r.event)).toEqual(['credentials.issued', 'credentials.reused', 'credentials.issued']);
  });

  it('every STS call names its own request in RoleSessionName, plan memoised or not', async () => {
    // Attack stopped: CloudTrail joining a session to the wrong audit record (the request whose
    // plan was memoised) when a later identical request is the one that calls STS.
    let offset = 0;
    const x = await harness({ now: () => Date.now() + offset });
    const token = await x.token({ sub: 'alice' }, { expiresIn: '2h' });
    const first = await post(x, upload, token);
    offset = 650_000; // 250 s left: the next identical request calls STS again
    const second = await post(x, upload, token);
    const names = x.sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input.RoleSessionName);
    const ids = [first, second].map((r) => String(r.headers['x-request-id']).slice(0, 12));
    expect(names).toHaveLength(2);
    expect(names[0]).toContain(ids[0]);
    expect(names[1]).toContain(ids[1]);
    expect(records(x).map((r) => r.roleSessionName)).toEqual(names);
  });

  it('a token past its expiry is refused though its plan and grant are held', async () => {
    // Attack stopped: an expired (or not yet valid) token kept alive by a memoised plan or a
    // held grant: the token's times are checked on every request, before either is consulted.
    let offset = 0;
    const x = await harness({ now: () => Date.now() + offset });
    const token = await x.token({ sub: 'alice' }, { expiresIn: '20m' });
    expect((await post(x, upload, token)).statusCode).toBe(200);
    expect((await post(x, upload, token)).statusCode).toBe(200);
    offset = 21 * 60_000 + 120_000; // past exp and the clock skew allowance
    const late = await post(x, upload, token);
    expect(late.statusCode).toBe(401);
    expect(late.json().accessKeyId).toBeUndefined();
    expect(assumeCalls(x)).toBe(1);
  });

  it('an STS failure is not cached: every waiter of that call fails, the next request calls again', async () => {
    // Attack stopped: one AccessDenied or throttled answer replayed to later callers (a
    // self-inflicted outage), or waiters of a failed call left hanging.
    const held = heldSts();
    const x = await harness({ wrapSts: held.wrap });
    x.sts.on(AssumeRoleCommand).rejects(stsError('AccessDenied', 403));
    const token = await x.token({ sub: 'alice' }, { expiresIn: '2h' });
    const pending = Array.from({ length: 5 }, () => post(x, upload, token));
    await new Promise((r) => setTimeout(r, 50));
    held.release();
    const failed = await Promise.all(pending);
    expect(new Set(failed.map((r) => r.statusCode)).size).toBe(1);
    expect(failed[0]!.statusCode).toBeGreaterThanOrEqual(500);
    expect(assumeCalls(x)).toBe(1);
    expect(records(x)).toHaveLength(5);
    expect(records(x).every((r) => r.event === 'credentials.failed' && r.upstreamCode === 'AccessDenied')).toBe(true);
    expect(await x.metrics.registry.metrics()).toContain(
      'credvend_sts_calls_total{outcome="access_denied",code="AccessDenied"} 1',
    );

    x.sts.reset();
    x.sts.on(AssumeRoleCommand).callsFake(() => {
      const c = {
        AccessKeyId: 'ASIAREUSEAFTERFAIL01',
        SecretAccessKey: 'reuse-after-fail-secret-0123456789',
        SessionToken: 'reuse-after-fail-token-0123456789',
        Expiration: new Date(Date.now() + 900_000),
      };
      allSecretsSeen.add(c.SecretAccessKey);
      allSecretsSeen.add(c.SessionToken);
      return { Credentials: c };
    });
    const next = await post(x, upload, token);
    const again = await post(x, upload, token);
    expect(next.statusCode).toBe(200);
    expect(again.json().accessKeyId).toBe(next.json().accessKeyId);
    expect(assumeCalls(x)).toBe(1);
  });
});

/** An audit destination the test controls: fails with `failWith` while set, else keeps lines. */
function controlledSink() {
  const lines: string[] = [];
  const state = { failWith: undefined as string | undefined };
  const sink: AuditSink = {
    async write(chunk) {
      if (state.failWith) return { written: 0, error: { code: state.failWith } };
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      return { written: chunk.length };
    },
    async close() {},
  };
  return { sink, state, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('grant reuse: audit and memory', () => {
  it('an unwritable audit log withholds a reuse too: 503 CV_AUDIT_UNAVAILABLE, no secret in the answer', async () => {
    // Attack stopped: filling the audit disk, then repeating an earlier request to be handed a
    // cached credential with no record of who got it.
    const audit = controlledSink();
    const x = await harness({ auditSink: audit.sink });
    const token = await x.token({ sub: 'alice' }, { expiresIn: '2h' });
    const first = await post(x, upload, token);
    expect(first.statusCode).toBe(200);
    audit.state.failWith = 'ENOSPC';
    const res = await post(x, upload, token);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'CV_AUDIT_UNAVAILABLE' });
    expect(res.body).not.toContain(first.json().sessionToken);
    expect(res.body).not.toContain(first.json().secretAccessKey);
    expect(assumeCalls(x)).toBe(1);
    expect(await x.metrics.registry.metrics()).not.toContain('credvend_credentials_reused_total{');
    // Once the log recovers, the owed record says the reuse was withheld, naming the key.
    audit.state.failWith = undefined;
    const until = Date.now() + 5000;
    while (audit.records().length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(audit.records()[1]).toMatchObject({
      event: 'credentials.failed',
      errorCode: 'CV_AUDIT_UNAVAILABLE',
      withheld: true,
      requestId: res.json().requestId,
      accessKeyId: first.json().accessKeyId,
      issuedForRequestId: first.json().requestId,
    });
  });

  it('the cache is bounded by maxEntries and emptied when the app closes', async () => {
    // Mistake stopped: live credentials piling up without bound, or outliving the app in memory.
    const grants = createGrantReuse({ now: Date.now });
    const x = await harness({
      grants,
      profiles: profiles({
        uploads: { ...(profiles().uploads as object), reuse: { minRemainingSeconds: 300, maxEntries: 2 } },
      }),
    });
    const token = await x.token({ sub: 'alice' }, { expiresIn: '2h' });
    for (const key of ['a', 'b', 'c']) await post(x, { ...upload, keys: [key] }, token);
    expect(grants.size('uploads')).toBe(2);
    await post(x, { ...upload, keys: ['a'] }, token); // evicted: called again
    await post(x, { ...upload, keys: ['c'] }, token); // still held
    expect(assumeCalls(x)).toBe(4);
    await x.app.close();
    expect(grants.size()).toBe(0);
  });
});
