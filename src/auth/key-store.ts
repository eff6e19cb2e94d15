// The signing keys of one JWKS issuer: fetched, refreshed, and forgotten on a bounded schedule.
//
// Threats and the rule that stops each:
// - A hanging or huge JWKS / discovery answer: one deadline (`timeoutMs`) covers discovery and the
//   JWKS fetch together, and bodies are size-capped (fetch-json.ts). A request waits at most that
//   long, and only for its own issuer.
// - A compromised key that the issuer removed: every successful fetch replaces the whole set, so
//   a key absent from it is refused from then on; the set is refetched every `refreshIntervalMs`,
//   so removal takes effect within one interval under any traffic. `generation` changes with the
//   set, and the verified-token cache is keyed by it.
// - An issuer that stays unreachable: the last good set is used for at most `maxStaleMs` after
//   its fetch, then every token of this issuer is refused (never "forever").
// - Junk tokens with random or removed `kid`s: an unknown kid may start a fetch only when no
//   fetch of any kind started within `cooldownMs`, so the identity provider sees at most one
//   on-demand fetch per cooldown plus the scheduled ones. The gate is a point in time, not a
//   timer a flood can re-arm: the first unknown kid after the cooldown always fetches, so a newly
//   published key is usable at most one cooldown after publication.
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { FetchJsonError, type FetchJson, type FetchFailure } from './fetch-json.js';
import { keyFitsAlgorithm, keyWeakness, type VerificationKey } from './jws.js';
import { isJsonObject, type JsonObject } from './strict-json.js';

export interface KeyStoreOptions {
  readonly issuer: string;
  /** The JWKS URL, or undefined to discover it from `<issuer>/.well-known/openid-configuration`. */
  readonly jwksUri: string | undefined;
  readonly refreshIntervalMs: number;
  readonly cooldownMs: number;
  readonly maxStaleMs: number;
  readonly timeoutMs: number;
  readonly fetchJson: FetchJson;
  /** Milliseconds since the epoch; injected so tests control time. */
  readonly now: () => number;
  readonly log?: KeyStoreLog;
}

/** The subset of a pino logger the store writes to. */
export interface KeyStoreLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type KeyLookup =
  | { readonly status: 'found'; readonly keys: readonly VerificationKey[]; readonly generation: number }
  | { readonly status: 'unknown' }
  | { readonly status: 'unavailable' };

export interface KeyStore {
  /** The keys named `kid` that fit `alg`, from a set no older than the staleness bound. */
  lookup(kid: string, alg: string): KeyLookup;
  /** On-demand refresh for an unknown kid: joins a fetch in flight, starts one only past the cooldown. */
  demand(): Promise<void>;
  /** Scheduled refresh: always runs (or joins the fetch in flight). True when a set was installed. */
  refresh(): Promise<boolean>;
  /** Fetches now and then every refresh interval (timers do not hold the process open). */
  start(): void;
  /** Stops the schedule and aborts a fetch in flight. */
  close(): void;
  /** Fetch attempts so far (discovery and JWKS together count as one). */
  fetches(): number;
}

// More keys than any real issuer publishes; bounds the key-parsing work a JWKS can cause.
const MAX_KEYS = 64;

interface Entry {
  readonly key: VerificationKey;
  readonly alg: string | undefined;
}

class UnusableDocument extends Error {
  override readonly name = 'UnusableDocument';
}

