// The browser example's credential provider (examples/browser-upload/src/credvend.ts), with a
// fake credvend and a fake clock: renewal near expiry, one renewal for parallel parts, and
// credvend's refusals surfaced as CredvendError with the problem+json detail.
import { describe, expect, it } from 'vitest';
import { CredvendError, refreshingCredentials, requestGrant } from '../../examples/browser-upload/src/credvend.js';

const FIFTEEN_MIN = 900_000;

function fakeCredvend(): { fetch: typeof fetch; bodies: unknown[] } {
  const bodies: unknown[] = [];
  const fake = (async (_url: string | URL | Request, init?: RequestInit) => {
    bodies.push(JSON.parse(init?.body as string));
    const n = bodies.length;
    await new Promise((r) => setTimeout(r, 5));
    return Response.json({
      accessKeyId: `ASIA${n}`,
      secretAccessKey: `secret-${n}`,
      sessionToken: `token-${n}`,
      expiration: new Date(Date.now() + FIFTEEN_MIN).toISOString(),
      region: 'eu-west-1',
      bucket: 'b',
      keys: ['uploads/alice/big.bin'],
      requestId: `req-${n}`,
    });
  }) as typeof fetch;
  return { fetch: fake, bodies };
}

describe('refreshingCredentials', () => {
  it('keeps one grant while it is fresh, and asks again for the same keys once less than the margin remains', async () => {
    // Prepare
    const credvend = fakeCredvend();
    let offset = 0;
    const creds = refreshingCredentials(
      { url: 'https://cv.test/', token: () => 'jwt', fetch: credvend.fetch },
      { profile: 'uploads', operation: 'upload', keys: ['big.bin'] },
      { refreshBeforeMs: 120_000, now: () => Date.now() + offset },
    );
    // Act / Assess
    expect((await creds.provider()).accessKeyId).toBe('ASIA1');
    offset = FIFTEEN_MIN - 200_000; // 200 s left: still fresh
    expect((await creds.provider()).accessKeyId).toBe('ASIA1');
    offset = FIFTEEN_MIN - 100_000; // 100 s left: renew
    expect((await creds.provider()).accessKeyId).toBe('ASIA2');
    expect((await creds.provider()).accessKeyId).toBe('ASIA2'); // the new grant is fresh on the same clock
    expect(creds.grants()).toBe(2);
    expect(credvend.bodies).toEqual([
      { profile: 'uploads', operation: 'upload', keys: ['big.bin'] },
      { profile: 'uploads', operation: 'upload', keys: ['big.bin'] },
    ]);
    // The SDK must ask this provider every time, not cache it by the wall clock.
    expect(creds.provider.memoized).toBe(true);
  });

  it('parallel parts asking at once share one request to credvend', async () => {
    const credvend = fakeCredvend();
    const creds = refreshingCredentials(
      { url: 'https://cv.test', token: () => 'jwt', fetch: credvend.fetch },
      { profile: 'p', operation: 'upload', keys: ['k'] },
    );
    const ids = await Promise.all([creds.provider(), creds.provider(), creds.provider(), creds.provider()]);
    expect(new Set(ids.map((c) => c.accessKeyId))).toEqual(new Set(['ASIA1']));
    expect(credvend.bodies).toHaveLength(1);
  });
});

describe('requestGrant', () => {
  it("a refusal becomes a CredvendError carrying credvend's problem+json detail, code and request id", async () => {
    const refuse = (async () =>
      new Response(
        JSON.stringify({
          type: 'about:blank',
          title: 'Bad Request',
          status: 400,
          detail: 'key 1 has a . or .. segment',
          code: 'CV_INVALID_KEY',
          requestId: 'r-1',
        }),
        {
          status: 400,
          headers: { 'content-type': 'application/problem+json' },
        },
      )) as typeof fetch;
    const err = await requestGrant(
      { url: 'https://cv.test', token: () => 'jwt', fetch: refuse },
      { profile: 'p', operation: 'upload', keys: ['../x'] },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredvendError);
    expect(err).toMatchObject({
      message: 'key 1 has a . or .. segment',
      status: 400,
      code: 'CV_INVALID_KEY',
      requestId: 'r-1',
    });
  });

  it('an unreachable credvend (or a CORS refusal, which a browser reports the same way) is a CredvendError without a status', async () => {
    const down = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    const err = await requestGrant(
      { url: 'https://cv.test', token: () => 'jwt', fetch: down },
      { profile: 'p', operation: 'upload', keys: ['x'] },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'CredvendError', status: undefined, message: expect.stringContaining('CORS') });
  });
});
