/** `/ledgermesh/light/1.0.0`: a light worker fetches the policies it needs, each with an inclusion proof. */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'light'
export const PROTOCOL_VERSION = '1.0.0'
export const LIGHT_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; a server refuses others */
export const WIRE_VERSION = 1
/** a request names at most this many policy ids (a worker's needs fit: see MAX_LIGHT_POLICIES) */
export const MAX_IDS = 4096
/** an answer carries at most this many policies */
export const MAX_ENTRIES = 4096
/** a policy is at most 64 KiB; an answer of a worker's few policies fits well within this */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024
/** one fetch: dial + request + answer */
export const TIMEOUT_MS = 10_000
/** fetches in flight per connection at a server (a light worker has one at a time) */
export const MAX_INBOUND_STREAMS = 4
export const MAX_OUTBOUND_STREAMS = 2

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: LIGHT_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
