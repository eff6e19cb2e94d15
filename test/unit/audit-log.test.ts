// The audit log's write contract (src/audit/audit.ts): a record resolves only once all of its
// bytes were accepted; a short write followed by an error refuses exactly the records that did
// not land whole; owed records are written once the destination recovers; lines stay lines.
import { describe, expect, it } from 'vitest';
import { AuditUnavailableError, createAuditLog, type AuditEvent } from '../../src/audit/audit.js';
import type { AuditSink } from '../../src/audit/sink.js';
import { createMetrics } from '../../src/metrics/metrics.js';

const denied = (id: string): AuditEvent => ({
  event: 'credentials.denied',
  requestId: id,
  clientIp: '10.0.0.1',
  errorCode: 'CV_TOKEN_MISSING',
  reason: 'unauthenticated',
});
const issued = (id: string): AuditEvent => ({
  event: 'credentials.issued',
  requestId: id,
  clientIp: '10.0.0.1',
  bucket: 'b',
  roleArn: 'arn:aws:iam::1:role/r',
  roleSessionName: 's',
  sourceIdentity: 'a',
  sessionTags: {},
  durationSeconds: 900,
  policySha256: 'x',
  accessKeyId: `ASIA${id}`,
  expiration: '2030-01-01T00:00:00.000Z',
});

/** A disk with `room` bytes left: accepts what fits, then ENOSPC (a short write). */
function smallDisk(room: number) {
  let data = '';
  const disk = { room };
  const sink: AuditSink = {
    async write(chunk) {
      const n = Math.max(0, Math.min(chunk.length, disk.room - Buffer.byteLength(data)));
      data += chunk.subarray(0, n).toString('utf8');
      return n === chunk.length ? { written: n } : { written: n, error: { code: 'ENOSPC' } };
    },
    async close() {},
  };
  return { sink, disk, text: () => data };
}

describe('createAuditLog', () => {
  it('a short write refuses exactly the records that did not land whole, and the file stays one JSON line per record', async () => {
    // What it stops: a credential answered whose record was cut off by a full disk.
    const first = denied('r-1');
    const probe = smallDisk(1e9);
    await createAuditLog(probe.sink).record(first);
    const oneLine = Buffer.byteLength(probe.text());

    const d = smallDisk(oneLine + 10); // room for one record and a torn piece of the next
    const metrics = createMetrics({ version: 't', defaultMetrics: false });
    const audit = createAuditLog(d.sink, { metrics, retryIntervalMs: 20 });
    const results = await Promise.allSettled([audit.record(denied('r-1')), audit.record(issued('r-2'))]);
    expect(results[0].status).toBe('fulfilled');
    expect(results[1].status).toBe('rejected');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(AuditUnavailableError);
    expect(audit.writable()).toBe(false);
    expect(await metrics.registry.metrics()).toMatch(/credvend_audit_writable 0/);

    // Space again: the owed record is written by the retry timer, on a line of its own, as the
    // refusal it became (the credential was withheld), naming the key STS minted.
    d.disk.room = 1e9;
    const until = Date.now() + 3000;
    while (!audit.writable() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(audit.writable()).toBe(true);
    const lines = d.text().split('\n').filter(Boolean);
    const parsed = lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return []; // the torn fragment: ended by a newline, never glued to a record
      }
    });
    expect(parsed.map((r) => [r.requestId, r.event])).toEqual([
      ['r-1', 'credentials.denied'],
      ['r-2', 'credentials.failed'],
    ]);
    expect(parsed[1]).toMatchObject({ errorCode: 'CV_AUDIT_UNAVAILABLE', withheld: true, accessKeyId: 'ASIAr-2' });
    expect(lines.length).toBe(3); // two records and the one torn fragment
    await audit.close();
  });

  it('concurrent records share one write (group commit), each resolved on its own', async () => {
    // And records arriving while a write is in flight go together in the next one.
    let writes = 0;
    const lines: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sink: AuditSink = {
      async write(chunk) {
        writes += 1;
        await gate;
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        return { written: chunk.length };
      },
      async close() {},
    };
    const audit = createAuditLog(sink);
    const first = audit.record(denied('a'));
    const rest = Array.from({ length: 50 }, (_, i) => audit.record(denied(`b${i}`)));
    release();
    await Promise.all([first, ...rest]);
    expect(lines).toHaveLength(51);
    expect(writes).toBe(1); // recorded in the same turn of the event loop: one write for all 51
  });

  it('records arriving while a write is in flight share the next write', async () => {
    const sizes: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sink: AuditSink = {
      async write(chunk) {
        sizes.push(chunk.toString().split('\n').filter(Boolean).length);
        if (sizes.length === 1) await gate;
        return { written: chunk.length };
      },
      async close() {},
    };
    const audit = createAuditLog(sink);
    const first = audit.record(denied('a'));
    await new Promise((r) => setImmediate(r)); // the first write is now in flight
    const rest = Array.from({ length: 50 }, (_, i) => audit.record(denied(`b${i}`)));
    release();
    await Promise.all([first, ...rest]);
    expect(sizes).toEqual([1, 50]);
  });

  it('close() returns promptly even when the destination never answers', async () => {
    // What it stops: a process that cannot exit on SIGTERM because its audit disk hangs.
    const sink: AuditSink = { write: () => new Promise(() => {}), close: async () => {} };
    const audit = createAuditLog(sink);
    void audit.record(denied('x'));
    const started = Date.now();
    await audit.close();
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
