/** `/ledgermesh/checkpoint/1.0.0`: nodes gossip the checkpoints they hold, to catch a split view. */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'checkpoint'
export const PROTOCOL_VERSION = '1.0.0'
export const CHECKPOINT_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; others are refused */
export const WIRE_VERSION = 1
/** a request carries the sender's checkpoint and, after a fork, the two it holds as evidence */
export const MAX_NOTES = 4
/** a consistency proof has at most ⌈log2 n⌉ + 1 hashes: 64 covers any tree */
export const MAX_PROOF_HASHES = 64
/** notes are at most 64 KiB each (signed-note's own bound in this code) */
export const MAX_MESSAGE_BYTES = 320 * 1024
/** one exchange: dial + request + answer */
export const TIMEOUT_MS = 3000
export const MAX_INBOUND_STREAMS = 4
export const MAX_OUTBOUND_STREAMS = 8
/** a node gossips with this many connected peers per round */
export const GOSSIP_FANOUT = 3
/**
 * a round after a new head, coalesced over this long (gossip catches forks; it does not carry
 * entries, so it need not keep pace with inserts), and at least every GOSSIP_INTERVAL_MS
 */
export const GOSSIP_DEBOUNCE_MS = 1000
export const GOSSIP_INTERVAL_MS = 5000

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: CHECKPOINT_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
