/**
 * `/ledgermesh/sync/1.0.0`: replicas pull (and watch) ledger entries from any node that has
 * them — the master, or a replica relaying what it verified.
 */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'sync'
export const PROTOCOL_VERSION = '1.0.0'
export const SYNC_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; a server refuses others with `unsupported_version` */
export const WIRE_VERSION = 1

/** largest length-prefixed frame either side accepts (and produces) */
export const MAX_MESSAGE_BYTES = 1024 * 1024
/** room kept in a frame for the signed head, the flags and the field tags around the entries */
export const FRAME_RESERVE_BYTES = 1024
/** most entries one response carries before its head frame (the client asks again for more) */
export const MAX_ENTRIES_PER_RESPONSE = 10_000
/** entries read from the store at a time while serving */
export const READ_PAGE = 1000

/**
 * A pull request/response, one frame write (backpressure: a peer that does not read for this
 * long is cut off), a stalled peer that never sends its request: how long before the stream
 * is closed.
 */
export const TIMEOUT_MS = 10_000
/**
 * A session stream (a client's keep_open requests) that carries no new request for this long
 * is closed by its server; the client opens a new one for its next round. Above the default
 * anti-entropy interval (BLOCKCHAIN_SYNC, 30 s), so one stream carries round after round.
 */
export const SESSION_IDLE_MS = 120_000
/** a watch stream sends the head at least this often, so both sides notice a dead peer */
export const WATCH_KEEPALIVE_MS = 5_000
/** a watching client gives up after this many keepalive periods without a frame */
export const WATCH_MISSED_KEEPALIVES = 3

export const MAX_INBOUND_STREAMS = 256
export const MAX_OUTBOUND_STREAMS = 16

/** error codes a server puts in an error frame */
export const SYNC_ERROR = {
  unsupportedVersion: 'unsupported_version',
  diverged: 'diverged',
  badMessage: 'bad_message',
  timeout: 'timeout',
  /** the network requires admission and the client's key is not admitted */
  unauthorized: 'unauthorized',
  /**
   * the client asked for entries before this node's log begins (it started from a snapshot):
   * the message names the snapshot this node serves instead, as etcd answers a compacted revision
   */
  compacted: 'compacted',
  internal: 'internal'
} as const

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: SYNC_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
