/** `/ledgermesh/insert/1.0.0`: a node submits a signed policy to the master and gets its seq. */
export const INSERT_PROTOCOL = '/ledgermesh/insert/1.0.0'
export const WIRE_VERSION = 1
/** a policy is at most 64 KiB; a request carries one */
export const MAX_MESSAGE_BYTES = 128 * 1024
/** dial + write + the master's durable commit + the answer */
export const TIMEOUT_MS = 10_000
export const MAX_INBOUND_STREAMS = 256
export const MAX_OUTBOUND_STREAMS = 64
