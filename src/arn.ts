/**
 * ARN parsing and validation.
 *
 * Pure module: no I/O, no dependencies. Every ARN that ends up in an
 * AssumeRole call or a session policy goes through here first. A misparsed
 * ARN is a security problem, not a cosmetic one: a policy ARN accepted in a
 * role slot, or a role ARN whose "name" smuggles in `:policy/...`, could
 * make us assume the wrong role or drop a session policy and silently hand
 * out the role's full permissions. So the parsers are strict and reject
 * anything they do not positively recognise.
 *
 * ARNs are split into parts (`arn:partition:service:region:account:resource`)
 * and each part is checked on its own; there is deliberately no single
 * "ARN regex". Error strings are short and human; callers prefix them with
 * the profile/field they came from.
 */

export type Partition = 'aws' | 'aws-cn' | 'aws-us-gov';

export interface Arn {
  readonly partition: Partition;
  readonly service: string;
  readonly region: string;
  readonly account: string;
  readonly resource: string;
}

export type ArnResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface RoleArn extends Arn {
  /** IAM path, always starting and ending with '/' (just '/' when absent). */
  readonly path: string;
  readonly name: string;
}

export interface PolicyArn extends Arn {
  /** IAM path, always starting and ending with '/' (just '/' when absent). */
  readonly path: string;
  readonly name: string;
  /** True for `arn:<partition>:iam::aws:policy/...` (AWS-managed policies). */
  readonly awsManaged: boolean;
}

export interface KmsKeyArn extends Arn {
  readonly kind: 'key' | 'alias';
  /** Key id (`key/<id>`) or alias name without the `alias/` prefix. */
  readonly id: string;
}

const PARTITIONS: readonly Partition[] = ['aws', 'aws-cn', 'aws-us-gov'];

/** IAM caps ARNs at 2048 characters; nothing legitimate we handle is longer. */
const MAX_ARN_LENGTH = 2048;
const MAX_IAM_PATH_LENGTH = 512;
const MAX_ROLE_NAME_LENGTH = 64;
const MAX_POLICY_NAME_LENGTH = 128;
const MAX_KMS_ALIAS_LENGTH = 256;

/** IAM resource types, used only to produce a helpful "got an IAM x ARN" error. */
const IAM_RESOURCE_TYPES: ReadonlySet<string> = new Set([
  'role',
  'policy',
  'user',
  'group',
  'instance-profile',
  'oidc-provider',
  'saml-provider',
  'server-certificate',
  'mfa',
  'root',
]);

function ok<T>(value: T): ArnResult<T> {
  return { ok: true, value };
}

function fail<T>(error: string): ArnResult<T> {
  return { ok: false, error };
}

// ---- character classes (plain functions, no regex) --------------------------

