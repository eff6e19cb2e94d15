// Defaults shared by the configuration (src/config/schema.ts) and the modules that fall back on
// them when a caller (a test, a script) passes no value: one number each.

/** Largest answer accepted from any upstream (STS, KMS, JWKS, container credentials). */
export const DEFAULT_MAX_RESPONSE_BYTES = 262_144;

/** Keep-alive sockets to STS, and calls admitted at once (CREDVEND_STS_MAX_IN_FLIGHT). */
export const DEFAULT_MAX_SOCKETS = 64;
