// The one module that imports the S3 SDK: presigned PUT/GET URLs and POST forms, signed locally
// (no network call) with the credentials of a signing session. Everything else sees UrlSigner.
//
// Threat: a URL or form that reaches more than its one key. SigV4 signs the path, so a URL pins
// its key; a POST policy pins it with an exact `key` condition. The SDK turns a key ending in
// `${filename}` into a `starts-with` condition (any object under it): such keys are refused.
// Threat: an upload larger than the operator allows. Only a POST policy's content-length-range
// is enforced by S3; a presigned PUT carries no size limit, so capped uploads get forms only.
//
// Cost: the SDK's getSignedUrl / createPresignedPost run a client's whole middleware stack (and
// an endpoint resolution) for every URL, about a millisecond each. Here the SDK is asked once
// per bucket and region, at first use, for where URLs of that bucket point; from then on every
// URL is the SigV4 query signature computed directly (one SHA-256 and one HMAC; the signing key
// is derived once per session and day). The output is the SDK's, byte for byte: the first use
// signs a probe both ways and keeps the direct path only when they agree (otherwise, e.g. for a
// bucket shape this code does not know, every URL of that bucket goes through the SDK as
// before), and test/unit/s3-presign.test.ts compares the two over many keys.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ALGORITHM, amzDate, deriveSigningKey, escapeUri, signature } from '../aws/sigv4.js';
import { sha256 } from '../digest.js';

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
  /** `signedAt` is the URL's X-Amz-Date: it expires `expiresSeconds` after that. */
  putUrl(bucket: string, key: string, expiresSeconds: number, signedAt: Date): Promise<string>;
  getUrl(bucket: string, key: string, expiresSeconds: number, signedAt: Date): Promise<string>;
  /** A POST form pinned to `key` whose uploads must be 0..maxBytes bytes. */
  postForm(
    bucket: string,
    key: string,
    expiresSeconds: number,
    maxBytes: number,
    signedAt: Date,
  ): Promise<PresignedForm>;
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

// ---------------------------------------------------------------------------------------------
// SigV4, as the SDK computes it for S3 (no double encoding of the path, unsigned payload).

const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** The SDK's (and SigV4's) limit on a presigned URL's lifetime. */
const MAX_PRESIGNED_SECONDS = 604_800;

/** An object key in a URL path: each segment escaped, '/' kept (the SDK's greedy label). */
function encodeKeyPath(key: string): string {
  // Only characters escaping leaves as they are (RFC 3986 unreserved, and '/'): the key itself.
  return UNRESERVED_PATH.test(key) ? key : key.split('/').map(escapeUri).join('/');
}
const UNRESERVED_PATH = /^[A-Za-z0-9\-._~/]*$/;

/** A session's credentials with its SigV4 signing key, derived once per day and region. */
export interface SigningSession {
  readonly credentials: SigningCredentials;
  /** The session token as a URL query value (escaped once: it is most of a URL's length). */
  readonly escapedToken: string;
  /** kSigning for `YYYYMMDD` and region (service s3). */
  signingKey(day: string, region: string): Buffer;
}

export function signingSession(credentials: SigningCredentials): SigningSession {
  let cached: { day: string; region: string; key: Buffer } | undefined;
  return {
    credentials,
    escapedToken: escapeUri(credentials.sessionToken),
    signingKey(day, region) {
      if (cached?.day === day && cached.region === region) return cached.key;
      const key = deriveSigningKey(credentials.secretAccessKey, day, region, 's3');
      cached = { day, region, key };
      return key;
    },
  };
}

/** Where a bucket's object URLs point, learned from the SDK (see bucketShape). */
export interface UrlShape {
  /** Scheme, host and path up to the key: `https://b.s3.eu-west-1.amazonaws.com/`, `http://rgw:7480/b/`. */
  readonly base: string;
  /** The signed Host header. */
  readonly host: string;
  /** The path up to the key, as signed. */
  readonly path: string;
  /** The region of the credential scope. */
  readonly signingRegion: string;
}

