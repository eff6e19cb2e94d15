// Zod schemas for the profiles file and the environment. The only place configuration is
// validated: everything downstream receives a frozen, typed Config.
import { z } from 'zod';
import { parseKmsArn, parseManagedPolicyArn, parseRoleArn } from '../arn.js';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_SOCKETS } from '../limits.js';
import { asList } from '../one-or-many.js';
import { hasIamSpecialChars, keyPathProblems, MAX_KEYS_PER_REQUEST } from '../policy/keys.js';
import { OPERATIONS } from '../policy/session-policy.js';
import {
  clampDuration,
  MAX_DURATION_SECONDS,
  MIN_DURATION_SECONDS,
  ROLE_CHAINING_MAX_SECONDS,
} from '../policy/session.js';
import { PLACEHOLDER, templateClaims } from '../policy/templates.js';

const durationSeconds = z.number().int().min(MIN_DURATION_SECONDS).max(MAX_DURATION_SECONDS);
const nonEmpty = z.string().min(1);

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A YAML/JSON mapping, validated key by key into a Map. z.record skips a `__proto__` key without a
 * word (JSON.parse and yaml keep it as an own key), so a profile or a claim condition named so
 * would vanish, and a vanished claim condition widens who matches. Here every own key is
 * validated, and the result never sits on an object prototype. `max` is checked first, alone:
 * 40,000 invalid entries must cost one problem, not 160,000.
 */
function mapping<K extends z.ZodType<string, string>, V extends z.ZodType>(
  key: K,
  value: V,
  max: number,
  what: string,
) {
  return z
    .custom<Record<string, unknown>>(isMapping, `expected a mapping of ${what}`)
    .refine((o) => Object.keys(o).length <= max, `at most ${max} ${what}`)
    .transform((o) => new Map(Object.entries(o)))
    .pipe(z.map(key, value));
}

/** A mapping read into a plain object; `__proto__` is refused, never silently dropped. */
function record<V extends z.ZodType>(key: z.ZodType<string, string>, value: V, max: number, what: string) {
  const ownKey = key.refine((k) => k !== '__proto__', '__proto__ is not allowed as a name');
  return mapping(ownKey, value, max, what).transform((m) => Object.fromEntries(m));
}

/** One value or a non-empty list of them (read as a list with asList, src/one-or-many.ts). */
const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);

/** A claim condition: exact string, or a glob with `*` (any run of characters). */
const claimCondition = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const matchSchema = z
  .object({
    iss: oneOrMany(nonEmpty).optional(),
    aud: oneOrMany(nonEmpty).optional(),
    claims: record(nonEmpty, oneOrMany(claimCondition), 100, 'claim conditions').default({}),
  })
  .strict();

// A placeholder names a claim path: dot-separated names, none empty. `{..}` or `{a.}` name no
// claim and only look like path tricks in the template.
const CLAIM_PATH = /^[^.]+(?:\.[^.]+)*$/;

// Templates reference claims as {name} or {nested.name} (the PLACEHOLDER pattern of the filling
// code, so both read a template alike); validated again when filled. Unbalanced braces would
// otherwise leak literally into a prefix or a tag.
const template = z
  .string()
  .max(1024)
  .superRefine((t, ctx) => {
    if (/[{}]/.test(t.replace(PLACEHOLDER, ''))) {
      ctx.addIssue({ code: 'custom', message: `template "${t}": placeholders must look like {claim_name}` });
    }
    for (const name of templateClaims(t)) {
      if (!CLAIM_PATH.test(name)) {
        ctx.addIssue({
          code: 'custom',
          message: `template "${t}": {${name}} is not a claim name (dot-separated names of [A-Za-z0-9_:-])`,
        });
      }
    }
  });

