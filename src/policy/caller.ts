/** The verified caller: only ever built from a token whose signature, iss, aud and times passed. */
export interface Caller {
  readonly issuer: string;
  readonly subject: string;
  readonly audiences: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Reads `a.b.c` from the claims; dotted paths reach nested objects (e.g. Kubernetes tokens). Keys
 * may contain dots themselves (`kubernetes.io.namespace` is `namespace` inside `"kubernetes.io"`):
 * the whole path as one key wins, then the longest own key that starts the path.
 */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  for (let dot = path.lastIndexOf('.'); dot > 0; dot = path.lastIndexOf('.', dot - 1)) {
    const head = path.slice(0, dot);
    const inner = Object.hasOwn(claims, head) ? claims[head] : undefined;
    if (inner === null || typeof inner !== 'object') continue;
    const found = claimAt(inner as Record<string, unknown>, path.slice(dot + 1));
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A scalar claim as a string; objects, arrays and empty values are "missing" (fail closed). */
export function scalarClaim(claims: Readonly<Record<string, unknown>>, path: string): string | undefined {
  const v = claimAt(claims, path);
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}
