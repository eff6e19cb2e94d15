// Profile match rules: every rule must hold on the verified claims, and a missing claim never
// matches (fail closed). Runs before any AWS call.
import type { MatchConfig } from '../config/schema.js';
import { PolicyError } from './errors.js';
import { asList } from '../one-or-many.js';
import { scalarClaim, type Caller } from './caller.js';

/** Glob with `*` as "any run of characters"; everything else literal. Anchored at both ends. */
export function globMatch(pattern: string, value: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === value;
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  let pos = first.length;
  const end = value.length - last.length;
  for (const mid of parts.slice(1, -1)) {
    const at = value.indexOf(mid, pos);
    if (at < 0 || at + mid.length > end) return false;
    pos = at + mid.length;
  }
  return true;
}

/** Returns the names of the claims the rules looked at (for the audit record), or throws. */
export function authorize(match: MatchConfig, caller: Caller): string[] {
  const deny = (why: string): never => {
    throw new PolicyError('profile_mismatch', `the token does not match this profile (${why})`);
  };
  const iss = asList(match.iss);
  if (iss && !iss.includes(caller.issuer)) deny('iss');
  const aud = asList(match.aud);
  if (aud && !aud.some((a) => caller.audiences.includes(a))) deny('aud');
  const used: string[] = [];
  for (const [claim, cond] of Object.entries(match.claims)) {
    const value = scalarClaim(caller.claims, claim);
    used.push(claim);
    if (value === undefined) deny(`claim ${claim} missing`);
    const patterns = asList(cond) ?? [];
    if (!patterns.some((p) => globMatch(p, value as string))) deny(`claim ${claim}`);
  }
  return used;
}

export function matches(match: MatchConfig, caller: Caller): boolean {
  try {
    authorize(match, caller);
    return true;
  } catch {
    return false;
  }
}
