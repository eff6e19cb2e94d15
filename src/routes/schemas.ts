// Request schemas (zod), shared by the routes and the OpenAPI document.
import { z } from 'zod';

export const profileName = z.string().min(1).max(64);
export const operation = z.enum(['upload', 'download']);
// Keys are validated in full by the policy core; here only shape and bounds, so a huge body is
// refused before any work.
export const objectKey = z.string().max(2048);

export const credentialsBody = z
  .object({
    profile: profileName,
    operation,
    keys: z.array(objectKey).min(1).max(1000).optional(),
    prefix: objectKey.optional(),
    durationSeconds: z.number().int().min(900).max(43_200).optional(),
  })
  .strict()
  .refine((b) => (b.keys === undefined) !== (b.prefix === undefined), { message: 'give exactly one of keys or prefix' });

export const credentialsQuery = z.object({ format: z.enum(['json', 'process', 'env']).default('json') });

export const containerParams = z.object({ profile: profileName });
export const containerQuery = z
  .object({
    operation,
    key: z.union([objectKey, z.array(objectKey).min(1).max(1000)]).optional(),
    prefix: objectKey.optional(),
    durationSeconds: z.coerce.number().int().min(900).max(43_200).optional(),
  })
  .strict()
  .refine((q) => (q.key === undefined) !== (q.prefix === undefined), { message: 'give exactly one of key or prefix' });
