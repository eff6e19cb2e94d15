// Every error answer is problem+json with a stable CV_ code: thrown errors through toProblem
// (src/errors.ts), a known path with another method as 405 naming the allowed ones, anything else
// as 404. The decision plugin is told which problem a decision ended with (its audit record names
// the code) and the access log which 5xx a request ended with.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { boundedName } from '../error-name.js';
import { MethodNotAllowed, problemBody, toProblem } from '../errors.js';

const errorsPlugin: FastifyPluginAsync = async (app) => {
  app.setErrorHandler((err, request, reply) => {
    const p = toProblem(err);
    request.reportProblem(p, err);
    if (p.status >= 500) {
      // Bounded (error-name.ts): a library's error can carry any text in these fields.
      const e = err as { name?: unknown; code?: unknown; kind?: unknown };
      const [name, code, kind] = [boundedName(e.name), boundedName(e.code), boundedName(e.kind)];
      request.failure = {
        problem: p.code,
        err: { ...(name ? { name } : {}), ...(code ? { code } : {}), ...(kind ? { kind } : {}) },
      };
    }
    void reply
      .code(p.status)
      .headers(p.headers ?? {})
      .type('application/problem+json')
      .send(problemBody(p, request.id));
  });

  // Routes registered after this plugin; a path pattern per route template.
  const routes: { pattern: RegExp; method: string }[] = [];
  app.addHook('onRoute', (r) => {
    const pattern = new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}$`);
    for (const method of [r.method].flat()) routes.push({ pattern, method });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '));
      throw new MethodNotAllowed(request.method.slice(0, 16), allowed.join(', '));
    }
    void reply
      .code(404)
      .type('application/problem+json')
      .send(
        problemBody({ status: 404, code: 'CV_NOT_FOUND', title: 'Not found', detail: 'no such route' }, request.id),
      );
  });
};

export default fp(errorsPlugin, {
  name: 'credvend-errors',
  fastify: '5.x',
  dependencies: ['credvend-decision', 'credvend-access-log'],
});
