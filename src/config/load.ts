// loadConfig(env, readFile) -> frozen Config, or a ConfigError listing EVERY problem with its
// path, so an operator fixes a bad deployment in one round trip rather than one error per restart.
import { extname } from 'node:path';
import type { z } from 'zod';
import { parseRoleArn, type Partition } from '../arn.js';
import { CONTROL_CHARS } from '../policy/keys.js';
import { ConfigFileTooLargeError, readConfigFile } from './file.js';
import { parseJsonStrict } from './json.js';
import { parseYamlBounded } from './yaml.js';
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

/** Problems shown in the message: the first few are enough to act on, and the rest are counted. */
export const MAX_LISTED_PROBLEMS = 50;
const MAX_PROBLEM_CHARS = 300;
const CONTROL_CHARS_ALL = new RegExp(CONTROL_CHARS.source, 'g');

// One problem, one bounded line: names and values from the file (a profile name can be a
// megabyte long, or hold a newline that fakes another problem line) are shown cut and escaped.
function problemLine(p: string): string {
  const cut = p.length > MAX_PROBLEM_CHARS ? `${p.slice(0, MAX_PROBLEM_CHARS)}…` : p;
  return cut.replace(CONTROL_CHARS_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  - ${problemLine(p)}`);
    if (problems.length > MAX_LISTED_PROBLEMS) listed.push(`  … and ${problems.length - MAX_LISTED_PROBLEMS} more`);
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${listed.join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

// A loop, not push(...spread): spreading 100,000+ problems overflows the call stack.
function addIssues(problems: string[], error: z.ZodError, prefix: string): void {
  for (const i of error.issues)
    problems.push(`${[prefix, ...i.path.map(String)].filter(Boolean).join('.')}: ${i.message}`);
}

export function parseConfigText(text: string, fileName: string): unknown {
  const ext = extname(fileName).toLowerCase();
  return ext === '.json' ? parseJsonStrict(text) : parseYamlBounded(text);
}

/**
 * Values (scalars, lists, mappings) a parsed file may hold before any of it is validated: a
 * thousand generous profiles fit, and the problems zod can find stay far below the ~120,000 at
 * which its issue merging (push(...issues)) overflows the stack.
 */
export const MAX_FILE_VALUES = 50_000;

/** True when `data` holds more than `max` values; iterative, so deep nesting cannot overflow. */
function exceedsValues(data: unknown, max: number): boolean {
  const pending: unknown[] = [data];
  let count = 0;
  while (pending.length > 0) {
    const v = pending.pop();
    if (++count > max) return true;
    if (v !== null && typeof v === 'object') {
      for (const child of Object.values(v)) pending.push(child);
    }
  }
  return false;
}

/**
 * `readFile(path, maxBytes)` must refuse a file over `maxBytes` before reading it (the default,
 * readConfigFile, does); tests pass the text. What it returns is measured again, so a reader that
 * ignores the cap still cannot get more than that parsed.
 */
export function loadConfig(
  rawEnv: Record<string, string | undefined>,
  readFile: (path: string, maxBytes: number) => string = readConfigFile,
): Config {
  const problems: string[] = [];
  const env = envSchema.safeParse(rawEnv);
  if (!env.success) addIssues(problems, env.error, 'env');

  // Read on its own, like the mode below: a bad unrelated variable must not lift the cap (and a bad
  // cap is reported among the env problems while the file is still read with the default).
  const cap = envSchema.shape.CREDVEND_CONFIG_MAX_BYTES.safeParse(rawEnv.CREDVEND_CONFIG_MAX_BYTES);
  const maxBytes = cap.success ? cap.data : envSchema.shape.CREDVEND_CONFIG_MAX_BYTES.parse(undefined);
  let fileData: unknown;
  const path = rawEnv.CREDVEND_CONFIG_FILE;
  if (path) {
    try {
      const text = readFile(path, maxBytes);
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > maxBytes) throw new ConfigFileTooLargeError(bytes, maxBytes);
      const data = parseConfigText(text, path);
      if (exceedsValues(data, MAX_FILE_VALUES))
        problems.push(
          `${path}: holds more than ${MAX_FILE_VALUES} values (fields and list items); nothing in it was validated`,
        );
      else fileData = data;
    } catch (e) {
      if (e instanceof ConfigFileTooLargeError) problems.push(`${path}: ${e.message}`);
      else
        problems.push(
          `${path}: cannot be read or parsed (${e instanceof Error ? e.message.split('\n')[0] : 'unknown error'})`,
        );
    }
  }
  // The mode decides what a valid role ARN is; read it on its own so that an unrelated bad
  // variable does not turn a valid S3-compatible configuration into a pile of spurious errors.
  const mode = envSchema.shape.CREDVEND_S3_COMPATIBLE.safeParse(rawEnv.CREDVEND_S3_COMPATIBLE);
  const s3Compatible = mode.success && mode.data;
  const file = fileData === undefined ? undefined : fileSchemaFor({ s3Compatible }).safeParse(fileData);
  if (file && !file.success) addIssues(problems, file.error, '');

  if (problems.length > 0 || !env.success || !file?.success) {
    if (!path && env.success) problems.push('env.CREDVEND_CONFIG_FILE: required');
    throw new ConfigError(problems);
  }
  const profiles = new Map<string, Profile>();
  for (const [name, p] of file.data.profiles) {
    const role = parseRoleArn(p.roleArn, { allowMissingAccount: s3Compatible });
    if (!role.ok) throw new ConfigError([`profiles.${name}.roleArn: ${role.error}`]); // unreachable: the schema checked it
    const { kmsKeyId, ...rest } = p;
    profiles.set(
      name,
      Object.freeze({ ...rest, ...(kmsKeyId ? { kmsKeyId } : {}), name, partition: role.value.partition }),
    );
  }
  // S3-compatible servers (Ceph RGW) do not implement IAM's ${*} escapes: RGW reads the `*` inside
  // `${*}` as a wildcard, so an escaped key would WIDEN the grant there. Unless the operator says
  // otherwise, such keys are refused in that mode.
  const wildcardKeys =
    rawEnv.CREDVEND_WILDCARD_KEYS === undefined && env.data.CREDVEND_S3_COMPATIBLE
      ? 'reject'
      : env.data.CREDVEND_WILDCARD_KEYS;
  return Object.freeze({
    env: Object.freeze({ ...env.data, CREDVEND_WILDCARD_KEYS: wildcardKeys }),
    issuers: Object.freeze(file.data.issuers),
    profiles,
  });
}

export function withProfiles(config: Config, profiles: Iterable<Profile>): Config {
  return Object.freeze({ ...config, profiles: new Map([...profiles].map((p) => [p.name, Object.freeze(p)])) });
}
