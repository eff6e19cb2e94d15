// Request schemas (zod), shared by the routes and the OpenAPI document.
import { z } from 'zod';
import { MAX_KEYS_PER_REQUEST } from '../policy/keys.js';
import {
  MAX_DURATION_SECONDS,
  MAX_PRESIGNED_URL_SECONDS,
  MIN_DURATION_SECONDS,
  MIN_PRESIGNED_URL_SECONDS,
} from '../policy/session.js';
import { OPERATIONS } from '../policy/session-policy.js';

export const profileName = z.string().min(1).max(64);
export const operation = z.enum(OPERATIONS);
// Keys are validated in full by the policy core; here only shape and bounds, so a huge body is
// refused before any work.
export const objectKey = z.string().max(2048);

export const credentialsBody = z
  .object({
    profile: profileName,
    operation,
    keys: z.array(objectKey).min(1).max(MAX_KEYS_PER_REQUEST).optional(),
    prefix: objectKey.optional(),
    durationSeconds: z.number().int().min(MIN_DURATION_SECONDS).max(MAX_DURATION_SECONDS).optional(),
  })
  .strict()
  .refine((b) => (b.keys === undefined) !== (b.prefix === undefined), {
    message: 'give exactly one of keys or prefix',
  });

export const credentialsQuery = z.object({ format: z.enum(['json', 'process', 'env']).default('json') });

export const containerParams = z.object({ profile: profileName });
export const containerQuery = z
  .object({
    operation,
    key: z.union([objectKey, z.array(objectKey).min(1).max(MAX_KEYS_PER_REQUEST)]).optional(),
    prefix: objectKey.optional(),
    durationSeconds: z.coerce.number().int().min(MIN_DURATION_SECONDS).max(MAX_DURATION_SECONDS).optional(),
  })
  .strict()
  .refine((q) => (q.key === undefined) !== (q.prefix === undefined), { message: 'give exactly one of key or prefix' });

// Response schemas: for the OpenAPI document. Responses are serialized with JSON.stringify, not
// re-validated (see app.ts), so these cost nothing per request.
export const problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('stable CV_* code'),
    requestId: z.string(),
  })
  .describe('RFC 9457 problem details (application/problem+json)');

export const credentialsResponse = z
  .object({
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
    sessionToken: z.string(),
    expiration: z.string().describe('ISO 8601'),
    region: z.string(),
    bucket: z.string(),
    keys: z.array(z.string()).optional().describe('full object keys (profile prefix applied)'),
    prefix: z.string().optional().describe('full granted prefix, for prefix grants'),
    operation,
    profile: z.string(),
    requestId: z.string(),
  })
  .describe(
    'format=json (default). format=process answers credential_process v1 JSON; format=env answers text/plain export lines.',
  );

export const processResponse = z
  .object({
    Version: z.literal(1),
    AccessKeyId: z.string(),
    SecretAccessKey: z.string(),
    SessionToken: z.string(),
    Expiration: z.string(),
  })
  .describe('format=process: AWS credential_process v1');

export const credentialsAnyFormat = z.union([
  credentialsResponse,
  processResponse,
  z.string().describe("format=env: text/plain `export NAME='value'` lines"),
]);

export const containerCredentialsResponse = z.object({
  AccessKeyId: z.string(),
  SecretAccessKey: z.string(),
  Token: z.string(),
  Expiration: z.string(),
});

export const profilesResponse = z.object({
  subject: z.string(),
  issuer: z.string(),
  profiles: z.array(
    z.object({
      name: z.string(),
      description: z.string().nullable(),
      bucket: z.string(),
      region: z.string(),
      prefix: z.string().nullable().describe('the prefix this token would get; null when a claim it needs is missing'),
      operations: z.array(operation),
      maxKeys: z.number().int(),
      allowPrefixGrants: z.boolean(),
      defaultDurationSeconds: z.number().int(),
      maxDurationSeconds: z.number().int(),
      kms: z.boolean(),
    }),
  ),
});

export const errorResponses = {
  400: problem,
  401: problem,
  403: problem,
  404: problem,
  422: problem,
  429: problem,
  502: problem,
  503: problem,
  504: problem,
};

// Presigned mode (POST /v1/presigned): its own route, so each route has one answer shape and a
// credentials client can never receive URLs (or the reverse) by a profile changing its delivery.
export const presignedBody = z
  .object({
    profile: profileName,
    operation,
    keys: z.array(objectKey).min(1).max(MAX_KEYS_PER_REQUEST),
    expiresSeconds: z
      .number()
      .int()
      .min(MIN_PRESIGNED_URL_SECONDS)
      .max(MAX_DURATION_SECONDS)
      .optional()
      .describe(
        `wanted URL lifetime; clamped to the profile maximum, ${MAX_PRESIGNED_URL_SECONDS} s, and the signing session`,
      ),
  })
  .strict();

const presignedObject = z.union([
  z.object({
    key: z.string().describe('full object key (profile prefix applied)'),
    method: z.enum(['PUT', 'GET']),
    url: z.string().describe('send the request to this URL as it is'),
  }),
  z
    .object({
      key: z.string(),
      method: z.literal('POST'),
      url: z.string(),
      fields: z
        .record(z.string(), z.string())
        .describe('multipart/form-data fields to send, as they are, before the `file` field'),
      maxObjectBytes: z.number().int().describe('the signed policy refuses a larger file'),
    })
    .describe('uploads of a profile with maxObjectBytes: a presigned POST form (a PUT URL cannot be size-capped)'),
]);

export const presignedResponse = z.object({
  profile: z.string(),
  operation,
  bucket: z.string(),
  region: z.string(),
  expiresInSeconds: z.number().int(),
  expiration: z.string().describe('ISO 8601: when every URL and form stops working'),
  objects: z.array(presignedObject),
  requestId: z.string(),
});
