// POST /v1/credentials: the core route. Thin: validate, vend, format.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Vended } from '../vend.js';
import { credentialsAnyFormat, credentialsBody, credentialsQuery, errorResponses } from './api-schemas.js';
import type { RouteDeps } from './deps.js';

export function credentialsRoute(deps: RouteDeps): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/v1/credentials',
      {
        schema: {
          summary: 'Short-lived credentials scoped to named objects',
          body: credentialsBody,
          querystring: credentialsQuery,
          response: { 200: credentialsAnyFormat, ...errorResponses },
        },
        onRequest: app.authenticate,
        config: { decision: true, rateLimit: {} },
      },
      async (request, reply) => {
        const { profile, ...req } = request.body;
        const vended = await deps.vendor.vend(request.caller!, profile, req, request.id, request.decision!);
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        switch (request.query.format) {
          case 'process':
            return processFormat(vended);
          case 'env':
            return reply.type('text/plain; charset=utf-8').send(envFormat(vended));
          default:
            return jsonFormat(vended, request.id);
        }
      },
    );
  };
}

export function jsonFormat({ plan, credentials: c, expiration }: Vended, requestId: string) {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiration,
    region: plan.region,
    bucket: plan.bucket,
    ...(plan.keys ? { keys: [...plan.keys] } : { prefix: plan.prefix ?? '' }),
    operation: plan.operation,
    profile: plan.profile,
    requestId,
  };
}

/** AWS CLI/SDK `credential_process` output, version 1. */
export function processFormat({ credentials: c, expiration }: Vended) {
  return {
    Version: 1 as const,
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
    SessionToken: c.sessionToken,
    Expiration: expiration,
  };
}

/** POSIX single-quoting: the value can never break out of the string in `eval "$(curl ...)"`. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function envFormat({ plan, credentials: c, expiration }: Vended): string {
  const vars: [string, string][] = [
    ['AWS_ACCESS_KEY_ID', c.accessKeyId],
    ['AWS_SECRET_ACCESS_KEY', c.secretAccessKey],
    ['AWS_SESSION_TOKEN', c.sessionToken],
    ['AWS_REGION', plan.region],
    ['AWS_DEFAULT_REGION', plan.region],
    ['CREDVEND_BUCKET', plan.bucket],
    ['CREDVEND_EXPIRATION', expiration],
  ];
  if (plan.keys) {
    vars.push(['CREDVEND_KEY', plan.keys[0] ?? '']);
    vars.push(['CREDVEND_KEYS_JSON', JSON.stringify(plan.keys)]);
  } else {
    vars.push(['CREDVEND_PREFIX', plan.prefix ?? '']);
  }
  return vars.map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
}
