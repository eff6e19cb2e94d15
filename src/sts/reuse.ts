// Grant reuse (opt-in per profile, docs/design.md §7): a grant identical to one issued earlier, asked for
// while those credentials still have at least `minRemainingSeconds` left, gets the same
// credentials instead of another sts:AssumeRole; identical requests in flight together share one
// call (single flight). STS's per-account request rate is fixed, so this is what lets a
// deployment scale past it. Callers that reuse still go through authorization and key validation
// (once per token and request: the plan is memoised per verified caller, src/policy/plan-memo.ts);
// only the STS call is shared.
//
// Threat: one caller handed a session minted for another grant. The key is who asked (issuer +
// subject) plus every AssumeRole input except the RoleSessionName: profile, operation, role, the
// inline policy (bucket, the exact key list in its order, or the prefix, KMS), managed policies,
// session tags, transitive tag keys, SourceIdentity, ExternalId and the clamped duration. Any
// difference is another key, so a reuse never grants more, to anyone else, or for longer than the
// fresh call the caller would otherwise have got.
// Threat: a failure (throttling, a shed request, AccessDenied) handed to later callers, or a
// stale error pinning a grant shut: failures are never stored; only the waiters of the failed
// flight see it.
// The cache holds secrets: it is never logged, bounded per profile (LRU), and cleared on close.
import { sha256 } from '../digest.js';
import type { IssuancePlan } from '../policy/plan.js';
import type { IssuedCredentials } from './sts.js';

export interface ReuseSettings {
  /** Credentials with less time left than this are not handed out again. */
  readonly minRemainingSeconds: number;
  /** Grants kept for the profile; the least recently used goes first. */
  readonly maxEntries: number;
}

/** The session credentials were issued for: what the audit record of a reuse names. */
export interface GrantOrigin {
  readonly requestId: string;
  readonly roleSessionName: string;
}

export interface Obtained {
  readonly credentials: IssuedCredentials;
  readonly origin: GrantOrigin;
  /** False for the one request whose STS call minted the credentials. */
  readonly reused: boolean;
}

export interface ObtainRequest {
  readonly profile: string;
  readonly settings: ReuseSettings;
  /** grantKey(caller, plan) */
  readonly key: string;
  /** This request, should its call be the one that reaches STS. */
  readonly origin: GrantOrigin;
  /** A waiter stops waiting when it aborts (the flight itself belongs to its first request). */
  readonly signal?: AbortSignal | undefined;
}

export interface GrantReuse {
  /** Credentials held for `key`, those of an identical call in flight, or `issue()`'s. */
  obtain(req: ObtainRequest, issue: () => Promise<IssuedCredentials>): Promise<Obtained>;
  /** Drops every held grant; calls in flight at that moment store nothing. */
  clear(): void;
  /** Grants held (for one profile, or all). */
  size(profile?: string): number;
}

/**
 * The identity of a grant: who asked and everything sent to STS except the RoleSessionName
 * (which carries the request id). Hashed: the key is short, whatever the policy's length.
 * Key order counts (the policy lists keys in the order asked): a reordered list is another
 * policy, so it costs one more STS call, and the reuse record's policySha256 is always that of
 * the session actually in use.
 */
export function grantKey(caller: { readonly issuer: string; readonly subject: string }, plan: IssuancePlan): string {
  const identity = [
    caller.issuer,
    caller.subject,
    plan.profile,
    plan.operation,
    plan.roleArn,
    plan.durationSeconds,
    plan.policy.json,
    plan.policyArns,
    plan.tags.map((t) => [t.Key, t.Value]),
    plan.transitiveTagKeys,
    plan.sourceIdentity,
    plan.externalId ?? null,
  ];
  return sha256(JSON.stringify(identity), 'base64url');
}

interface Held {
  readonly credentials: IssuedCredentials;
  readonly origin: GrantOrigin;
}

export function createGrantReuse({ now }: { readonly now: () => number }): GrantReuse {
  // Per profile, so one busy profile cannot evict another's grants. A Map iterates in insertion
  // order: re-inserting on use makes its first key the least recently used.
  const held = new Map<string, Map<string, Held>>();
  const flights = new Map<string, Promise<Held>>();
  let generation = 0;

  const lookup = (profile: string, key: string, minRemainingMs: number): Held | undefined => {
    const lru = held.get(profile);
    const entry = lru?.get(key);
    if (!lru || !entry) return undefined;
    lru.delete(key);
    if (entry.credentials.expiration.getTime() - now() < minRemainingMs) return undefined;
    lru.set(key, entry);
    return entry;
  };

  const store = (profile: string, key: string, entry: Held, settings: ReuseSettings): void => {
    if (entry.credentials.expiration.getTime() - now() < settings.minRemainingSeconds * 1000) return;
    let lru = held.get(profile);
    if (!lru) held.set(profile, (lru = new Map<string, Held>()));
    lru.delete(key);
    lru.set(key, entry);
    for (const oldest of lru.keys()) {
      if (lru.size <= settings.maxEntries) break;
      lru.delete(oldest);
    }
  };

  return {
    async obtain(req, issue) {
      const minRemainingMs = req.settings.minRemainingSeconds * 1000;
      const found = lookup(req.profile, req.key, minRemainingMs);
      if (found) return obtained(found, true);

      const flightKey = `${req.profile}\n${req.key}`;
      const flight = flights.get(flightKey);
      if (flight) return obtained(await abortable(flight, req.signal), true);

      const started = generation;
      const mine = (async (): Promise<Held> => {
        try {
          const entry: Held = { credentials: await issue(), origin: req.origin };
          if (started === generation) store(req.profile, req.key, entry, req.settings);
          return entry;
        } finally {
          flights.delete(flightKey);
        }
      })();
      flights.set(flightKey, mine);
      return obtained(await mine, false);
    },
    clear() {
      generation += 1;
      held.clear();
    },
    size(profile) {
      if (profile !== undefined) return held.get(profile)?.size ?? 0;
      let n = 0;
      for (const lru of held.values()) n += lru.size;
      return n;
    },
  };
}

// A literal of one shape: `{ ...held, reused }` took V8's slow object-copy path (a new hidden-class
// transition per call), which cost as much as the rest of a reuse's lookup.
const obtained = (held: Held, reused: boolean): Obtained => ({
  credentials: held.credentials,
  origin: held.origin,
  reused,
});

/** `p`, or the signal's reason once it aborts first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
