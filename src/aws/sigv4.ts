// The pieces of AWS Signature Version 4 that credvend computes itself: presigned S3 URLs and forms
// (src/s3/presign.ts) and signed STS calls (src/sts/http-client.ts). Both are checked against the
// SDK's own signer in their tests.
import { createHash, createHmac } from 'node:crypto';
import { sha256Bytes } from '../digest.js';
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
  const { inner, outer } = padsOf(signingKey);
  // RFC 2104: H((K ^ opad) || H((K ^ ipad) || data)), from two one-shot digests. createHmac built
  // a stream object per call, which cost more than the hashing itself: this runs once per
  // presigned URL and per STS call. test/unit/sigv4.test.ts holds it to createHmac.
  sha256Bytes(Buffer.concat([inner, Buffer.from(data, 'utf8')])).copy(outer, BLOCK);
  return sha256Bytes(outer).toString('hex');
}

const BLOCK = 64; // SHA-256's block size
/** A signing key's padded blocks, once per key (a session's key lives for its day). */
const pads = new WeakMap<Buffer, { readonly inner: Buffer; readonly outer: Buffer }>();
function padsOf(key: Buffer): { readonly inner: Buffer; readonly outer: Buffer } {
  let p = pads.get(key);
  if (!p) {
    const k = key.length > BLOCK ? createHash('sha256').update(key).digest() : key;
    const inner = Buffer.alloc(BLOCK, 0x36);
    // The outer block is followed by room for the inner digest (written there per call: the
    // process is single-threaded and nothing awaits in between).
    const outer = Buffer.alloc(BLOCK + 32, 0x5c);
    for (let i = 0; i < k.length; i++) {
      inner[i]! ^= k[i]!;
      outer[i]! ^= k[i]!;
    }
    p = { inner, outer };
    pads.set(key, p);
  }
  return p;
}
