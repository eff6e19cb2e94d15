// The real process's access lines (src/log-lines.ts): gathered in memory and written in batches,
// so each must still reach stdout within the batching bound while the service runs, and every
// one gathered must be written when it stops on SIGTERM. Mistake stopped: an operator missing
// the last requests before a shutdown (or a crash under close-with-grace) in the app log.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIAL_REQUEST, waitFor } from '../helpers/service-process.js';
import { requestCredentials } from './load.js';
import { createRig, type Rig } from './rig.js';

let rig: Rig;

beforeAll(async () => {
  rig = await createRig();
});

afterAll(async () => {
  await rig?.close();
});

/** The access lines in a stdout file, by request id (every line must be whole JSON). */
function accessLines(file: string): Map<string, Record<string, unknown>> {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return new Map(records.filter((r) => r.msg === 'request').map((r) => [String(r.reqId), r]));
}

describe('access lines of the real process', () => {
  it('reach stdout within the batching bound while running, and all of them at SIGTERM', async () => {
    const svc = await rig.start('access-lines');
    const first = await requestCredentials(svc.url, rig.token, CREDENTIAL_REQUEST, 5_000);
    expect(first.status).toBe(200);
    // One line, far from a full batch: the 200 ms timer writes it.
    const seenAfter = await waitFor(() => accessLines(svc.stdoutFile).has(String(first.requestId)), 2_000, 20);
    expect(seenAfter).toBeDefined();
    expect(seenAfter!).toBeLessThan(1_000); // 200 ms, with room for a slow machine

    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const o = await requestCredentials(svc.url, rig.token, CREDENTIAL_REQUEST, 5_000);
      expect(o.status).toBe(200);
      ids.push(String(o.requestId));
    }
    expect(await svc.stop(5_000)).toBe(0);
    const lines = accessLines(svc.stdoutFile);
    expect(ids.filter((id) => !lines.has(id))).toEqual([]);
    expect(lines.get(ids.at(-1)!)).toMatchObject({ method: 'POST', route: '/v1/credentials', status: 200, level: 30 });
  });
});
