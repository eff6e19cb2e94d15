// Authentication: `app.authenticate`, the onRequest hook of every route that needs a caller. It
// verifies the bearer token (src/auth/authenticate.ts) and sets `request.caller`; nothing else in
// the service builds a Caller, so every grant starts from a verified token.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createAuthenticator, type AuthOptions } from '../auth/authenticate.js';
import { NotReady } from '../errors.js';
import type { Caller } from '../policy/caller.js';
import type { Readiness } from '../readiness.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
  interface FastifyInstance {
    /** Verifies the bearer token and sets request.caller, or throws a 401 (503 while not ready). */
    readonly authenticate: (request: FastifyRequest) => Promise<void>;
  }
  interface FastifyContextConfig {
    /** The route accepts a bare token in Authorization (AWS container-credentials clients). */
    rawTokenAuth?: boolean;
  }
}

export interface AuthPluginOptions extends AuthOptions {
  readonly readiness: Readiness;
}

const authPlugin: FastifyPluginAsync<AuthPluginOptions> = async (app, { readiness, ...opts }) => {
  const authenticate = createAuthenticator(app, opts);
  app.decorateRequest('caller', undefined);
  app.decorate('authenticate', async (request: FastifyRequest) => {
    // Not ready (start-up checks, draining): nothing is verified, nothing is issued.
    if (readiness.state() !== 'ready') throw new NotReady();
    request.caller = await authenticate(request);
  });
};

export default fp(authPlugin, { name: 'credvend-auth', fastify: '5.x' });
