// Plans memoised per verified caller, on the paths that make no STS call per request (grant
// reuse, presigned mode), where planning (authorization, key rules, the session policy and its
// digests) was the largest part of a request's own work.
//
// Why it is sound: a plan is a pure function of the profile, the caller and the request fields
// below (src/policy/plan.ts), and each is immutable while memoised: profiles are frozen at
// start-up, and authenticate hands out one frozen Caller, with deep-frozen claims, for every
// presentation of one verified token. The token's times (exp, nbf) and its signature's key set
// are checked on every request, before anything here runs.
// Threat: a caller served a plan made for another (another prefix, another grant). The first
// level is the Caller object itself (a WeakMap: no two tokens share one, and its plans die with
// the token's cache entry); the second is the profile object and every request field planning
// reads. A caller that is not frozen is never memoised.
// Threat: a refusal skipped. Only plans are stored, never errors: a refused request is checked
// again every time, and a plan is stored only once every check has passed.
// Bounded, against an authenticated caller growing the process with ever new requests: only
// requests whose key is at most MAX_KEY_CHARS long are memoised (a few keys; larger ones are
// planned every time), MAX_PLANS_PER_CALLER per token (the oldest goes first), for the 1,000
// tokens the verified-token cache holds (src/auth/authenticate.ts): a few thousand plans of a
// few KB at worst.
import type { Profile } from '../config/load.js';
import type { Caller } from './caller.js';
import type { CredentialRequest } from './plan.js';

export const MAX_PLANS_PER_CALLER = 4;
export const MAX_KEY_CHARS = 2048;

/** What planning reads of a request (the presigned route has no prefix or duration). */
export type PlanInput = Pick<CredentialRequest, 'operation' | 'keys' | 'prefix' | 'durationSeconds'>;

export interface PlanMemo<T> {
  /** The value `make` returned for this caller, profile and request, or `make()`'s (stored if it returns). */
  get(caller: Caller, profile: Profile, req: PlanInput, make: () => T): T;
}

export function createPlanMemo<T>(): PlanMemo<T> {
  type Plans = Map<string, { readonly profile: Profile; readonly value: T }>;
  const byCaller = new WeakMap<Caller, Plans>();
  return {
    get(caller, profile, req, make) {
      if (!Object.isFrozen(caller) || !Object.isFrozen(caller.claims)) return make();
      // JSON of an array: no two different requests give the same key, whatever their keys hold.
      const key = JSON.stringify([
        profile.name,
        req.operation,
        req.keys ?? null,
        req.prefix ?? null,
        req.durationSeconds ?? null,
      ]);
      if (key.length > MAX_KEY_CHARS) return make();
      let plans = byCaller.get(caller);
      const hit = plans?.get(key);
      if (hit && hit.profile === profile) return hit.value;
      const value = make(); // throws for a refused request: nothing is stored
      if (!plans) byCaller.set(caller, (plans = new Map() as Plans));
      plans.delete(key);
      plans.set(key, { profile, value });
      if (plans.size > MAX_PLANS_PER_CALLER) plans.delete(plans.keys().next().value as string);
      return value;
    },
  };
}
