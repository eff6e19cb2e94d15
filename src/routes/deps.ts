import type { Config } from '../config/load.js';
import type { PresignedVendor } from '../presigned.js';
import type { Vendor } from '../vend.js';

export interface RouteDeps {
  readonly config: Config;
  readonly vendor: Vendor;
  /** Presigned mode (profiles with `delivery: presigned`). */
  readonly presigner: PresignedVendor;
}
