/** Join tokens (the join protocol's own constants are in src/protocols/join/constants.ts). */

/** `create join token` without `ttl` / `uses` */
export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000
export const DEFAULT_TOKEN_USES = 1
/** the longest a join token may live */
export const MAX_TOKEN_TTL_MS = 365 * 24 * 60 * 60 * 1000
