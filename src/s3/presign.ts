// The one module that imports the S3 SDK: presigned PUT/GET URLs and POST forms, signed locally
// (no network call) with the credentials of a signing session. Everything else sees UrlSigner.
//
// Threat: a URL or form that reaches more than its one key. SigV4 signs the path, so a URL pins
// its key; a POST policy pins it with an exact `key` condition. The SDK turns a key ending in
// `${filename}` into a `starts-with` condition (any object under it): such keys are refused.
// Threat: an upload larger than the operator allows. Only a POST policy's content-length-range
// is enforced by S3; a presigned PUT carries no size limit, so capped uploads get forms only.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

export interface PresignedForm {
  readonly url: string;
  /** Form fields to send before the file field, as they are (the signed policy names them). */
  readonly fields: Readonly<Record<string, string>>;
}

export interface SessionSigner {
  putUrl(bucket: string, key: string, expiresSeconds: number): Promise<string>;
  getUrl(bucket: string, key: string, expiresSeconds: number): Promise<string>;
  /** A POST form pinned to `key` whose uploads must be 0..maxBytes bytes. */
  postForm(bucket: string, key: string, expiresSeconds: number, maxBytes: number): Promise<PresignedForm>;
}

export interface UrlSigner {
  /** A signer for one session; it never sends a request. */
  forSession(credentials: SigningCredentials, region: string): SessionSigner;
}

export interface UrlSignerOptions {
  /** Where the URLs point (Ceph RGW, MinIO); AWS's regional S3 endpoint when absent. */
  readonly endpoint?: string | undefined;
  readonly forcePathStyle: boolean;
}

/** The SDK's `${filename}` substitution would widen a POST policy's exact key to a prefix. */
export function widensPostPolicy(key: string): boolean {
  return key.endsWith('${filename}');
}

export function createUrlSigner(opts: UrlSignerOptions): UrlSigner {
  return {
    forSession(credentials, region) {
      // One client per session (signing only: its handler never opens a socket). Checksums only
      // when required: otherwise the SDK signs a CRC32 of the empty body into every PUT URL, and
      // any real upload through it fails.
      const client = new S3Client({
        region,
        credentials: { ...credentials },
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        forcePathStyle: opts.forcePathStyle,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return {
        putUrl: (bucket, key, expiresIn) => getSignedUrl(client, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn }),
        getUrl: (bucket, key, expiresIn) => getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn }),
        async postForm(bucket, key, expiresIn, maxBytes) {
          if (widensPostPolicy(key)) throw new Error('a POST policy cannot pin a key ending in ${filename}');
          const { url, fields } = await createPresignedPost(client, {
            Bucket: bucket,
            Key: key,
            Conditions: [['content-length-range', 0, maxBytes]],
            Expires: expiresIn,
          });
          return { url, fields };
        },
      };
    },
  };
}
