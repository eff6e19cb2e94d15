// Zod schemas for the profiles file and the environment. The only place configuration is
// validated: everything downstream receives a frozen, typed Config.
import { z } from 'zod';
import { parseManagedPolicyArn } from '../arn.js';

const durationSeconds = z.number().int().min(900).max(43_200);
const nonEmpty = z.string().min(1);

/** A claim condition: exact string, or a glob with `*` (any run of characters). */
const claimCondition = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const matchSchema = z
  .object({
    iss: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional(),
    aud: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional(),
    claims: z.record(nonEmpty, z.union([claimCondition, z.array(claimCondition).min(1)])).default({}),
  })
  .strict();

// Templates reference claims as {name} or {nested.name}; validated again when filled.
const template = z.string().max(1024);

export const profileSchema = z
  .object({
    description: z.string().optional(),
    roleArn: nonEmpty,
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1'),
    // Must be empty or end with '/': without the slash, tenant "alice" + key "2/x" would reach
    // tenant "alice2"'s objects.
    prefix: template.refine((p) => p === '' || p.endsWith('/'), "must be empty or end with '/'")
      .refine((p) => !p.startsWith('/'), "must not start with '/'").default(''),
    operations: z.array(z.enum(['upload', 'download'])).min(1).default(['upload', 'download']),
    maxKeys: z.number().int().min(1).max(1000).default(10),
    allowPrefixGrants: z.boolean().default(false),
    versionedReads: z.boolean().default(false),
    defaultDurationSeconds: durationSeconds.default(900),
    maxDurationSeconds: durationSeconds.default(3600),
    kmsKeyId: nonEmpty.optional(),
    bucketKeyEnabled: z.boolean().default(false),
    sessionPolicyArns: z.array(nonEmpty).max(10, 'at most 10 managed session policy ARNs').default([]),
    sessionTags: z.record(z.string().min(1).max(128), template).default({}),
    transitiveTagKeys: z.array(z.string().min(1).max(128)).default([]),
    sourceIdentity: template.optional(),
    externalId: z.string().regex(/^[\w+=,.@:/-]{2,1224}$/, 'must be 2-1224 chars of [\\w+=,.@:/-]').optional(),
    match: matchSchema,
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.defaultDurationSeconds > p.maxDurationSeconds) {
      ctx.addIssue({ code: 'custom', path: ['defaultDurationSeconds'], message: 'must not exceed maxDurationSeconds' });
    }
    for (const k of p.transitiveTagKeys) {
      if (!(k in p.sessionTags)) {
        ctx.addIssue({ code: 'custom', path: ['transitiveTagKeys'], message: `"${k}" is not a key of sessionTags` });
      }
    }
    if (Object.keys(p.sessionTags).length > 50) {
      ctx.addIssue({ code: 'custom', path: ['sessionTags'], message: 'at most 50 session tags' });
    }
    p.sessionPolicyArns.forEach((arn, i) => {
      const r = parseManagedPolicyArn(arn);
      if (!r.ok) ctx.addIssue({ code: 'custom', path: ['sessionPolicyArns', i], message: r.error });
    });
  });

const algorithm = z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512']);

export const issuerSchema = z
  .object({
    issuer: z.url(),
    audiences: z.array(nonEmpty).min(1),
    jwksUri: z.url().optional(),
    discovery: z.boolean().default(false),
    publicKey: z.string().includes('-----BEGIN PUBLIC KEY-----').optional(),
    hmacSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    algorithms: z.array(algorithm).min(1).optional(),
    /** The claim naming the caller; it becomes the RoleSessionName and SourceIdentity. */
    subjectClaim: nonEmpty.default('sub'),
  })
  .strict()
  .superRefine((iss, ctx) => {
    const sources = [iss.jwksUri, iss.discovery ? true : undefined, iss.publicKey, iss.hmacSecret].filter((s) => s !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of jwksUri, discovery, publicKey, hmacSecret' });
    }
    const hs = (iss.algorithms ?? []).filter((a) => a.startsWith('HS'));
    // Algorithm confusion: an issuer verified with public keys must never accept HMAC tokens
    // (an attacker would sign with the public key as the HMAC secret).
    if (iss.hmacSecret === undefined && hs.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'HS* algorithms are only allowed with hmacSecret' });
    }
    if (iss.hmacSecret !== undefined && (iss.algorithms ?? []).some((a) => !a.startsWith('HS'))) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'an hmacSecret issuer accepts HS* algorithms only' });
    }
  });

export const fileSchema = z
  .object({
    issuers: z.array(issuerSchema).min(1),
    profiles: z.record(z.string().regex(/^[a-zA-Z0-9][\w.-]{0,63}$/, 'profile names are 1-64 chars of [A-Za-z0-9_.-]'), profileSchema)
      .refine((p) => Object.keys(p).length > 0, 'at least one profile'),
  })
  .strict();

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65_535);

export const envSchema = z.object({
  CREDVEND_CONFIG_FILE: nonEmpty,
  CREDVEND_HOST: z.string().default('0.0.0.0'),
  CREDVEND_PORT: port.default(8080),
  CREDVEND_ADMIN_HOST: z.string().default('0.0.0.0'),
  CREDVEND_ADMIN_PORT: port.default(9090),
  CREDVEND_METRICS_ON_API_PORT: bool.default(false),
  CREDVEND_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  CREDVEND_ACCESS_LOG: z.enum(['off', 'info', 'debug']).default('info'),
  CREDVEND_AUDIT_LOG: z.string().default('stdout'),
  CREDVEND_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  CREDVEND_WILDCARD_KEYS: z.enum(['escape', 'reject']).default('escape'),
  CREDVEND_CORS_ORIGINS: z.string().default(''),
  CREDVEND_RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(60),
  CREDVEND_RATE_LIMIT_WINDOW: z.string().default('1 minute'),
  CREDVEND_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10_485_760).default(65_536),
  CREDVEND_TRUST_PROXY: z.string().default('false'),
  CREDVEND_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  AWS_REGION: z.string().optional(),
  CREDVEND_STS_REGION: z.string().optional(),
  CREDVEND_STS_ENDPOINT: z.url().optional(),
  CREDVEND_S3_COMPATIBLE: bool.default(false),
  CREDVEND_STS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
  CREDVEND_STS_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(1000),
  CREDVEND_STS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  CREDVEND_ALLOW_IAM_USER_KEYS: bool.default(false),
  CREDVEND_SKIP_STARTUP_CHECKS: bool.default(false),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  AWS_ROLE_ARN: z.string().optional(),
  AWS_WEB_IDENTITY_TOKEN_FILE: z.string().optional(),
  AWS_CONTAINER_CREDENTIALS_FULL_URI: z.string().optional(),
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: z.string().optional(),
});

export type FileConfig = z.output<typeof fileSchema>;
export type ProfileConfig = z.output<typeof profileSchema>;
export type IssuerConfig = z.output<typeof issuerSchema>;
export type EnvConfig = z.output<typeof envSchema>;
export type MatchConfig = z.output<typeof matchSchema>;
