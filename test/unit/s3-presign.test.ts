// The direct SigV4 signer (src/s3/presign.ts) against the SDK's own presigners: for fixed
// credentials, date and keys, every URL and POST form must be the SDK's, byte for byte. The SDK
// stays the reference here, so an SDK upgrade that changes its output fails this test rather than
// leaving credvend's URLs subtly different from what S3 expects.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  bucketShape,
  createUrlSigner,
  presignPostForm,
  presignUrl,
  signingSession,
  type UrlShape,
  type UrlSignerOptions,
} from '../../src/s3/presign.js';

const credentials = {
  accessKeyId: 'ASIACOMPAT0000000001',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjE/compat+token==',
  expiration: new Date('2030-01-01T00:00:00Z'),
};
const AT = new Date('2024-03-04T05:06:07.890Z');

const KEYS = [
  'uploads/alice/a.txt',
  'uploads/alice/dir/sub/report 2024 (final).pdf',
  "uploads/alice/c!'()*~+=&?#%é.txt",
  'uploads/alice/日本語/ファイル.bin',
  'uploads/alice/emoji-😀.png',
  'uploads/alice/trailing/',
  'uploads/alice//double-slash',
  'uploads/alice/semi;colon,comma:colon@at$dollar[brackets]{braces}|pipe^caret`back"quote<lt>gt\\back',
];

const TARGETS: { name: string; opts: UrlSignerOptions; region: string; bucket: string }[] = [
  { name: 'AWS, virtual-hosted', opts: { forcePathStyle: false }, region: 'eu-west-1', bucket: 'tenant-bucket' },
  { name: 'AWS us-east-1', opts: { forcePathStyle: false }, region: 'us-east-1', bucket: 'tenant-bucket' },
  { name: 'AWS China partition', opts: { forcePathStyle: false }, region: 'cn-north-1', bucket: 'tenant-bucket' },
  {
    name: 'AWS, a dotted bucket (path style)',
    opts: { forcePathStyle: false },
    region: 'eu-central-1',
    bucket: 'tenant.bucket.example',
  },
  { name: 'AWS, forced path style', opts: { forcePathStyle: true }, region: 'eu-west-1', bucket: 'tenant-bucket' },
  {
    name: 'RGW endpoint with a port',
    opts: { endpoint: 'http://127.0.0.1:7480', forcePathStyle: true },
    region: 'us-east-1',
    bucket: 'vend-bucket',
  },
  {
    name: 'endpoint with a path prefix',
    opts: { endpoint: 'https://s3.example.internal/storage', forcePathStyle: true },
    region: 'default',
    bucket: 'vend-bucket',
  },
];

