// Object keys and claim values as they enter an IAM policy.
//
// Threat model: the caller controls the requested keys and (through its identity provider) some
// claim values. Neither may widen the grant: IAM wildcards are escaped, path tricks are refused,
// and claim values are encoded injectively so two tenants can never share a prefix.
import { PolicyError } from './errors.js';

/** Keys one request may name, whatever a profile's maxKeys says (the API and the profiles file). */
export const MAX_KEYS_PER_REQUEST = 1000;

export const MAX_KEY_BYTES = 1024;

/**
 * IAM treats `*` and `?` in a Resource as wildcards and `${...}` as a policy variable. The
 * documented escapes `${*}`, `${?}` and `${$}` make them literal, so a key can never widen the
 * grant (e.g. key `*` would otherwise grant the whole prefix).
 */
export function escapeIamWildcards(key: string): string {
  let out = '';
  for (const ch of key) {
    out += ch === '*' || ch === '?' || ch === '$' ? `\${${ch}}` : ch;
  }
  return out;
}

export function hasIamSpecialChars(key: string): boolean {
  return /[*?$]/.test(key);
}

/** C0, DEL and C1 controls: invisible in logs and consoles, used to spoof audit records and log lines. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// Lone surrogates cannot be encoded as UTF-8 (String#isWellFormed is false for them); S3 would
// store something other than what we granted.

/**
 * The path rules of an object key or a key prefix, every broken one in order (empty: none).
 * `kind` says whether it names an object or a prefix (which must end with '/', so `team` cannot
 * also match `teammate/...`). Shared with the configuration, whose prefix templates obey them too.
 */
export function keyPathProblems(key: string, kind: 'key' | 'prefix'): string[] {
  const problems: string[] = [];
  if (kind === 'key' && key.length === 0) problems.push('must not be empty');
  if (kind === 'prefix' && key !== '' && !key.endsWith('/')) problems.push("must end with '/'");
  if (CONTROL_CHARS.test(key)) problems.push('must not contain control characters');
  if (!key.isWellFormed()) problems.push('must be valid Unicode');
  if (key.startsWith('/')) problems.push("must not start with '/'");
  if (key.includes('//')) problems.push("must not contain '//'");
  const segments = key.split('/');
  if (kind === 'prefix') segments.pop(); // the trailing '' after the final '/'
  if (segments.some((s) => s === '.' || s === '..')) problems.push("must not contain '.' or '..' segments");
  return problems;
}

/** Validates a key relative to the profile prefix: the first broken path rule, then the length. */
export function validateRelativeKey(key: string, kind: 'key' | 'prefix', fullPrefix: string): void {
  const what = kind === 'key' ? 'key' : 'prefix';
  const fail = (msg: string): never => {
    throw new PolicyError('invalid_key', `${what} ${JSON.stringify(key.slice(0, 64))}: ${msg}`);
  };
  const [problem] = keyPathProblems(key, kind);
  if (problem !== undefined) fail(problem);
  if (Buffer.byteLength(fullPrefix + key, 'utf8') > MAX_KEY_BYTES) {
    fail(`with the profile prefix it exceeds ${MAX_KEY_BYTES} UTF-8 bytes`);
  }
}

// Characters a claim value may keep as-is inside a key prefix. Everything else, including '/',
// '*', '?', '$', ':' (refused by some S3-compatible servers) and '~' (our escape character), is
// written as ~XX per UTF-8 byte. The encoding is injective: distinct claim values always give
// distinct prefixes, so tenant "a/b" can never land in tenant "a_b"'s space.
const SAFE_CLAIM_CHAR = /[A-Za-z0-9_.=@+-]/;
const ALL_SAFE = /^[A-Za-z0-9_.=@+-]*$/;

export function encodeClaimSegment(value: string): string {
  // A lone surrogate has no UTF-8 form: Buffer writes U+FFFD for it, so "\ud800" and "\ufffd"
  // would share a prefix. Refused, which keeps the encoding injective.
  if (!value.isWellFormed())
    throw new PolicyError('claim_invalid', 'a claim used in the key prefix is not valid Unicode');
  // A value of '.' or containing '..' would form a path segment S3 clients normalise away.
  const encodeDots = value === '.' || value.includes('..');
  if (!encodeDots && ALL_SAFE.test(value)) return value; // the common case: nothing to encode
  let out = '';
  for (const ch of value) {
    if (SAFE_CLAIM_CHAR.test(ch) && !(encodeDots && ch === '.')) {
      out += ch;
    } else {
      for (const b of Buffer.from(ch, 'utf8')) out += `~${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}
