// Date#toISOString formats through snprintf in V8, about 0.6 µs a call, and one request wrote the
// same few instants several times (now, in the audit and access lines; a session's expiry, in the
// answer and the audit record). Each use site keeps its own one-entry cache: under load, many
// requests in a row share the millisecond, or the reused session.

/** `new Date(ms).toISOString()`, remembering the last `ms` it was asked for. */
export function isoTimeCache(): (ms: number) => string {
  let lastMs = NaN;
  let last = '';
  return (ms) => {
    if (ms !== lastMs) {
      last = new Date(ms).toISOString();
      lastMs = ms;
    }
    return last;
  };
}
