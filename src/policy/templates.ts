// Filling profile templates ({claim}) from verified claims. A missing claim always fails closed:
// an empty substitution would turn `uploads/{sub}/` into `uploads//`, another tenant's space.
import { PolicyError } from './errors.js';
import { scalarClaim } from './caller.js';
import { encodeClaimSegment } from './keys.js';
import { STS_NAME_CHARS } from './session.js';

/** A `{claim}` placeholder (global: use with replace/matchAll); the configuration checks templates with it. */
export const PLACEHOLDER = /\{([A-Za-z0-9_.:-]+)\}/g;

/** The claim names a template reads, in order of first use. */
export function templateClaims(template: string): string[] {
  return [...new Set(Array.from(template.matchAll(PLACEHOLDER), (m) => m[1] as string))];
}

function fill(
  template: string,
  claims: Readonly<Record<string, unknown>>,
  encode: (v: string, claim: string) => string,
): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = scalarClaim(claims, name);
    if (v === undefined) throw new PolicyError('claim_missing', `the token has no usable "${name}" claim`);
    return encode(v, name);
  });
}

/** Key prefix: claim values encoded so that they cannot inject '/', '..' or wildcards. */
export function fillPrefix(template: string, claims: Readonly<Record<string, unknown>>): string {
  return fill(template, claims, encodeClaimSegment);
}

// Session tag values and SourceIdentity may end up in role trust/ABAC conditions, so they are
// never altered: a value outside the allowed characters is refused rather than rewritten (a
// rewrite could make two identities look alike).
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const SOURCE_IDENTITY = new RegExp(`^[${STS_NAME_CHARS}]{2,64}$`);

export function fillTag(template: string, claims: Readonly<Record<string, unknown>>): string {
  const value = fill(template, claims, (v, claim) => {
    if (!TAG_VALUE.test(v))
      throw new PolicyError('claim_invalid', `claim "${claim}" has characters not allowed in a session tag`);
    return v;
  });
  if (value.length > 256) throw new PolicyError('claim_invalid', 'a session tag value would exceed 256 characters');
  return value;
}

export function fillSourceIdentity(template: string, claims: Readonly<Record<string, unknown>>): string {
  const value = fill(template, claims, (v) => v);
  if (!SOURCE_IDENTITY.test(value) || value.toLowerCase().startsWith('aws:')) {
    throw new PolicyError('claim_invalid', 'the source identity must be 2-64 characters of [A-Za-z0-9_+=,.@-]');
  }
  return value;
}
