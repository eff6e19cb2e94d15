/** The verified caller: only ever built from a token whose signature, iss, aud and times passed. */
export interface Principal {
  readonly issuer: string;
  readonly subject: string;
  readonly audiences: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Reads `a.b.c` from the claims; dotted paths reach nested objects (e.g. Kubernetes tokens). */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A scalar claim as a string; objects, arrays and empty values are "missing" (fail closed). */
export function scalarClaim(claims: Readonly<Record<string, unknown>>, path: string): string | undefined {
  const v = claimAt(claims, path);
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}