// The static text of a prefix reaches the IAM policy and the returned keys just as a requested
// key does, so it obeys the request-key rules (policy/keys.ts): a `..` segment names another
// tenant's objects for any client that normalises paths, and `*` `?` `$` are IAM wildcards and
// policy variables (`${aws:username}`); escaped they become `${*}`, which Ceph RGW reads as a
// wildcard. A placeholder stands for its encoded claim value: never empty, never '/', '.' or '..'
// (encodeClaimSegment), so an 'x' in its place checks the text exactly.
const prefixTemplate = template.superRefine((p, ctx) => {
  if (p === '') return;
  if (!p.endsWith('/')) ctx.addIssue({ code: 'custom', message: "must be empty or end with '/'" });
  const staticText = p.replace(PLACEHOLDER, 'x');
  for (const problem of keyPathProblems(staticText, 'key')) ctx.addIssue({ code: 'custom', message: problem });
  if (hasIamSpecialChars(staticText)) {
    ctx.addIssue({
      code: 'custom',
      message: "must not contain '*', '?' or '$' outside placeholders (IAM wildcards and ${...} policy variables)",
    });
  }
  // Two placeholders in one segment are ambiguous: {a}{b} gives "xyz" for a="x",b="yz" and for
  // a="xy",b="z", so two tenants would share a prefix. One placeholder per segment is injective.
  if (!p.split('/').every((seg) => (seg.match(/\{[^}]*\}/g) ?? []).length <= 1)) {
    ctx.addIssue({ code: 'custom', message: 'at most one {claim} placeholder per path segment' });
  }
});

/** Mode switches that change what a valid profile is. */
export interface SchemaOptions {
  /**
   * S3-compatible STS servers (Ceph RGW) issue role ARNs without an account id; AWS never does,
   * so AWS mode stays strict and a typo cannot point a profile at an unexpected role.
   */
  readonly s3Compatible: boolean;
}

// ARN checks sit on the fields themselves, not in the object's superRefine: zod skips an object
// refinement once any field has a type error, and every problem must be reported in one pass.
const roleArnFor = (opts: SchemaOptions) =>
  nonEmpty.superRefine((v, ctx) => {
    const r = parseRoleArn(v, { allowMissingAccount: opts.s3Compatible });
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
  });

// A managed policy ARN that does not parse must stop start-up: STS would reject it, or a role ARN
// in its place would be a sign of a config mix-up that could hand out the wrong permissions.
const managedPolicyArn = nonEmpty.superRefine((v, ctx) => {
  const r = parseManagedPolicyArn(v);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
});

