// The pieces of AWS Signature Version 4 that credvend computes itself: presigned S3 URLs and forms
// (src/s3/presign.ts) and signed STS calls (src/sts/http-client.ts). Both are checked against the
// SDK's own signer in their tests.
import { createHmac } from 'node:crypto';
import { isoTimeCache } from '../iso-time.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';

/** RFC 3986 escaping as the SDK does it (encodeURIComponent, plus !'()*). */
export function escapeUri(value: string): string {
  const encoded = encodeURIComponent(value);
  return RESERVED.test(encoded)
    ? encoded.replace(RESERVED_ALL, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    : encoded;
}
const RESERVED = /[!'()*]/;
const RESERVED_ALL = /[!'()*]/g;

/** `20240102T030405Z` */
export function amzDate(at: Date): string {
  const iso = isoNow(at.getTime());
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}
// Every URL of a request (and of the requests of the same second) is signed at one instant.
const isoNow = isoTimeCache();

/** kSigning: the key a signature of `day` (YYYYMMDD), region and service is computed with. */
export function deriveSigningKey(secretAccessKey: string, day: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', `AWS4${secretAccessKey}`).update(day).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

/** HMAC-SHA256 of `data` under a signing key, as the hex signature SigV4 sends. */
export function signature(signingKey: Buffer, data: string): string {
  return createHmac('sha256', signingKey).update(data).digest('hex');
}
