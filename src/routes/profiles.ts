// GET /v1/profiles: the profiles this token may use, with the prefix it would get. For debugging
// CI pipelines ("why am I denied?"); lists nothing the token does not match.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { matches } from '../policy/authorize.js';
import { ROLE_CHAINING_MAX_SECONDS } from '../policy/session.js';
import { fillPrefix } from '../policy/templates.js';
import type { RouteDeps } from './deps.js';
import { errorResponses, profilesResponse } from './api-schemas.js';

export function profilesRoute(deps: RouteDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/v1/profiles',
      {
        schema: {
          summary: 'The profiles this token may use',
          response: { 200: profilesResponse, 401: errorResponses[401] },
        },
        onRequest: app.authenticate,
      },
      async (request, reply) => {
        const caller = request.caller!;
        const profiles = [...deps.config.profiles.values()]
          .filter((p) => matches(p.match, caller))
          .map((p) => {
            let prefix: string | null;
            try {
              prefix = fillPrefix(p.prefix, caller.claims);
            } catch {
              prefix = null; // a claim the prefix needs is missing: issuance would be denied
            }
            return {
              name: p.name,
              description: p.description ?? null,
              bucket: p.bucket,
              region: p.region,
              prefix,
              operations: p.operations,
              maxKeys: p.maxKeys,
              allowPrefixGrants: p.allowPrefixGrants,
              defaultDurationSeconds: p.defaultDurationSeconds,
              maxDurationSeconds: Math.min(p.maxDurationSeconds, ROLE_CHAINING_MAX_SECONDS),
              kms: p.kmsKeyId !== undefined,
            };
          });
        reply.header('cache-control', 'no-store');
        return { subject: caller.subject, issuer: caller.issuer, profiles };
      },
    );
  };
}