const KMS_KEY_ID = /^(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
const KMS_ALIAS = /^alias\/[A-Za-z0-9/_-]{1,250}$/;

/** A key ARN, an alias ARN, `alias/<name>` or a bare key id; resolved to a key ARN at start-up. */
const kmsKeyId = nonEmpty.superRefine((v, ctx) => {
  if (v.startsWith('arn:')) {
    const r = parseKmsArn(v);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
  } else if (v.startsWith('alias/')) {
    if (
      !KMS_ALIAS.test(v) ||
      v
        .slice('alias/'.length)
        .split('/')
        .some((s) => s === '')
    ) {
      ctx.addIssue({ code: 'custom', message: 'alias must be alias/<name> with [A-Za-z0-9/_-] and no empty segments' });
    }
  } else if (!KMS_KEY_ID.test(v)) {
    ctx.addIssue({ code: 'custom', message: 'must be a KMS key ARN, an alias ARN, alias/<name> or a key id' });
  }
});

export const profileSchemaFor = (opts: SchemaOptions) =>
  z
    .object({
      description: z.string().optional(),
      roleArn: roleArnFor(opts),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name'),
      region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1'),
      // Must be empty or end with '/': without the slash, tenant "alice" + key "2/x" would reach
      // tenant "alice2"'s objects.
      prefix: prefixTemplate.default(''),
      operations: z
        .array(z.enum(OPERATIONS))
        .min(1)
        .default([...OPERATIONS]),
      maxKeys: z.number().int().min(1).max(MAX_KEYS_PER_REQUEST).default(10),
      allowPrefixGrants: z.boolean().default(false),
      versionedReads: z.boolean().default(false),
      defaultDurationSeconds: durationSeconds.default(MIN_DURATION_SECONDS),
      maxDurationSeconds: durationSeconds.default(ROLE_CHAINING_MAX_SECONDS),
      kmsKeyId: kmsKeyId.optional(),
      bucketKeyEnabled: z.boolean().default(false),
      // A refinement, not .max(10): zod drops the per-element ARN problems once .max() fails.
      sessionPolicyArns: z
        .array(managedPolicyArn)
        .refine((a) => a.length <= 10, {
          message: 'at most 10 managed session policy ARNs',
          when: (ctx) => Array.isArray(ctx.value),
        })
        .default([]),
      sessionTags: record(z.string().min(1).max(128), template, 50, 'session tags').default({}),
      transitiveTagKeys: z.array(z.string().min(1).max(128)).default([]),
      sourceIdentity: template.optional(),
      externalId: z
        .string()
        .regex(/^[\w+=,.@:/-]{2,1224}$/, 'must be 2-1224 chars of [\\w+=,.@:/-]')
        .optional(),
      // Presigned mode (src/presigned.ts): URLs for exactly the requested keys, signed from a cached
      // session, instead of credentials. maxObjectBytes caps uploads through a POST policy's
      // content-length-range: the only size cap S3 enforces (IAM has no condition for it).
      delivery: z.enum(['credentials', 'presigned']).default('credentials'),
      maxObjectBytes: z
        .number()
        .int()
        .positive()
        .max(5 * 1024 ** 3)
        .optional(),
      // Grant reuse (src/sts/reuse.ts): off unless set. At least a minute left on a reused
      // credential; the cache bounded per profile (each entry holds a ~1 KiB session token).
      reuse: z
        .object({
          minRemainingSeconds: z.number().int().min(60).max(3000).default(300),
          maxEntries: z.number().int().min(1).max(100_000).default(1000),
        })
        .strict()
        .optional(),
      match: matchSchema,
    })
    .strict()
    // Cross-field checks run even when a field has problems (zod skips them otherwise, hiding these
    // until the next restart), so each one checks the types it relies on.
    .superRefine(
      (p, ctx) => {
        if (
          typeof p.defaultDurationSeconds === 'number' &&
          typeof p.maxDurationSeconds === 'number' &&
          p.defaultDurationSeconds > p.maxDurationSeconds
        ) {
          ctx.addIssue({
            code: 'custom',
            path: ['defaultDurationSeconds'],
            message: 'must not exceed maxDurationSeconds',
          });
        }
        // A size cap that credentials would silently ignore is refused rather than trusted.
        if (p.maxObjectBytes !== undefined && p.delivery !== 'presigned') {
          ctx.addIssue({
            code: 'custom',
            path: ['maxObjectBytes'],
            message: "needs delivery: presigned (credentials cannot cap an upload's size)",
          });
        }
        if (p.reuse !== undefined && p.delivery === 'presigned') {
          ctx.addIssue({
            code: 'custom',
            path: ['reuse'],
            message: 'applies to delivery: credentials (presigned mode always reuses its signing session)',
          });
        }
        // Fresh credentials have exactly the duration left: a margin at or above it would never reuse.
        const reuse: unknown = p.reuse;
        if (
          isMapping(reuse) &&
          typeof reuse.minRemainingSeconds === 'number' &&
          typeof p.defaultDurationSeconds === 'number' &&
          typeof p.maxDurationSeconds === 'number'
        ) {
          const duration = clampDuration(undefined, p);
          if (reuse.minRemainingSeconds >= duration) {
            ctx.addIssue({
              code: 'custom',
              path: ['reuse', 'minRemainingSeconds'],
              message: `must be below the profile's default duration (${duration} s)`,
            });
          }
        }
        const tags: unknown = p.sessionTags;
        const tagKeys =
          tags !== null && typeof tags === 'object' && !Array.isArray(tags) ? Object.keys(tags) : undefined;
        if (tagKeys && Array.isArray(p.transitiveTagKeys)) {
          for (const k of p.transitiveTagKeys) {
            if (!tagKeys.includes(k)) {
              ctx.addIssue({
                code: 'custom',
                path: ['transitiveTagKeys'],
                message: `"${k}" is not a key of sessionTags`,
              });
            }
          }
        }
        if (tagKeys && tagKeys.length > 50) {
          ctx.addIssue({ code: 'custom', path: ['sessionTags'], message: 'at most 50 session tags' });
        }
      },
      { when: (ctx) => ctx.value !== null && typeof ctx.value === 'object' && !Array.isArray(ctx.value) },
    );

export const profileSchema = profileSchemaFor({ s3Compatible: false });

const algorithm = z.enum([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'HS256',
  'HS384',
  'HS512',
]);

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
    /** Longest accepted `exp - now`: a leaked token with `exp` in year 9999 is refused. */
    maxTokenLifetimeSeconds: z.number().int().min(60).max(604_800).default(86_400),
    /** JWKS refetch interval: a key the issuer removed is refused within this time. */
    jwksRefreshSeconds: z.number().int().min(10).max(86_400).default(300),
    /** How long the last good JWKS serves while the issuer is unreachable; then its tokens are refused. */
    jwksMaxStaleSeconds: z.number().int().min(60).max(604_800).default(3600),
  })
  .strict()
  .superRefine((iss, ctx) => {
    const sources = [iss.jwksUri, iss.discovery ? true : undefined, iss.publicKey, iss.hmacSecret].filter(
      (s) => s !== undefined,
    );
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'set exactly one of jwksUri, discovery, publicKey, hmacSecret',
      });
    }
    const hs = (iss.algorithms ?? []).filter((a) => a.startsWith('HS'));
    // Algorithm confusion: an issuer verified with public keys must never accept HMAC tokens
    // (an attacker would sign with the public key as the HMAC secret).
    if (iss.hmacSecret === undefined && hs.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'HS* algorithms are only allowed with hmacSecret',
      });
    }
    if (iss.hmacSecret !== undefined && (iss.algorithms ?? []).some((a) => !a.startsWith('HS'))) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'an hmacSecret issuer accepts HS* algorithms only',
      });
    }
    if (iss.jwksMaxStaleSeconds < iss.jwksRefreshSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['jwksMaxStaleSeconds'],
        message: 'must be at least jwksRefreshSeconds (a healthy key set would expire between refreshes)',
      });
    }
  });

