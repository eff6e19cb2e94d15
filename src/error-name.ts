// A bounded name for an error: its code or name when that is a plain identifier, never its
// message (SDK and upstream messages can carry request details or an endpoint's answer). The one
// rule for every log field, start-up problem and metric label that names an error.
const NAME = /^[A-Za-z0-9_]{1,64}$/;

/** `value` when it is a plain identifier of at most 64 characters, else undefined. */
export function boundedName(value: unknown): string | undefined {
  return typeof value === 'string' && NAME.test(value) ? value : undefined;
}

/** The error's `code`, else its `name`, when bounded. */
export function errorCodeOrName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; name?: unknown };
  return boundedName(e.code) ?? boundedName(e.name);
}
