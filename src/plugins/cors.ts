// CORS for the browser origins an operator lists (CREDVEND_CORS_ORIGINS); none by default, so no
// web page can call the API from a browser unless its origin is named.
import cors from '@fastify/cors';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

export interface CorsPluginOptions {
  /** Comma-separated origins, as in CREDVEND_CORS_ORIGINS. */
  readonly origins: string;
}

const corsPlugin: FastifyPluginAsync<CorsPluginOptions> = async (app, opts) => {
  const origins = opts.origins
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  // None listed: no CORS at all. @fastify/cors with `origin: false` only answered preflights 404,
  // yet still ran a hook (and copied its options) on every request.
  if (origins.length === 0) return;
  await app.register(cors, {
    origin: origins,
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  });
};

export default fp(corsPlugin, { name: 'credvend-cors', fastify: '5.x' });
