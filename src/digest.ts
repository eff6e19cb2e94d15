// SHA-256 of short strings on the request path (the policy's digest in the audit record, the grant
// reuse key, the RoleSessionName's subject hash). crypto.hash() (Node >= 20.12) is one call where
// createHash() builds a Hash object per digest: about 2.5 times cheaper, and these run several
// times per request. Older Node 20 releases, which lack it, take the createHash path.
import * as crypto from 'node:crypto';

type Encoding = 'hex' | 'base64url';

const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: Encoding) => string }).hash;

/**
 * SHA-256 of bytes, as bytes, in one call where Node has crypto.hash (HMAC in src/aws/sigv4.ts).
 */
export const sha256Bytes = oneShot
  ? (data: Buffer): Buffer =>
      (oneShot as unknown as (a: string, d: Buffer, e: 'buffer') => Buffer)('sha256', data, 'buffer')
  : (data: Buffer): Buffer => crypto.createHash('sha256').update(data).digest();

export const sha256 = oneShot
  ? (data: string, encoding: Encoding = 'hex'): string => oneShot('sha256', data, encoding)
  : (data: string, encoding: Encoding = 'hex'): string => crypto.createHash('sha256').update(data).digest(encoding);