/** A presigned GET or PUT URL, as getSignedUrl(client, Get/PutObjectCommand) makes it. */
export function presignUrl(
  shape: UrlShape,
  session: SigningSession,
  method: 'GET' | 'PUT',
  key: string,
  expiresSeconds: number,
  at: Date,
): string {
  if (!(Number.isInteger(expiresSeconds) && expiresSeconds > 0 && expiresSeconds <= MAX_PRESIGNED_SECONDS)) {
    throw new RangeError(`a presigned URL lives 1..${MAX_PRESIGNED_SECONDS} seconds`);
  }
  const c = session.credentials;
  const date = amzDate(at);
  const day = date.slice(0, 8);
  const scope = `${day}/${shape.signingRegion}/s3/aws4_request`;
  const keyPath = encodeKeyPath(key);
  // Sorted by name, as SigV4's canonical query string (and the SDK's URL) has them.
  const head =
    `X-Amz-Algorithm=${ALGORITHM}&X-Amz-Content-Sha256=${UNSIGNED_PAYLOAD}&X-Amz-Credential=${escapeUri(`${c.accessKeyId}/${scope}`)}` +
    `&X-Amz-Date=${date}&X-Amz-Expires=${expiresSeconds}&X-Amz-Security-Token=${session.escapedToken}`;
  const tail = `X-Amz-SignedHeaders=host&x-id=${method === 'PUT' ? 'PutObject' : 'GetObject'}`;
  const canonicalRequest = `${method}\n${shape.path}${keyPath}\n${head}&${tail}\nhost:${shape.host}\n\nhost\n${UNSIGNED_PAYLOAD}`;
  const stringToSign = `${ALGORITHM}\n${date}\n${scope}\n${sha256(canonicalRequest)}`;
  const signed = signature(session.signingKey(day, shape.signingRegion), stringToSign);
  return `${shape.base}${keyPath}?${head}&X-Amz-Signature=${signed}&${tail}`;
}

