import type { FastifyRequest } from 'fastify';
import type { VendContext } from '../vend.js';

/** Who asked, as every audit record names it (user agent capped: it is the caller's text). */
export function vendContext(request: FastifyRequest): VendContext {
  const ua = request.headers['user-agent'];
  return { requestId: request.id, clientIp: request.ip, ...(typeof ua === 'string' ? { userAgent: ua.slice(0, 256) } : {}) };
}
