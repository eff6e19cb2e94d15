// Presigned mode (opt-in per profile, `delivery: presigned`; docs/design.md §7): instead of credentials,
// URLs for exactly the requested keys (PUT to upload, GET to download; a POST form with a
// content-length-range where the profile sets maxObjectBytes), signed locally with a cached
// signing session. One sts:AssumeRole per (issuer + subject, profile, operation, and everything
// else sent to STS: grantKey), reused until it has less than the URL lifetime + a margin left,
// so steady-state issuance makes no STS call: what lets a deployment scale past STS's fixed
// per-account request rate.
//
// Threat: a caller reaching another key. Authorization and the key rules run for every token and
// request (checkRequest, exactly as for credentials; memoised per verified caller, plan-memo.ts);
// the session's policy grants the subject's whole profile prefix, but the session never leaves
// the process, and each URL pins its key (SigV4 signs the path; a POST policy has an exact `key`
// condition).
// Threat: the session's secret leaking. It is kept in memory only (never in an answer, a log
// line or an audit record: those name its accessKeyId), bounded per profile and dropped on
// close. A URL carries the session token (X-Amz-Security-Token) by design, never the secret.
// Threat: an oversized upload. Only a POST policy's content-length-range is enforced by S3, so
// with maxObjectBytes uploads get POST forms only, never a PUT URL (which cannot be capped).
import type { DecisionFacts } from './audit/decision.js';
import type { Config, Profile } from './config/load.js';
import type { Metrics } from './metrics/metrics.js';
import { isoTimeCache } from './iso-time.js';
import { PolicyError } from './policy/errors.js';
import { checkRequest, planPresignSession } from './policy/plan.js';
import { createPlanMemo } from './policy/plan-memo.js';
import type { Caller } from './policy/caller.js';
import type { Operation } from './policy/session-policy.js';
import { clampUrlSeconds, PRESIGN_MARGIN_SECONDS, roleSessionName } from './policy/session.js';
import { widensPostPolicy, type SessionSigner, type UrlSigner } from './s3/presign.js';
import { StsError, type Sts, type IssuedCredentials } from './sts/sts.js';
import { createGrantReuse, grantKey } from './sts/reuse.js';
import { beginDecision, issuedFacts, meteredAssumeRole, named, planFacts, type Planned } from './vend.js';

export interface PresignRequest {
  readonly operation: Operation;
  readonly keys: readonly string[];
  /** Wanted URL lifetime; clamped (clampUrlSeconds) and cut to the session's remaining life. */
  readonly expiresSeconds?: number | undefined;
}

export type PresignedObject =
  | { readonly key: string; readonly method: 'PUT' | 'GET'; readonly url: string }
  | {
      readonly key: string;
      readonly method: 'POST';
      readonly url: string;
      readonly fields: Readonly<Record<string, string>>;
      readonly maxObjectBytes: number;
    };

export interface Presigned {
  readonly profile: string;
  readonly operation: Operation;
  readonly bucket: string;
  readonly region: string;
  readonly expiresInSeconds: number;
  /** When every URL expires, in ISO 8601, as the audit record has it (formatted once). */
  readonly expiration: string;
  readonly objects: readonly PresignedObject[];
}

export interface PresignedVendor {
  /** Fills `facts` as it goes (a failure leaves what was known); throws domain errors. */
  presign(
    caller: Caller,
    profileName: string,
    req: PresignRequest,
    requestId: string,
    facts: DecisionFacts,
  ): Promise<Presigned>;
  /** Drops every signing session (shutdown). */
  close(): void;
}

type PresignKeys = Pick<PresignRequest, 'operation' | 'keys'>;

/** A request's checked keys, and its signing session's plan, audit fields and grant key. */
interface PlannedKeys extends Planned {
  readonly keys: readonly string[];
}

export interface PresignedVendorDeps {
  readonly config: Config;
  readonly sts: Sts;
  readonly signer: UrlSigner;
  readonly metrics: Metrics;
  readonly now: () => number;
}

// Every URL signed in the same second expires at the same instant: formatted once.
const expirationIso = isoTimeCache();

