import type { FastifyRequest } from 'fastify';
import type { VendContext } from '../vend.js';

export function vendContext(request: FastifyRequest): VendContext {
  const ua = request.headers['user-agent'];
  return { requestId: request.id, clientIp: request.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 256) : undefined };
}