function sdkClient(opts: UrlSignerOptions, region: string): S3Client {
  return new S3Client({
    region,
    credentials,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function shapeOf(t: (typeof TARGETS)[number]): Promise<UrlShape> {
  const shape = await bucketShape(t.opts, t.bucket, t.region);
  expect(shape.url, 'the direct signer is used for this bucket').toBeDefined();
  return shape.url!;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('presigned URLs: the direct signer equals getSignedUrl', () => {
  for (const t of TARGETS) {
    it(`${t.name}: PUT and GET, every key, several lifetimes`, async () => {
      // Prepare
      const client = sdkClient(t.opts, t.region);
      const shape = await shapeOf(t);
      const session = signingSession(credentials);
      for (const key of KEYS) {
        for (const expiresIn of [60, 900, 1800]) {
          // Act
          const sdkPut = await getSignedUrl(client, new PutObjectCommand({ Bucket: t.bucket, Key: key }), {
            expiresIn,
            signingDate: AT,
          });
          const sdkGet = await getSignedUrl(client, new GetObjectCommand({ Bucket: t.bucket, Key: key }), {
            expiresIn,
            signingDate: AT,
          });
          // Assess
          expect(presignUrl(shape, session, 'PUT', key, expiresIn, AT)).toBe(sdkPut);
          expect(presignUrl(shape, session, 'GET', key, expiresIn, AT)).toBe(sdkGet);
        }
      }
    });
  }

  it('any key (property): the same URL as the SDK', async () => {
    const t = TARGETS[0]!;
    const client = sdkClient(t.opts, t.region);
    const shape = await shapeOf(t);
    const session = signingSession(credentials);
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 604_800 }),
        fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }),
        async (rel, expiresIn, at) => {
          const key = `uploads/alice/${rel}`;
          const sdk = await getSignedUrl(client, new PutObjectCommand({ Bucket: t.bucket, Key: key }), {
            expiresIn,
            signingDate: at,
          });
          expect(presignUrl(shape, session, 'PUT', key, expiresIn, at)).toBe(sdk);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('the signing key is derived once per day: a URL signed the next day uses the new day key', async () => {
    const t = TARGETS[0]!;
    const client = sdkClient(t.opts, t.region);
    const shape = await shapeOf(t);
    const session = signingSession(credentials);
    for (const at of [
      new Date('2024-03-04T23:59:59Z'),
      new Date('2024-03-05T00:00:00Z'),
      new Date('2024-03-04T12:00:00Z'),
    ]) {
      const sdk = await getSignedUrl(client, new GetObjectCommand({ Bucket: t.bucket, Key: KEYS[0]! }), {
        expiresIn: 600,
        signingDate: at,
      });
      expect(presignUrl(shape, session, 'GET', KEYS[0]!, 600, at)).toBe(sdk);
    }
  });

  it('refuses a lifetime SigV4 does not allow', async () => {
    const shape = await shapeOf(TARGETS[0]!);
    expect(() => presignUrl(shape, signingSession(credentials), 'PUT', 'k', 604_801, AT)).toThrow(RangeError);
    expect(() => presignUrl(shape, signingSession(credentials), 'PUT', 'k', 0, AT)).toThrow(RangeError);
  });
});

describe('presigned POST forms: the direct signer equals createPresignedPost', () => {
  for (const t of TARGETS) {
    it(`${t.name}: url, fields in order, policy and signature`, async () => {
      // Prepare: createPresignedPost takes its date from the clock only.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(AT);
      const client = sdkClient(t.opts, t.region);
      const shape = await bucketShape(t.opts, t.bucket, t.region);
      expect(shape.postUrl).toBeDefined();
      const session = signingSession(credentials);
      for (const key of KEYS) {
        for (const [expiresIn, maxBytes] of [
          [60, 1],
          [900, 1_048_576],
          [1800, 5_368_709_120],
        ] as const) {
          // Act
          const sdk = await createPresignedPost(client, {
            Bucket: t.bucket,
            Key: key,
            Conditions: [['content-length-range', 0, maxBytes]],
            Expires: expiresIn,
          });
          const mine = presignPostForm(shape.postUrl!, t.region, session, t.bucket, key, expiresIn, maxBytes, AT);
          // Assess: same URL, same fields in the same order (a form sends them in order)
          expect(mine.url).toBe(sdk.url);
          expect(Object.entries(mine.fields)).toEqual(Object.entries(sdk.fields));
        }
      }
    });
  }

  it('refuses a key ending in ${filename} (the SDK would widen it to starts-with)', () => {
    expect(() =>
      presignPostForm(
        'https://b.s3.eu-west-1.amazonaws.com/',
        'eu-west-1',
        signingSession(credentials),
        'b',
        'uploads/alice/${filename}',
        60,
        1,
        AT,
      ),
    ).toThrow(/filename/);
  });
});

describe('createUrlSigner', () => {
  it("signs with the session's credentials at the given date, as the SDK would", async () => {
    const t = TARGETS[5]!;
    const signer = createUrlSigner(t.opts).forSession(credentials, t.region);
    const client = sdkClient(t.opts, t.region);
    const key = KEYS[2]!;
    expect(await signer.putUrl(t.bucket, key, 900, AT)).toBe(
      await getSignedUrl(client, new PutObjectCommand({ Bucket: t.bucket, Key: key }), {
        expiresIn: 900,
        signingDate: AT,
      }),
    );
    expect(await signer.getUrl(t.bucket, key, 900, AT)).toBe(
      await getSignedUrl(client, new GetObjectCommand({ Bucket: t.bucket, Key: key }), {
        expiresIn: 900,
        signingDate: AT,
      }),
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(AT);
    const form = await signer.postForm(t.bucket, key, 900, 1024, AT);
    const sdk = await createPresignedPost(client, {
      Bucket: t.bucket,
      Key: key,
      Conditions: [['content-length-range', 0, 1024]],
      Expires: 900,
    });
    expect(form).toEqual({ url: sdk.url, fields: sdk.fields });
  });
});
