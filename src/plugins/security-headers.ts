// Security headers from helmet, computed once. credvend's headers never vary per request (no CSP
// nonces: it serves JSON only), and @fastify/helmet rebuilds helmet's middleware on every
// request, which measured as one of the larger per-request costs on the issuance path.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';

type HelmetOptions = Parameters<typeof helmet>[0];

/** Runs helmet's middleware once against a recording response and returns what it set. */
function securityHeaders(options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)({} as never, res as never, (err?: unknown) => {
    if (err) throw err instanceof Error ? err : new Error('helmet could not compute the security headers');
  });
  return Object.freeze(headers);
}

// A JSON API: no document may load anything, so CSP is only default-src/frame-ancestors 'none'.
const API_HEADERS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
};

const securityHeadersPlugin: FastifyPluginAsync = async (app) => {
  const headers = securityHeaders(API_HEADERS);
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
};

export default fp(securityHeadersPlugin, { name: 'credvend-security-headers', fastify: '5.x' });
