/** `/ledgermesh/snapshot/1.0.0`: a node fetches a peer's snapshot files (latest, manifest, chunks) to bootstrap from. */
export const PROTOCOL_PREFIX = 'ledgermesh'
export const PROTOCOL_NAME = 'snapshot'
export const PROTOCOL_VERSION = '1.0.0'
export const SNAPSHOT_PROTOCOL = `/${PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`

/** the `version` field a request carries; others are refused */
export const WIRE_VERSION = 1
/** a request's path: `snapshot/<size>/chunk/<index>` is under 40 characters, so this bounds a junk one */
export const MAX_PATH_CHARS = 256
/**
 * The largest frame: an answer carries one whole file, and the largest is a chunk, an entry
 * bundle of the log entries putting about 1,024 live policies (CHUNK_LEAVES; more when the
 * ids fall unevenly). Policies of a few KiB make a chunk of a few MiB; 32 MiB leaves room for
 * a chunk of large policies, while a bundle of 1,024 policies at the 64 KiB maximum (64 MiB)
 * is not held in memory whole on both sides on a peer's word.
 */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024
/** one file: dial + request + up to 32 MiB of answer on a slow link */
export const TIMEOUT_MS = 30_000
/** files served at once per connection: a bootstrapping node fetches a few chunks in parallel */
export const MAX_INBOUND_STREAMS = 8
/** files fetched at once from all peers; more wait for a slot, within their deadline */
export const MAX_OUTBOUND_STREAMS = 16

/** The protocol's id and bounds, as the protocol skeleton (src/net/protocol.ts) takes them. */
export const LIMITS = {
  protocol: SNAPSHOT_PROTOCOL,
  name: PROTOCOL_NAME,
  timeoutMs: TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxInboundStreams: MAX_INBOUND_STREAMS,
  maxOutboundStreams: MAX_OUTBOUND_STREAMS
}
