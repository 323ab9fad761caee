/** `/ledgermesh/witness/1.0.0`: a master asks a witness node to cosign a checkpoint (c2sp.org/tlog-witness over libp2p). */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'witness'
export const PROTOCOL_VERSION = '1.0.0'
export const WITNESS_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; others are refused */
export const WIRE_VERSION = 1
/** an add-checkpoint body: old size, up to 63 proof lines, a checkpoint note of at most 64 KiB */
export const MAX_MESSAGE_BYTES = 72 * 1024
/** one cosignature: dial + request + the witness's durable record + answer */
export const TIMEOUT_MS = 3000
export const MAX_INBOUND_STREAMS = 8
/** a master asks each witness in parallel, one request at a time per witness */
export const MAX_OUTBOUND_STREAMS = 16

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: WITNESS_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