export function createPresignedVendor({ config, sts, signer, metrics, now }: PresignedVendorDeps): PresignedVendor {
  // Single flight, failures never stored, LRU per profile, cleared on close: the grant-reuse cache.
  const sessions = createGrantReuse({ now });
  // A session's signer lives exactly as long as its credentials object is held.
  const signers = new WeakMap<IssuedCredentials, SessionSigner>();
  const opts = { wildcardKeys: config.env.CREDVEND_WILDCARD_KEYS, delivery: 'presigned' as const };
  const maxEntries = config.env.CREDVEND_PRESIGN_MAX_SESSIONS;

  const callSts = meteredAssumeRole(sts, metrics, now);
  // Checked once per caller and request, then memoised (src/policy/plan-memo.ts): the target
  // keys, the signing session's plan, its grant key and audit fields.
  const memo = createPlanMemo<PlannedKeys>();
  const planned = (profile: Profile, caller: Caller, req: PresignKeys, requestId: string): PlannedKeys => {
    const { base, target } = checkRequest(profile, caller, req, opts);
    const keys = 'keys' in target ? target.keys : [];
    if (req.operation === 'upload' && profile.maxObjectBytes !== undefined && keys.some(widensPostPolicy)) {
      throw new PolicyError('invalid_key', "a key ending in '${filename}' cannot be pinned by a POST policy");
    }
    const plan = planPresignSession(profile, caller, req.operation, base, requestId);
    return { keys, plan, key: grantKey(caller, plan), facts: planFacts(plan) };
  };

  return {
    async presign(caller, profileName, req, requestId, facts) {
      facts.delivery = 'presigned';
      const profile = beginDecision(facts, config, caller, profileName, req);
      const keyReq = { operation: req.operation, keys: req.keys };
      const p = memo.get(caller, profile, keyReq, () => planned(profile, caller, keyReq, requestId));
      const { keys } = p;
      const maxBytes = req.operation === 'upload' ? profile.maxObjectBytes : undefined;
      const wanted = clampUrlSeconds(req.expiresSeconds, profile);
      // The session's name is that of the request whose call creates it (memoised plan or not).
      const name = roleSessionName(caller, requestId);
      let got;
      try {
        got = await sessions.obtain(
          {
            profile: profile.name,
            settings: { minRemainingSeconds: wanted + PRESIGN_MARGIN_SECONDS, maxEntries },
            key: p.key,
            origin: { requestId, roleSessionName: name },
            signal: facts.signal,
          },
          () => callSts(named(p, name).plan, facts.signal),
        );
      } catch (err) {
        facts.plan = named(p, name).facts;
        if (err instanceof StsError) facts.upstreamCode = err.code;
        throw err;
      }
      metrics.presignSessions.inc({ outcome: got.reused ? 'cached' : 'new' });
      const c = got.credentials;
      facts.plan = named(p, got.origin.roleSessionName).facts;
      facts.issued = issuedFacts(c);

      // A URL must die before its session (SigV4 would refuse it then anyway, with a less clear
      // error). A reused session has at least wanted + margin left; only a fresh session that STS
      // gave less than that can cut the URL shorter.
      // Whole seconds: X-Amz-Date has no finer unit, so `expiration` below is exactly the URLs'.
      const signedAt = Math.floor(now() / 1000) * 1000;
      const expiresIn = Math.min(
        wanted,
        Math.floor((c.expiration.getTime() - signedAt) / 1000) - PRESIGN_MARGIN_SECONDS,
      );
      if (expiresIn < 1) throw new Error('the signing session STS returned expires too soon to sign with');
      let sign = signers.get(c);
      if (!sign) {
        sign = signer.forSession(c, profile.region);
        signers.set(c, sign);
      }
      const s = sign;
      // Every URL is signed at signedAt (X-Amz-Date), so each expires exactly at `expiration`.
      const at = new Date(signedAt);
      const objects = await Promise.all(
        keys.map(async (key): Promise<PresignedObject> => {
          if (req.operation === 'download')
            return { key, method: 'GET', url: await s.getUrl(profile.bucket, key, expiresIn, at) };
          if (maxBytes === undefined)
            return { key, method: 'PUT', url: await s.putUrl(profile.bucket, key, expiresIn, at) };
          const form = await s.postForm(profile.bucket, key, expiresIn, maxBytes, at);
          return { key, method: 'POST', url: form.url, fields: form.fields, maxObjectBytes: maxBytes };
        }),
      );
      const expiration = expirationIso(signedAt + expiresIn * 1000);
      facts.presigned = {
        urls: objects.map((o) => ({ key: o.key, method: o.method, expiration })),
        ...(maxBytes !== undefined ? { maxObjectBytes: maxBytes } : {}),
        sessionReused: got.reused,
        sessionRequestId: got.origin.requestId,
      };
      return {
        profile: profile.name,
        operation: req.operation,
        bucket: profile.bucket,
        region: profile.region,
        expiresInSeconds: expiresIn,
        expiration,
        objects,
      };
    },
    close: () => sessions.clear(),
  };
}
