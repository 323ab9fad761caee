/** `/ledgermesh/lease/1.0.0`: a worker renews its lease with the master (outside the ledger). */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'lease'
export const PROTOCOL_VERSION = '1.0.0'
export const LEASE_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; the master refuses others */
export const WIRE_VERSION = 1
/** a request lists at most this many running profiles */
export const MAX_RUNNING = 10_000
/** a request's boot id is at most this long (workers send 32 hex characters) */
export const MAX_BOOT_LENGTH = 64
export const MAX_MESSAGE_BYTES = 1024 * 1024
/** one renewal: dial + request + answer */
export const TIMEOUT_MS = 3000
/** renewals in flight per connection at the master (a worker has one at a time) */
export const MAX_INBOUND_STREAMS = 8
export const MAX_OUTBOUND_STREAMS = 2

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: LEASE_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
