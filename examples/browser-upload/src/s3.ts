// Uploading and downloading with the AWS SDK, using credentials from credvend.
import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { AwsCredentials } from './credvend.js';

export interface S3Target {
  readonly region: string;
  /** Empty for AWS. An S3-compatible server (Ceph RGW, MinIO) by URL, addressed path-style. */
  readonly endpoint?: string;
  /**
   * The bucket as the S3 server names it in a request. On AWS the bucket credvend answers. On a
   * Ceph RGW whose buckets live in a tenant, `<tenant>:<bucket>`: the browser's CORS preflight
   * carries no credentials, so RGW can only find a tenant's bucket (and its CORS rule) by that name.
   */
  readonly bucket: string;
}

export function s3Client(target: S3Target, credentials: () => Promise<AwsCredentials>): S3Client {
  return new S3Client({
    region: target.region,
    credentials,
    maxAttempts: 3,
    ...(target.endpoint
      ? {
          endpoint: target.endpoint,
          forcePathStyle: true,
          // Ceph RGW 16 refuses the SDK's default flexible-checksum trailers; AWS accepts either.
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }
      : {}),
  });
}

/** 5 MiB, S3's smallest part: files above it go up in parts, each retried on its own. */
export const PART_SIZE = 5 * 1024 * 1024;

export async function uploadObject(
  client: S3Client,
  bucket: string,
  key: string,
  file: Blob,
  onProgress: (loaded: number, total: number) => void,
): Promise<void> {
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: file, ContentType: file.type || 'application/octet-stream' },
    partSize: PART_SIZE,
    queueSize: 3,
    // A failed multipart upload is aborted (the grant includes s3:AbortMultipartUpload), so no
    // orphaned parts are left to be billed.
    leavePartsOnError: false,
  });
  upload.on('httpUploadProgress', (p) => onProgress(p.loaded ?? 0, p.total ?? file.size));
  await upload.done();
  onProgress(file.size, file.size);
}

export async function downloadObject(client: S3Client, bucket: string, key: string): Promise<Uint8Array<ArrayBuffer>> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error('S3 answered without a body');
  // In the browser build the SDK's stream mixin type resolves only partly (no Node types): the
  // one method used is named here.
  const body = res.Body as { transformToByteArray(): Promise<Uint8Array> };
  return new Uint8Array(await body.transformToByteArray());
}

/** A sentence for the page: S3's error code and status (RGW sends no message: "UnknownError"). */
export function describeS3Error(err: unknown): string | undefined {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode;
    return `S3 refused the request: ${err.name}${status ? ` (HTTP ${status})` : ''}${err.message && err.message !== 'UnknownError' && err.message !== err.name ? `: ${err.message}` : ''}`;
  }
  return undefined;
}
