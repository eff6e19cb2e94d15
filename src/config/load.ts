// loadConfig(env, readFile) -> frozen Config, or a ConfigError listing EVERY problem with its
// path, so an operator fixes a bad deployment in one round trip rather than one error per restart.
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { parseRoleArn, type Partition } from '../arn.js';
import { envSchema, fileSchemaFor, type EnvConfig, type IssuerConfig, type ProfileConfig } from './schema.js';

export interface Profile extends Omit<ProfileConfig, 'kmsKeyId'> {
  readonly name: string;
  readonly partition: Partition;
  readonly kmsKeyId?: string;
  /** Set at start-up once DescribeKey resolved kmsKeyId (alias or id) to a key ARN. */
  readonly kmsKeyArn?: string;
}

export interface Config {
  readonly env: EnvConfig;
  readonly issuers: readonly IssuerConfig[];
  readonly profiles: ReadonlyMap<string, Profile>;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function issuesOf(error: z.ZodError, prefix: string): string[] {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.')}: ${i.message}`);
}

export function parseConfigText(text: string, fileName: string): unknown {
  const ext = extname(fileName).toLowerCase();
  return ext === '.json' ? JSON.parse(text) : parseYaml(text);
}

export function loadConfig(rawEnv: Record<string, string | undefined>, readFile: (path: string) => string): Config {
  const problems: string[] = [];
  const env = envSchema.safeParse(rawEnv);
  if (!env.success) problems.push(...issuesOf(env.error, 'env'));

  let fileData: unknown;
  const path = rawEnv.CREDVEND_CONFIG_FILE;
  if (path) {
    try {
      fileData = parseConfigText(readFile(path), path);
    } catch (e) {
      problems.push(`${path}: cannot be read or parsed (${e instanceof Error ? e.message.split('\n')[0] : 'unknown error'})`);
    }
  }
  // The mode decides what a valid role ARN is; read it on its own so that an unrelated bad
  // variable does not turn a valid S3-compatible configuration into a pile of spurious errors.
  const mode = envSchema.shape.CREDVEND_S3_COMPATIBLE.safeParse(rawEnv.CREDVEND_S3_COMPATIBLE);
  const s3Compatible = mode.success && mode.data;
  const file = fileData === undefined ? undefined : fileSchemaFor({ s3Compatible }).safeParse(fileData);
  if (file && !file.success) problems.push(...issuesOf(file.error, ''));

  if (problems.length > 0 || !env.success || !file?.success) {
    if (!path && env.success) problems.push('env.CREDVEND_CONFIG_FILE: required');
    throw new ConfigError(problems);
  }
  const profiles = new Map<string, Profile>();
  for (const [name, p] of Object.entries(file.data.profiles)) {
    const role = parseRoleArn(p.roleArn, { allowMissingAccount: s3Compatible });
    if (!role.ok) throw new ConfigError([`profiles.${name}.roleArn: ${role.error}`]); // unreachable: the schema checked it
    const { kmsKeyId, ...rest } = p;
    profiles.set(name, Object.freeze({ ...rest, ...(kmsKeyId ? { kmsKeyId } : {}), name, partition: role.value.partition }));
  }
  // S3-compatible servers (Ceph RGW) do not implement IAM's ${*} escapes: RGW reads the `*` inside
  // `${*}` as a wildcard, so an escaped key would WIDEN the grant there. Unless the operator says
  // otherwise, such keys are refused in that mode.
  const wildcardKeys = rawEnv.CREDVEND_WILDCARD_KEYS === undefined && env.data.CREDVEND_S3_COMPATIBLE ? 'reject' : env.data.CREDVEND_WILDCARD_KEYS;
  return Object.freeze({ env: Object.freeze({ ...env.data, CREDVEND_WILDCARD_KEYS: wildcardKeys }), issuers: Object.freeze(file.data.issuers), profiles });
}

export function withProfiles(config: Config, profiles: Iterable<Profile>): Config {
  return Object.freeze({ ...config, profiles: new Map([...profiles].map((p) => [p.name, Object.freeze(p)])) });
}
