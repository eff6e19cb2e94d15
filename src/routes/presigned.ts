// POST /v1/presigned: presigned URLs (or size-capped POST forms) for named objects, for profiles
// with `delivery: presigned`. Thin: validate, presign, format.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Presigned } from '../presigned.js';
import type { RouteDeps } from './deps.js';
import { errorResponses, presignedBody, presignedResponse } from './api-schemas.js';

export function presignedRoute(deps: RouteDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/presigned',
      {
        schema: {
          summary: 'Presigned URLs (or size-capped POST forms) for named objects',
          body: presignedBody,
          response: { 200: presignedResponse, ...errorResponses },
        },
        onRequest: app.authenticate,
        config: { decision: true, rateLimit: {} },
      },
      async (request, reply) => {
        const { profile, ...req } = request.body;
        const presigned = await deps.presigner.presign(request.caller!, profile, req, request.id, request.decision!);
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        return presignedFormat(presigned, request.id);
      },
    );
  };
}

function presignedFormat(p: Presigned, requestId: string) {
  return {
    profile: p.profile,
    operation: p.operation,
    bucket: p.bucket,
    region: p.region,
    expiresInSeconds: p.expiresInSeconds,
    expiration: p.expiration,
    objects: [...p.objects],
    requestId,
  };
}
