// GET /v1/container-credentials/:profile: the AWS container-credentials protocol, so any AWS SDK
// or the CLI can use credvend through AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN (which the SDKs send as the bare Authorization value).
import { asList } from '../one-or-many.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteDeps } from './deps.js';
import { containerCredentialsResponse, containerParams, containerQuery, errorResponses } from './api-schemas.js';

export function containerCredentialsRoute(deps: RouteDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/v1/container-credentials/:profile',
      {
        schema: {
          summary: 'AWS container-credentials protocol (AWS_CONTAINER_CREDENTIALS_FULL_URI)',
          params: containerParams,
          querystring: containerQuery,
          response: { 200: containerCredentialsResponse, ...errorResponses },
        },
        onRequest: app.authenticate,
        config: { decision: true, rawTokenAuth: true, rateLimit: {} },
      },
      async (request, reply) => {
        const { key, ...rest } = request.query;
        const keys = asList(key);
        const req = keys === undefined ? rest : { ...rest, keys };
        const { credentials: c, expiration } = await deps.vendor.vend(
          request.caller!,
          request.params.profile,
          req,
          request.id,
          request.decision!,
        );
        reply.header('cache-control', 'no-store');
        return {
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.sessionToken,
          Expiration: expiration,
        };
      },
    );
  };
}