/** Bounds on the file, so a runaway or hostile file costs one problem, not minutes and gigabytes. */
export const MAX_PROFILES = 1000;
export const MAX_ISSUERS = 50;

// Profile names appear in URLs, metrics labels, audit records and log lines: plain identifiers,
// none that names a property of every JavaScript object.
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
const PROFILE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const profileNameSchema = z.string().superRefine((n, ctx) => {
  if (!PROFILE_NAME.test(n))
    ctx.addIssue({
      code: 'custom',
      message: 'profile names are 1-64 characters of [A-Za-z0-9_-], starting with a letter',
    });
  else if (RESERVED_NAMES.has(n))
    ctx.addIssue({ code: 'custom', message: 'constructor and prototype are reserved names' });
});

export const fileSchemaFor = (opts: SchemaOptions) =>
  z
    .object({
      // Counted before any entry is validated (the pipe stops there).
      issuers: z
        .array(z.unknown())
        .max(MAX_ISSUERS, `at most ${MAX_ISSUERS} trusted issuers`)
        .pipe(z.array(issuerSchema).min(1)),
      profiles: mapping(profileNameSchema, profileSchemaFor(opts), MAX_PROFILES, 'profiles').refine(
        (p) => p.size > 0,
        'at least one profile',
      ),
    })
    .strict()
    .superRefine(
      (file, ctx) => {
        // One entry per issuer: with two, which keys and audiences verify a token would depend on
        // lookup order, and the entry an operator reads (or edits to drop a compromised key) need not
        // be the one in force. Checked even when other fields have problems (every problem at once).
        const issuers: unknown = file.issuers;
        if (!Array.isArray(issuers)) return;
        const firstAt = new Map<string, number>();
        issuers.forEach((iss: unknown, i) => {
          const url = isMapping(iss) && typeof iss.issuer === 'string' ? iss.issuer : undefined;
          if (url === undefined) return;
          const first = firstAt.get(url);
          if (first === undefined) firstAt.set(url, i);
          else
            ctx.addIssue({
              code: 'custom',
              path: ['issuers', i, 'issuer'],
              message: `${JSON.stringify(url)} is already listed at issuers.${first}: one entry per issuer`,
            });
        });
      },
      { when: (ctx) => isMapping(ctx.value) },
    )
    .superRefine((file, ctx) => {
      // Tenant isolation across identity providers: with several trusted issuers, a profile that
      // accepts more than one of them and builds its prefix from claims would put subject "x" of
      // issuer A and subject "x" of issuer B (which B's owner may mint at will) in the same space.
      if (file.issuers.length < 2) return;
      for (const [name, p] of file.profiles) {
        const iss = asList(p.match.iss) ?? [];
        if (iss.length !== 1 && /\{/.test(p.prefix) && !p.prefix.includes('{iss}')) {
          ctx.addIssue({
            code: 'custom',
            path: ['profiles', name, 'match', 'iss'],
            message:
              'with several trusted issuers, pin this profile to one issuer (or put {iss} in its prefix): otherwise two identity providers can mint the same subject into one prefix',
          });
        }
      }
    });

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65_535);

