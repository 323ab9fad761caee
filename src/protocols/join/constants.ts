/** `/ledgermesh/join/1.0.0`: a node presents a join token to the master and is admitted. */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'join'
export const PROTOCOL_VERSION = '1.0.0'
export const JOIN_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; the master refuses others */
export const WIRE_VERSION = 1
export const MAX_MESSAGE_BYTES = 4096
/** one join: dial + request + the admission's durable commit + answer */
export const TIMEOUT_MS = 10_000
/** joins in flight per connection at the master (a node joins once) */
export const MAX_INBOUND_STREAMS = 2
export const MAX_OUTBOUND_STREAMS = 1

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: JOIN_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
