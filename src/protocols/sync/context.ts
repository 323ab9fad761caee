import type { PeerId, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ProtocolComponents } from '../../net/protocol.js'
import type { Head, SignedHead } from '../../ledger/head.js'
import type { Ledger } from '../../ledger/ledger.js'
import type { ForkWatch } from '../../ledger/fork-watch.js'
import type { SyncPeers } from './peers.js'

export interface SyncComponents extends ProtocolComponents {
  ledger: Ledger
  /** told of every sync refused because the peer is not admitted (for metrics) */
  onRefused?: (peer: string) => void
  /**
   * Why this node may not serve anyone now (a relay whose own source refused it: revoked
   * there, before its own state says so), or undefined. A node whose own state revokes its
   * key serves no one either.
   */
  servingRefused?: () => string | undefined
  /**
   * The node's watch over checkpoints: once it detected a fork the replica applies nothing
   * more, and a source whose signed history diverges from this replica's is a fork to report,
   * not a log to rewind to. Without it (tests of the protocol alone) a diverged replica rewinds.
   */
  forks?: ForkWatch
}

export interface SyncInit {
  /** concurrent inbound sync streams per connection (libp2p resets the ones over) */
  maxInboundStreams?: number
  /** concurrent outbound sync streams; further pulls wait for a slot */
  maxOutboundStreams?: number
  /** bound of a pull request/response, of a stalled peer, and of one blocked frame write */
  timeoutMs?: number
  /** most entries per response (served), and asked for per request (client) */
  maxEntriesPerResponse?: number
  /** largest frame, both ways */
  maxMessageBytes?: number
  /** how often a watch stream carries the head when nothing is appended */
  watchKeepaliveMs?: number
  /** how long a served session stream waits for the client's next request before it is closed */
  sessionIdleMs?: number
}

export type SyncTarget = Multiaddr | PeerId

export interface PullOptions {
  /** aborts the pull (it then fails with `timeout`) */
  signal?: AbortSignal
}

export interface PullResult {
  /** entries appended to the local ledger */
  applied: number
  /** the local head afterwards */
  head: Head
  /** frame bytes received for this pull, length prefixes included */
  bytesReceived: number
  /** requests made, probes of a recovery included (each on a stream of its own, or on a session stream kept open from an earlier one) */
  requests: number
  /** set when the replica had diverged from the source and was rewound before catching up */
  recovered?: { from: number, to: number }
}

export interface WatchHandlers {
  /** after each run applied: how many entries, and the signed head they end at */
  onApplied: (count: number, head: SignedHead) => void
  /** once, when the watch ends: no error when close() or stop() ended it */
  onClose: (err?: Error) => void
}

export interface WatchHandle {
  close: () => void
}

export interface SyncStats {
  /** frame bytes read, served requests and client responses, length prefixes included */
  bytesIn: number
  /** frame bytes written */
  bytesOut: number
  /** entries received by pulls and watches (before verification) */
  entriesIn: number
  /** entries served */
  entriesOut: number
  /** responses refused: malformed, or failing the chain, signature or policy checks */
  rejected: number
}

/** What the server, pull and watch share; the SyncProtocol facade provides it. */
export interface SyncContext {
  readonly components: SyncComponents
  readonly stats: SyncStats
  /** where each client stands (served side) */
  readonly peers: SyncPeers
  readonly timeoutMs: number
  /** most entries per response (served), and asked for per request (client) */
  readonly maxEntries: number
  readonly maxMessageBytes: number
  readonly keepaliveMs: number
  /** a served session stream closes after this long without a request */
  readonly sessionIdleMs: number
  /** aborted by stop() */
  shutdown: () => AbortSignal
  /** true between start() and stop() */
  started: () => boolean
  /** timeoutMs, stop(), and any of `signals` */
  deadline: (...signals: Array<AbortSignal | undefined>) => AbortSignal
  frames: (stream: Stream) => LengthPrefixedStream
  /** an outbound slot (for a request on a session stream already open); call the release once done */
  reserve: (signal: AbortSignal) => Promise<() => void>
  /** a stream to `target` within an outbound slot; dial failures are `master_unreachable` */
  open: (target: SyncTarget, signal: AbortSignal) => Promise<{ stream: Stream, release: () => void }>
}

export const short = (hash: string): string => `${hash.slice(0, 12)}…`