export const envSchema = z
  .object({
    CREDVEND_CONFIG_FILE: nonEmpty,
    /** Largest profiles file read; checked before reading (a 50 MB YAML file took 1.8 GB to parse). */
    CREDVEND_CONFIG_MAX_BYTES: z.coerce.number().int().min(1024).max(8_388_608).default(1_048_576),
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
    /** Shared budget across replicas (redis:// or rediss://); per-process memory when unset. */
    CREDVEND_RATE_LIMIT_REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
    CREDVEND_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10_485_760).default(65_536),
    CREDVEND_TRUST_PROXY: z.string().default('false'),
    CREDVEND_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
    AWS_REGION: z.string().optional(),
    CREDVEND_STS_REGION: z.string().optional(),
    CREDVEND_STS_ENDPOINT: z.url().optional(),
    /** KMS endpoint for start-up key resolution (LocalStack); the SDK default otherwise. */
    CREDVEND_KMS_ENDPOINT: z.url().optional(),
    CREDVEND_S3_COMPATIBLE: bool.default(false),
    /** S3 endpoint the presigned URLs point at (Ceph RGW, MinIO); AWS's regional endpoint otherwise. */
    CREDVEND_S3_ENDPOINT: z.url().optional(),
    /** Presigned URLs as https://endpoint/bucket/key instead of https://bucket.endpoint/key. */
    CREDVEND_S3_FORCE_PATH_STYLE: bool.default(false),
    /** Signing sessions of presigned mode kept per profile (one per subject and operation); LRU. */
    CREDVEND_PRESIGN_MAX_SESSIONS: z.coerce.number().int().min(1).max(100_000).default(1000),
    CREDVEND_STS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
    CREDVEND_STS_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(1000),
    CREDVEND_STS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
    CREDVEND_ALLOW_IAM_USER_KEYS: bool.default(false),
    /** STS calls in flight at once (also the socket pool size): beyond it requests wait, then are shed. */
    CREDVEND_STS_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(1024).default(DEFAULT_MAX_SOCKETS),
    /** Requests allowed to wait for an STS slot; more are shed at once with 503 CV_OVERLOADED. */
    CREDVEND_STS_MAX_QUEUE: z.coerce.number().int().min(0).max(100_000).default(256),
    /** Longest wait for an STS slot before a 503 CV_OVERLOADED (never counted as an STS timeout). */
    CREDVEND_STS_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(1000),
    /** Largest answer accepted from STS, KMS, a JWKS / discovery document or a credentials endpoint. */
    CREDVEND_UPSTREAM_MAX_RESPONSE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(10_485_760)
      .default(DEFAULT_MAX_RESPONSE_BYTES),
    /** Deadline of one fetch of the service's own credentials (container endpoint, IRSA, IMDS). */
    CREDVEND_BASE_CREDENTIALS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
    /** Deadline of one JWKS or OIDC discovery fetch. */
    CREDVEND_JWKS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
    /** Deadline of one rate-limit Redis command; past it the request is let through (fail open). */
    CREDVEND_REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(10).max(10_000).default(250),
    AWS_ACCESS_KEY_ID: z.string().optional(),
    AWS_ROLE_ARN: z.string().optional(),
    AWS_WEB_IDENTITY_TOKEN_FILE: z.string().optional(),
    AWS_CONTAINER_CREDENTIALS_FULL_URI: z.string().optional(),
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: z.string().optional(),
  })
  .superRefine(
    (env, ctx) => {
      // Static keys win in the SDK default chain, so with a role setting next to them the service
      // would silently run as the long-lived key's identity instead of the task/pod role the
      // operator set up (and believes is in use). Which one was meant is unknowable: refuse both.
      if (!env.AWS_ACCESS_KEY_ID) return;
      const roleSettings = (
        [
          'AWS_ROLE_ARN',
          'AWS_WEB_IDENTITY_TOKEN_FILE',
          'AWS_CONTAINER_CREDENTIALS_FULL_URI',
          'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
        ] as const
      ).filter((k) => Boolean(env[k]));
      if (roleSettings.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['AWS_ACCESS_KEY_ID'],
          message: `static keys and a role setting (${roleSettings.join(', ')}) are both set: keep only one credential source`,
        });
      }
    },
    { when: () => true },
  ); // also when another variable is invalid: every problem in one pass

export type ProfileConfig = z.output<typeof profileSchema>;
export type IssuerConfig = z.output<typeof issuerSchema>;
export type EnvConfig = z.output<typeof envSchema>;
export type MatchConfig = z.output<typeof matchSchema>;