/** A presigned POST form, as createPresignedPost makes it with one content-length-range condition. */
export function presignPostForm(
  url: string,
  region: string,
  session: SigningSession,
  bucket: string,
  key: string,
  expiresSeconds: number,
  maxBytes: number,
  at: Date,
): PresignedForm {
  if (widensPostPolicy(key)) throw new Error('a POST policy cannot pin a key ending in ${filename}');
  const c = session.credentials;
  const date = amzDate(at);
  const day = date.slice(0, 8);
  const credential = `${c.accessKeyId}/${day}/${region}/s3/aws4_request`;
  const expiration = new Date(at.getTime() + expiresSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const policy = Buffer.from(
    JSON.stringify({
      expiration,
      conditions: [
        ['content-length-range', 0, maxBytes],
        { bucket },
        { 'X-Amz-Algorithm': ALGORITHM },
        { 'X-Amz-Credential': credential },
        { 'X-Amz-Date': date },
        { 'X-Amz-Security-Token': c.sessionToken },
        { key },
      ],
    }),
    'utf8',
  ).toString('base64');
  const signed = signature(session.signingKey(day, region), policy);
  return {
    url,
    fields: {
      bucket,
      'X-Amz-Algorithm': ALGORITHM,
      'X-Amz-Credential': credential,
      'X-Amz-Date': date,
      'X-Amz-Security-Token': c.sessionToken,
      key,
      Policy: policy,
      'X-Amz-Signature': signed,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The SDK: the reference, asked once per bucket, and the path for anything the direct one is not.

function sdkClient(opts: UrlSignerOptions, credentials: SigningCredentials, region: string): S3Client {
  // Signing only: its handler never opens a socket. Checksums only when required: otherwise the
  // SDK signs a CRC32 of the empty body into every PUT URL, and any real upload through it fails.
  return new S3Client({
    region,
    credentials: { ...credentials },
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

interface SdkSigner {
  url(method: 'GET' | 'PUT', bucket: string, key: string, expiresIn: number, signedAt: Date): Promise<string>;
  postForm(bucket: string, key: string, expiresIn: number, maxBytes: number): Promise<PresignedForm>;
}

function sdkSigner(client: S3Client): SdkSigner {
  return {
    url: (method, bucket, key, expiresIn, signingDate) =>
      getSignedUrl(
        client,
        method === 'PUT'
          ? new PutObjectCommand({ Bucket: bucket, Key: key })
          : new GetObjectCommand({ Bucket: bucket, Key: key }),
        { expiresIn, signingDate },
      ),
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
}

/** How a bucket's URLs and forms are signed directly; `undefined` where the SDK must do it. */
export interface BucketShape {
  readonly url?: UrlShape;
  /** Where POST forms go. */
  readonly postUrl?: string;
}

// Throwaway credentials and a key with every character class the path escaping treats apart.
const PROBE = {
  accessKeyId: 'AKIDCREDVENDPROBE',
  secretAccessKey: 'probe/secret+key=',
  sessionToken: 'probe/token+=',
  expiration: new Date(8.64e15),
};
const PROBE_KEY = "credvend-probe/a b!'()*~+=&?#%é/x.txt";
const PROBE_DATE = new Date('2024-01-02T03:04:05.678Z');

/**
 * Asks the SDK where `bucket`'s URLs point and checks that the direct signer reproduces the SDK's
 * URLs and forms exactly (same probe credentials, key and date). Anything else (an endpoint shape
 * or an auth scheme this code does not sign, such as S3 Express or SigV4a) leaves that part
 * undefined, and the SDK signs it.
 */
export async function bucketShape(opts: UrlSignerOptions, bucket: string, region: string): Promise<BucketShape> {
  const sdk = sdkSigner(sdkClient(opts, PROBE, region));
  const session = signingSession(PROBE);
  let url: UrlShape | undefined;
  try {
    const put = await sdk.url('PUT', bucket, PROBE_KEY, 60, PROBE_DATE);
    const get = await sdk.url('GET', bucket, PROBE_KEY, 60, PROBE_DATE);
    const q = put.indexOf('?');
    const encoded = encodeKeyPath(PROBE_KEY);
    const scope = /X-Amz-Credential=[^&]*%2F\d{8}%2F([a-z0-9-]+)%2Fs3%2Faws4_request(&|$)/.exec(put);
    const origin = /^(https?:\/\/)([^/?#]+)/.exec(put);
    if (q > 0 && put.slice(0, q).endsWith(encoded) && scope?.[1] && origin?.[2]) {
      const base = put.slice(0, q - encoded.length);
      const candidate: UrlShape = {
        base,
        host: origin[2],
        path: base.slice(origin[0].length),
        signingRegion: scope[1],
      };
      if (
        presignUrl(candidate, session, 'PUT', PROBE_KEY, 60, PROBE_DATE) === put &&
        presignUrl(candidate, session, 'GET', PROBE_KEY, 60, PROBE_DATE) === get
      )
        url = candidate;
    }
  } catch {
    url = undefined;
  }
  let postUrl: string | undefined;
  try {
    const form = await sdk.postForm(bucket, PROBE_KEY, 60, 1);
    const date = form.fields['X-Amz-Date'] ?? '';
    const at = new Date(
      `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
    );
    const mine = presignPostForm(form.url, region, session, bucket, PROBE_KEY, 60, 1, at);
    if (mine.url === form.url && JSON.stringify(mine.fields) === JSON.stringify(form.fields)) postUrl = form.url;
  } catch {
    postUrl = undefined;
  }
  return { ...(url ? { url } : {}), ...(postUrl !== undefined ? { postUrl } : {}) };
}

export function createUrlSigner(opts: UrlSignerOptions): UrlSigner {
  // Per bucket and region, for the life of the process: where its URLs point never changes.
  const shapes = new Map<string, Promise<BucketShape>>();
  const shapeOf = (bucket: string, region: string): Promise<BucketShape> => {
    const id = `${region}\n${bucket}`;
    let shape = shapes.get(id);
    if (!shape) shapes.set(id, (shape = bucketShape(opts, bucket, region)));
    return shape;
  };
  return {
    forSession(credentials, region) {
      const session = signingSession(credentials);
      let fallback: SdkSigner | undefined; // one client per session, only if a bucket needs it
      const sdk = () => (fallback ??= sdkSigner(sdkClient(opts, credentials, region)));
      const url = async (method: 'GET' | 'PUT', bucket: string, key: string, expiresIn: number, signedAt: Date) => {
        const shape = (await shapeOf(bucket, region)).url;
        return shape
          ? presignUrl(shape, session, method, key, expiresIn, signedAt)
          : sdk().url(method, bucket, key, expiresIn, signedAt);
      };
      return {
        putUrl: (bucket, key, expiresIn, signedAt) => url('PUT', bucket, key, expiresIn, signedAt),
        getUrl: (bucket, key, expiresIn, signedAt) => url('GET', bucket, key, expiresIn, signedAt),
        async postForm(bucket, key, expiresIn, maxBytes, signedAt) {
          const postUrl = (await shapeOf(bucket, region)).postUrl;
          if (postUrl === undefined) return sdk().postForm(bucket, key, expiresIn, maxBytes);
          return presignPostForm(postUrl, region, session, bucket, key, expiresIn, maxBytes, signedAt);
        },
      };
    },
  };
}
