/** `/ledgermesh/insert/1.0.0`: a node submits one signed policy to the master and gets its seq. */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'insert'
export const PROTOCOL_VERSION = '1.0.0'
export const INSERT_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; the master refuses others with `unsupported_version` */
export const WIRE_VERSION = 1

/** a policy is at most 64 KiB of canonical JSON; a request carries one, with room to spare */
export const MAX_MESSAGE_BYTES = 128 * 1024
/**
 * The master waits this long for a request, and again for the durable commit; a client
 * allows this long for dial + request + answer before it reports master_unreachable.
 */
export const TIMEOUT_MS = 10_000
/**
 * A client keeps a stream open this long after an answer for its next insert (at most half
 * of TIMEOUT_MS, which is how long the master waits for that next request).
 */
export const IDLE_STREAM_MS = 4_000
/** inserts in flight from one connection at the master (group commit batches them) */
export const MAX_INBOUND_STREAMS = 256
/** inserts in flight from this node; further submits wait for a slot */
export const MAX_OUTBOUND_STREAMS = 64

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: INSERT_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
