/** `/ledgermesh/sync/1.0.0`: replicas pull (and watch) ledger entries from any node that has them. */
export const PROTOCOL_NAME = 'sync'
export const PROTOCOL_VERSION = '1.0.0'
export const SYNC_PROTOCOL = `/ledgermesh/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`
/** the `version` field a request carries; a server refuses others with `unsupported_version` */
export const WIRE_VERSION = 1

/** largest length-prefixed frame either side accepts */
export const MAX_MESSAGE_BYTES = 1024 * 1024
/** most entries one pull request is answered with (the client asks again for more) */
export const MAX_ENTRIES_PER_RESPONSE = 10_000
/** entries read from the store at a time while serving */
export const READ_PAGE = 1000
/** a pull, a frame write, or a stalled peer: how long before the stream is aborted */
export const TIMEOUT_MS = 10_000
/** a watch stream sends the head at least this often, so a silent peer is noticed */
export const WATCH_KEEPALIVE_MS = 5_000
export const MAX_INBOUND_STREAMS = 256
export const MAX_OUTBOUND_STREAMS = 16
