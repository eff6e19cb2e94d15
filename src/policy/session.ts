// RoleSessionName and DurationSeconds: both derived from verified facts, never from the body.
import { sha256 } from '../digest.js';
import type { Caller } from './caller.js';

/** AssumeRole with the service's own role credentials is role chaining: STS caps it at 1 hour. */
export const ROLE_CHAINING_MAX_SECONDS = 3600;
/** STS's own bounds for DurationSeconds; the one home of these numbers (config, request schemas). */
export const MIN_DURATION_SECONDS = 900;
export const MAX_DURATION_SECONDS = 43_200;

/** The characters STS allows in a RoleSessionName and a SourceIdentity: `[\w+=,.@-]`. */
export const STS_NAME_CHARS = String.raw`\w+=,.@-`;
const STS_UNSAFE = new RegExp(`[^${STS_NAME_CHARS}]`, 'g');

/** Replaces every character outside STS_NAME_CHARS with '-'. */
export function stsSafe(value: string): string {
  return value.replace(STS_UNSAFE, '-');
}

/**
 * `<subject>.<issuer+subject hash>.<request id>`, at most 64 characters. The readable part lets a
 * CloudTrail reader see who it was; the hash keeps two subjects that sanitise alike (or the same
 * `sub` from two issuers) apart; the request id joins the session to our audit record.
 * Built only from the verified caller's issuer and subject, so no caller can impersonate another in
 * CloudTrail.
 */
export function roleSessionName(caller: Caller, requestId: string): string {
  const hash = subjectHash(caller);
  const rid = stsSafe(requestId).slice(0, 12);
  const readable = stsSafe(caller.subject).slice(0, 64 - hash.length - rid.length - 2) || 'x';
  return `${readable}.${hash}.${rid}`;
}

// Per Caller object: authenticate hands out one frozen Caller per verified token, so a token
// presented again does not hash its issuer and subject again.
const subjectHashes = new WeakMap<Caller, string>();
function subjectHash(caller: Caller): string {
  let hash = subjectHashes.get(caller);
  if (hash === undefined) {
    hash = sha256(`${caller.issuer}\n${caller.subject}`).slice(0, 8);
    if (Object.isFrozen(caller)) subjectHashes.set(caller, hash); // a mutable one could change
  }
  return hash;
}

/** The default SourceIdentity: the subject made STS-safe, 2-64 characters. */
export function defaultSourceIdentity(caller: Caller): string {
  const s = stsSafe(caller.subject).slice(0, 64);
  return s.length >= 2 && !s.toLowerCase().startsWith('aws:') ? s : `id-${s}`.slice(0, 64);
}

/** Requested (or default) duration clamped to the profile maximum and the role-chaining cap. */
export function clampDuration(
  requested: number | undefined,
  profile: { defaultDurationSeconds: number; maxDurationSeconds: number },
): number {
  return clampSeconds(requested, profile, MIN_DURATION_SECONDS, ROLE_CHAINING_MAX_SECONDS);
}

/** `requested` (or the profile's default), at most the profile's maximum and `cap`, at least `min`. */
function clampSeconds(
  requested: number | undefined,
  profile: { defaultDurationSeconds: number; maxDurationSeconds: number },
  min: number,
  cap: number,
): number {
  const wanted = requested ?? profile.defaultDurationSeconds;
  return Math.max(min, Math.min(wanted, profile.maxDurationSeconds, cap));
}

// Presigned mode. The signing session never leaves the process; the URLs signed with it do, and
// each is a bearer token for one key until it expires (and dies with its session at the latest:
// SigV4 checks the session token it carries).
/** The signing session lives as long as role chaining allows. */
export const PRESIGN_SESSION_SECONDS = ROLE_CHAINING_MAX_SECONDS;
/** A URL lives at most half a session, so a session signs for at least half its life. */
export const MAX_PRESIGNED_URL_SECONDS = PRESIGN_SESSION_SECONDS / 2;
export const MIN_PRESIGNED_URL_SECONDS = 60;
/** A URL expires at least this long before its session: clock skew between us and S3. */
export const PRESIGN_MARGIN_SECONDS = 60;

/** Requested (or the profile's default) URL lifetime, clamped to the profile maximum and the URL bound. */
export function clampUrlSeconds(
  requested: number | undefined,
  profile: { defaultDurationSeconds: number; maxDurationSeconds: number },
): number {
  return clampSeconds(requested, profile, MIN_PRESIGNED_URL_SECONDS, MAX_PRESIGNED_URL_SECONDS);
}
