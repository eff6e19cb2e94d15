// loadConfig(env, readFile) -> frozen Config, or a ConfigError listing EVERY problem with its
// path, so an operator fixes a bad deployment in one round trip rather than one error per restart.
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { parseRoleArn, type Partition } from '../arn.js';
import { envSchema, fileSchema, type EnvConfig, type IssuerConfig, type ProfileConfig } from './schema.js';

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
  const file = fileData === undefined ? undefined : fileSchema.safeParse(fileData);
  if (file && !file.success) problems.push(...issuesOf(file.error, ''));

  const profiles = new Map<string, Profile>();
  if (file?.success) {
    const s3Compatible = env.success ? env.data.CREDVEND_S3_COMPATIBLE : false;
    for (const [name, p] of Object.entries(file.data.profiles)) {
      // AWS mode is strict (12-digit account); S3-compatible servers such as Ceph RGW issue
      // role ARNs without an account id, accepted only when that mode is explicitly on.
      const role = parseRoleArn(p.roleArn, { allowMissingAccount: s3Compatible });
      if (!role.ok) {
        problems.push(`profiles.${name}.roleArn: ${role.error}`);
        continue;
      }
      for (const t of [p.prefix, p.sourceIdentity ?? '', ...Object.values(p.sessionTags)]) {
        const bad = templateProblem(t);
        if (bad) problems.push(`profiles.${name}: template "${t}": ${bad}`);
      }
      const { kmsKeyId, ...rest } = p;
      profiles.set(name, Object.freeze({ ...rest, ...(kmsKeyId ? { kmsKeyId } : {}), name, partition: role.value.partition }));
    }
  }
  if (problems.length > 0 || !env.success || !file?.success) {
    if (!path && env.success) problems.push('env.CREDVEND_CONFIG_FILE: required');
    throw new ConfigError(problems);
  }
  return Object.freeze({ env: Object.freeze(env.data), issuers: Object.freeze(file.data.issuers), profiles });
}

/** Templates use {claim} or {a.b}; unbalanced braces would leak literally into a prefix. */
function templateProblem(t: string): string | undefined {
  const stripped = t.replace(/\{[A-Za-z0-9_.:-]+\}/g, '');
  return /[{}]/.test(stripped) ? 'placeholders must look like {claim_name}' : undefined;
}

export function withProfiles(config: Config, profiles: Iterable<Profile>): Config {
  return Object.freeze({ ...config, profiles: new Map([...profiles].map((p) => [p.name, Object.freeze(p)])) });
}
