// One bounded GET of a JSON document from an identity provider (JWKS, OIDC discovery).
//
// Threats: a slow or hanging endpoint holding requests open (the caller's AbortSignal is the one
// deadline for connect, headers and body: undici's own 300 s defaults never apply), an endless or
// huge body exhausting memory (the body is read as a stream and abandoned past `maxBytes`), and
// redirects to somewhere the operator did not configure (refused).
import { isJsonObject, parseStrictJson, type JsonObject } from './strict-json.js';

/** Why a fetch failed, by kind: logged and counted, never shown to callers. */
export type FetchFailure = 'timeout' | 'network' | 'status' | 'too_large' | 'not_json';

export class FetchJsonError extends Error {
  override readonly name = 'FetchJsonError';
  constructor(
    readonly kind: FetchFailure,
    options?: { cause?: unknown },
  ) {
    super(`identity provider fetch failed: ${kind}`, options);
  }
}

/** The seam the key store fetches through; tests may replace it. */
export type FetchJson = (url: string, signal: AbortSignal) => Promise<JsonObject>;

export function createFetchJson(opts: { maxBytes: number }): FetchJson {
  return async (url, signal) => {
    let res: Response;
    try {
      res = await fetch(url, {
        signal,
        redirect: 'error',
        headers: { accept: 'application/json, application/jwk-set+json' },
      });
    } catch (err) {
      throw new FetchJsonError(signal.aborted ? 'timeout' : 'network', { cause: err });
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new FetchJsonError('status');
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > opts.maxBytes) {
      await res.body.cancel().catch(() => undefined);
      throw new FetchJsonError('too_large');
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > opts.maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw new FetchJsonError('too_large');
        }
        chunks.push(value);
      }
    } catch (err) {
      if (err instanceof FetchJsonError) throw err;
      throw new FetchJsonError(signal.aborted ? 'timeout' : 'network', { cause: err });
    }
    try {
      // Strict as for tokens: a document with duplicate members has no single meaning.
      const doc = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
      if (!isJsonObject(doc)) throw new FetchJsonError('not_json');
      return doc;
    } catch (err) {
      if (err instanceof FetchJsonError) throw err;
      throw new FetchJsonError('not_json', { cause: err });
    }
  };
}
