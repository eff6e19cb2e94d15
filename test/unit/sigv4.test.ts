// SigV4's HMAC (src/aws/sigv4.ts signature): built from two one-shot digests, so it is held to
// Node's createHmac for any key and data, and to RFC 4231's published vector. A wrong HMAC would
// make every presigned URL and STS call fail (S3 and STS refuse the signature), never grant more.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signature } from '../../src/aws/sigv4.js';

const reference = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest('hex');

describe('SigV4 HMAC-SHA256', () => {
  it('matches RFC 4231 test case 2', () => {
    expect(signature(Buffer.from('Jefe'), 'what do ya want for nothing?')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('matches createHmac for any key (shorter or longer than a block) and any data', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 100 }),
        fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 4 }),
        (key, data) => {
          const k = Buffer.from(key);
          // The same key object several times in a row: nothing of one call leaks into the next.
          for (const d of data) expect(signature(k, d)).toBe(reference(k, d));
        },
      ),
    );
  });
});
