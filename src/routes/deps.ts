import type { onRequestHookHandler } from 'fastify';
import type { Config } from '../config/load.js';
import type { Vendor } from '../vend.js';

export interface RouteDeps {
  readonly config: Config;
  readonly vendor: Vendor;
  /** Verifies the bearer token and sets request.principal, or throws a 401. */
  readonly authenticateHook: onRequestHookHandler;
}
