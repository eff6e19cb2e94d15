// "One value or a list": a JWT's `aud`, a profile's `match.iss`, `match.aud` and claim
// conditions, a query's repeated `key` may each be given once or as a list. The one rule for
// reading them as a list.

/** `value` as a list: a list as it is, a single value as a list of one, undefined as undefined. */
export function asList<T>(value: T | readonly T[] | undefined): readonly T[] | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? (value as readonly T[]) : [value as T];
}