function isLowerAlnum(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

function isAlnum(c: string): boolean {
  return isLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/** `[\w+=,.@-]`: the character set IAM allows in role/policy names. */
function isIamNameChar(c: string): boolean {
  return isAlnum(c) || '_+=,.@-'.includes(c);
}

function isWhitespaceOrControl(c: string): boolean {
  const code = c.charCodeAt(0);
  return code <= 0x20 || code === 0x7f || (code >= 0x80 && code <= 0x9f) || c.trim() === '';
}

function allChars(s: string, pred: (c: string) => boolean): boolean {
  for (const c of s) {
    if (!pred(c)) return false;
  }
  return true;
}

function firstBadChar(s: string, pred: (c: string) => boolean): string | undefined {
  for (const c of s) {
    if (!pred(c)) return c;
  }
  return undefined;
}

function isPartition(s: string): s is Partition {
  return (PARTITIONS as readonly string[]).includes(s);
}

function isTwelveDigits(s: string): boolean {
  return s.length === 12 && allChars(s, isDigit);
}

// ---- generic ARN --------------------------------------------------------------

/**
 * Split `arn:partition:service:region:account:resource`. The resource is
 * everything after the fifth ':' and may itself contain ':'.
 */
export function parseArn(text: string): ArnResult<Arn> {
  if (typeof text !== 'string') return fail('ARN must be a string');
  if (text.length === 0) return fail('ARN is empty');
  if (text.length > MAX_ARN_LENGTH) return fail(`ARN is longer than ${MAX_ARN_LENGTH} characters`);
  // Whitespace is never valid in an ARN; a trailing space from a config file
  // must be an error, not something we trim and guess about.
  for (const c of text) {
    if (isWhitespaceOrControl(c)) return fail('ARN must not contain whitespace or control characters');
  }

  const parts = text.split(':');
  const [prefix, partition, service, region, account, ...rest] = parts;
  if (prefix !== 'arn') {
    return prefix !== undefined && prefix.toLowerCase() === 'arn'
      ? fail("ARN must start with lowercase 'arn:'")
      : fail("not an ARN (must start with 'arn:')");
  }
  if (
    partition === undefined ||
    service === undefined ||
    region === undefined ||
    account === undefined ||
    rest.length === 0
  ) {
    return fail('ARN must have the form arn:partition:service:region:account:resource');
  }
  if (!isPartition(partition)) {
    return fail(`unknown partition '${partition}' (expected ${PARTITIONS.join(', ')})`);
  }
  if (service.length === 0) return fail('service is empty');
  if (!allChars(service, (c) => isLowerAlnum(c) || c === '-')) {
    return fail(`service '${service}' must be lowercase letters, digits and hyphens`);
  }
  if (!allChars(region, (c) => isLowerAlnum(c) || c === '-')) {
    return fail(`region '${region}' must be lowercase letters, digits and hyphens`);
  }
  if (!allChars(account, isAlnum)) {
    return fail(`account '${account}' must be letters and digits`);
  }
  const resource = rest.join(':');
  if (resource.length === 0) return fail('resource is empty');

  return ok({ partition, service, region, account, resource });
}

// ---- helpers shared by the IAM parsers ------------------------------------------

/** Describe what kind of ARN we actually got, for "expected X, got Y" errors. */
function describe(arn: Arn): string {
  switch (arn.service) {
    case 'iam': {
      const type = resourceType(arn.resource);
      return type !== undefined && IAM_RESOURCE_TYPES.has(type) ? `an IAM ${type} ARN` : 'an IAM ARN';
    }
    case 's3':
      return 'an S3 ARN';
    case 'kms':
      return 'a KMS ARN';
    case 'sts':
      return 'an STS ARN';
    default:
      return `an ARN for service '${arn.service}'`;
  }
}

function resourceType(resource: string): string | undefined {
  const slash = resource.indexOf('/');
  return slash === -1 ? undefined : resource.slice(0, slash);
}

/**
 * The ARN when it is an IAM ARN of resource type `type` (`role/...`, `policy/...`) without a
 * region; account, path and name are left to the caller.
 */
function parseIamArn(text: string, type: 'role' | 'policy'): ArnResult<Arn> {
  const parsed = parseArn(text);
  if (!parsed.ok) return parsed;
  const arn = parsed.value;

  const actual = resourceType(arn.resource);
  if (arn.service !== 'iam' || actual !== type) {
    if (arn.service === 'iam' && (actual === undefined || !IAM_RESOURCE_TYPES.has(actual))) {
      return fail(`resource must be ${type}/<path><name>`);
    }
    return fail(`expected an IAM ${type} ARN, got ${describe(arn)}`);
  }
  if (arn.region !== '') return fail('IAM ARNs must not have a region');
  return parsed;
}

/**
 * Split the part after `role/` or `policy/` into IAM path and name and
 * validate both. The path is everything up to and including the last '/'.
 */
function splitIamPathAndName(
  rest: string,
  maxNameLength: number,
): { ok: true; path: string; name: string } | { ok: false; error: string } {
  const lastSlash = rest.lastIndexOf('/');
  const path = lastSlash === -1 ? '/' : `/${rest.slice(0, lastSlash + 1)}`;
  const name = rest.slice(lastSlash + 1);

  if (path.length > MAX_IAM_PATH_LENGTH) {
    return { ok: false, error: `path is longer than ${MAX_IAM_PATH_LENGTH} characters` };
  }
  if (path !== '/') {
    for (const segment of path.slice(1, -1).split('/')) {
      if (segment.length === 0) return { ok: false, error: "path must not contain empty segments ('//')" };
      const bad = firstBadChar(segment, isIamNameChar);
      if (bad !== undefined) return { ok: false, error: `path contains invalid character '${bad}'` };
    }
  }

  if (name.length === 0) return { ok: false, error: 'name is empty' };
  if (name.length > maxNameLength) {
    return { ok: false, error: `name is longer than ${maxNameLength} characters` };
  }
  const bad = firstBadChar(name, isIamNameChar);
  if (bad !== undefined) return { ok: false, error: `name contains invalid character '${bad}'` };

  return { ok: true, path, name };
}

// ---- IAM role ---------------------------------------------------------------------

/**
 * `arn:<partition>:iam::<12 digits>:role/<path><name>`.
 *
 * `allowMissingAccount` accepts `arn:aws:iam:::role/NAME`, which S3-compatible
 * servers (e.g. Ceph RGW) use; it is off by default because a real AWS role
 * ARN always carries the account.
 */
export function parseRoleArn(text: string, opts?: { allowMissingAccount?: boolean }): ArnResult<RoleArn> {
  const parsed = parseIamArn(text, 'role');
  if (!parsed.ok) return parsed;
  const arn = parsed.value;

  if (arn.account === '') {
    if (opts?.allowMissingAccount !== true) return fail('account is missing (must be 12 digits)');
  } else if (!isTwelveDigits(arn.account)) {
    return fail('account must be 12 digits');
  }

  const split = splitIamPathAndName(arn.resource.slice('role/'.length), MAX_ROLE_NAME_LENGTH);
  if (!split.ok) return fail(`role ${split.error}`);

  return ok({ ...arn, path: split.path, name: split.name });
}

// ---- IAM managed policy ------------------------------------------------------------

/**
 * `arn:<partition>:iam::<12 digits | aws>:policy/<path><name>`.
 * Account `aws` marks an AWS-managed policy.
 */
export function parseManagedPolicyArn(text: string): ArnResult<PolicyArn> {
  const parsed = parseIamArn(text, 'policy');
  if (!parsed.ok) return parsed;
  const arn = parsed.value;

  const awsManaged = arn.account === 'aws';
  if (!awsManaged && !isTwelveDigits(arn.account)) {
    return fail("account must be 12 digits or 'aws'");
  }

  const split = splitIamPathAndName(arn.resource.slice('policy/'.length), MAX_POLICY_NAME_LENGTH);
  if (!split.ok) return fail(`policy ${split.error}`);

  return ok({ ...arn, path: split.path, name: split.name, awsManaged });
}

// ---- KMS ------------------------------------------------------------------------------

/** `arn:<partition>:kms:<region>:<12 digits>:key/<id>` or `...:alias/<name>`. */
export function parseKmsArn(text: string): ArnResult<KmsKeyArn> {
  const parsed = parseArn(text);
  if (!parsed.ok) return parsed;
  const arn = parsed.value;

  if (arn.service !== 'kms') return fail(`expected a KMS ARN, got ${describe(arn)}`);
  if (arn.region === '') return fail('KMS ARNs must have a region');
  if (!isTwelveDigits(arn.account)) return fail('account must be 12 digits');

  const type = resourceType(arn.resource);
  const id = type === undefined ? '' : arn.resource.slice(type.length + 1);
  if (type === 'key') {
    if (id.length === 0) return fail('key id is empty');
    const bad = firstBadChar(id, (c) => isAlnum(c) || c === '-');
    if (bad !== undefined) return fail(`key id contains invalid character '${bad}'`);
    return ok({ ...arn, kind: 'key', id });
  }
  if (type === 'alias') {
    // Alias names may contain '/' (e.g. alias/aws/s3) but not empty segments.
    if (id.length === 0) return fail('alias name is empty');
    if (id.length > MAX_KMS_ALIAS_LENGTH) return fail(`alias name is longer than ${MAX_KMS_ALIAS_LENGTH} characters`);
    if (id.split('/').some((segment) => segment.length === 0)) {
      return fail("alias name must not contain empty segments ('//')");
    }
    const bad = firstBadChar(id, (c) => isAlnum(c) || c === '/' || c === '_' || c === '-');
    if (bad !== undefined) return fail(`alias name contains invalid character '${bad}'`);
    return ok({ ...arn, kind: 'alias', id });
  }
  return fail('resource must be key/<id> or alias/<name>');
}

// ---- S3 builders -----------------------------------------------------------------------

/** `arn:<partition>:s3:::<bucket>/<key>`. No escaping: callers own the key. */
export function s3ObjectArn(partition: Partition, bucket: string, key: string): string {
  return `arn:${partition}:s3:::${bucket}/${key}`;
}

/** `arn:<partition>:s3:::<bucket>`. */
export function s3BucketArn(partition: Partition, bucket: string): string {
  return `arn:${partition}:s3:::${bucket}`;
}