export function createKeyStore(opts: KeyStoreOptions): KeyStore {
  if (opts.maxStaleMs < opts.refreshIntervalMs)
    throw new RangeError('maxStaleMs must be at least the refresh interval');
  let keys: ReadonlyMap<string, readonly Entry[]> | undefined;
  let fingerprint = '';
  let generation = 0;
  let fetchedAt = -Infinity;
  let lastStartedAt = -Infinity;
  let inflight: Promise<boolean> | undefined;
  let discoveredJwksUri: string | undefined;
  let attempts = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let deadline: AbortController | undefined; // the fetch in flight's: its timer or close() aborts it

  const usable = () => keys !== undefined && opts.now() - fetchedAt <= opts.maxStaleMs;

  async function fetchSet(signal: AbortSignal): Promise<void> {
    let url = opts.jwksUri ?? discoveredJwksUri;
    if (url === undefined) {
      url = jwksUriFrom(await opts.fetchJson(discoveryUrl(opts.issuer), signal), opts.issuer);
      discoveredJwksUri = url;
    }
    const set = parseJwks(await opts.fetchJson(url, signal));
    if (set.fingerprint !== fingerprint) {
      generation += 1;
      fingerprint = set.fingerprint;
      opts.log?.info(
        { issuer: opts.issuer, generation, keys: set.count, ignored: set.ignored },
        'jwks: key set installed',
      );
    }
    keys = set.keys;
    fetchedAt = opts.now();
  }

  function run(): Promise<boolean> {
    if (inflight) return inflight;
    if (closed) return Promise.resolve(false);
    lastStartedAt = opts.now();
    attempts += 1;
    // A timer holding its controller, not AbortSignal.any([AbortSignal.timeout(...), ...]): Node
    // 20's timeout timer holds its signal weakly, nothing else held it, and a garbage collection
    // during the fetch left the deadline never firing (a hanging JWKS then held every request for
    // its issuer, and the store's one fetch, for good). test/unit/key-store-deadline.test.ts.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs);
    deadline = controller;
    inflight = fetchSet(controller.signal)
      .then(() => true)
      .catch((err: unknown) => {
        // A moved JWKS is found again by the next discovery.
        discoveredJwksUri = undefined;
        const failure: FetchFailure | 'unusable' = err instanceof FetchJsonError ? err.kind : 'unusable';
        const staleForMs = keys ? opts.now() - fetchedAt : undefined;
        opts.log?.warn(
          { issuer: opts.issuer, failure, staleForMs, usable: usable() },
          'jwks: refresh failed, keeping the last good set within its staleness bound',
        );
        return false;
      })
      .finally(() => {
        clearTimeout(timer);
        deadline = undefined;
        inflight = undefined;
      });
    return inflight;
  }

  function schedule(delayMs: number): void {
    if (closed) return;
    timer = setTimeout(() => {
      void run().then((ok) => schedule(ok ? opts.refreshIntervalMs : retryDelay(opts)));
    }, delayMs);
    timer.unref();
  }

  return {
    lookup(kid, alg) {
      if (!usable() || keys === undefined) return { status: 'unavailable' };
      const entries = keys.get(kid);
      if (!entries) return { status: 'unknown' };
      // A JWK that names its `alg` is used for that algorithm only (RFC 7517 §4.4).
      const fit = entries
        .filter((e) => (e.alg === undefined || e.alg === alg) && keyFitsAlgorithm(e.key, alg))
        .map((e) => e.key);
      return { status: 'found', keys: fit, generation };
    },
    async demand() {
      if (inflight) {
        await inflight;
        return;
      }
      if (opts.now() - lastStartedAt < opts.cooldownMs) return;
      await run();
    },
    refresh: run,
    start() {
      if (timer === undefined && !closed) schedule(0);
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      deadline?.abort();
    },
    fetches: () => attempts,
  };
}

/** After a failed fetch: try again soon, but no more often than the on-demand cooldown. */
function retryDelay(opts: Pick<KeyStoreOptions, 'cooldownMs' | 'refreshIntervalMs'>): number {
  return Math.min(opts.refreshIntervalMs, Math.max(opts.cooldownMs, 1000));
}

export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/**
 * The jwks_uri of a discovery document. The document must name our issuer exactly (OIDC Discovery
 * §4.3: otherwise one provider's document could point us at keys meant for another issuer), and
 * the URI must be https, or http only when the issuer itself is http (local development).
 */
function jwksUriFrom(doc: JsonObject, issuer: string): string {
  if (doc.issuer !== issuer || typeof doc.jwks_uri !== 'string')
    throw new UnusableDocument('discovery document does not match the issuer');
  let url: URL;
  try {
    url = new URL(doc.jwks_uri);
  } catch {
    throw new UnusableDocument('jwks_uri is not a URL');
  }
  const allowed = new URL(issuer).protocol === 'http:' ? ['https:', 'http:'] : ['https:'];
  if (!allowed.includes(url.protocol)) throw new UnusableDocument('jwks_uri must be https');
  return url.href;
}

/**
 * The verification keys of a JWK Set. Skipped: keys for another use than signatures, symmetric
 * keys (a JWKS is public: an `oct` key there would let anyone mint HMAC tokens), keys that do not
 * parse, and RSA keys under 2048 bits. A set without one usable key is a failed fetch, so the
 * last good set (within its bound) is kept rather than emptied by a broken deployment.
 */
function parseJwks(doc: JsonObject): {
  keys: Map<string, Entry[]>;
  fingerprint: string;
  count: number;
  ignored: number;
} {
  const list = doc.keys;
  if (!Array.isArray(list) || list.length > MAX_KEYS) throw new UnusableDocument('not a JWK Set');
  const keys = new Map<string, Entry[]>();
  const prints: string[] = [];
  let ignored = 0;
  for (const jwk of list) {
    const usable = isJsonObject(jwk) ? toEntry(jwk) : undefined;
    if (!usable) {
      ignored += 1;
      continue;
    }
    const { kid, entry, print } = usable;
    keys.set(kid, [...(keys.get(kid) ?? []), entry]);
    prints.push(`${kid}\u0000${entry.alg ?? ''}\u0000${print}`);
  }
  if (prints.length === 0) throw new UnusableDocument('no usable key in the JWK Set');
  const fingerprint = createHash('sha256').update(prints.sort().join('\u0001')).digest('hex');
  return { keys, fingerprint, count: prints.length, ignored };
}

function toEntry(jwk: JsonObject): { kid: string; entry: Entry; print: string } | undefined {
  if (typeof jwk.kid !== 'string' || jwk.kid === '' || jwk.kty === 'oct') return undefined;
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return undefined;
  if (jwk.alg !== undefined && typeof jwk.alg !== 'string') return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { ...jwk } as JsonWebKey, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (keyWeakness(key) !== undefined) return undefined;
  return {
    kid: jwk.kid,
    entry: { key: { kind: 'public', key }, alg: jwk.alg },
    print: key.export({ format: 'der', type: 'spki' }).toString('base64'),
  };
}
