import type { Connection, Stream } from '@libp2p/interface'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import { StreamProtocol, limitsOf } from '../../net/protocol.js'
import { LIMITS, MAX_ENTRIES_PER_RESPONSE, SESSION_IDLE_MS, WATCH_KEEPALIVE_MS } from './constants.js'
import type {
  PullOptions, PullResult, SyncComponents, SyncContext, SyncInit, SyncStats, SyncTarget, WatchHandle, WatchHandlers
} from './context.js'
import { Puller } from './pull.js'
import { RunApplier } from './run.js'
import { SyncServer } from './server.js'
import { Sessions } from './session.js'
import { watch } from './watch.js'
import { SyncPeers } from './peers.js'
import { type ProvedAnswer, requestProof } from './prove.js'

export type { PullOptions, PullResult, SyncComponents, SyncInit, SyncStats, SyncTarget, WatchHandle, WatchHandlers } from './context.js'

/**
 * `/ledgermesh/sync/1.0.0`.
 *
 * Serving (server.ts: any node with a ledger, the master or a replica relaying to its
 * workers): the entries after the client's head, then the master-signed head; in watch mode
 * every append is pushed as it happens.
 *
 * Client: `pull` (pull.ts) catches the local replica up, `watch` (watch.ts) keeps it current.
 * A pull's requests to a source go on one session stream kept open between pulls
 * (session.ts), and a round that finds the replica at the source's signed head costs a
 * request and a few-byte answer (no head re-sent: the replica verified it already).
 * Entries are held in memory until a signed head covers them exactly (run.ts); then
 * `Ledger.applyBatch` checks the signature against the trusted master key, hashes the links,
 * checks every policy, and appends the run atomically. Anything that fails is rejected whole
 * and the replica stays at its last valid head. A diverged replica finds the last seq it
 * shares with the source, and is rewound to it only once the source's run from there has
 * verified.
 */
export class SyncProtocol extends StreamProtocol<SyncComponents> {
  readonly stats: SyncStats = { bytesIn: 0, bytesOut: 0, entriesIn: 0, entriesOut: 0, rejected: 0 }
  /** where each client of this node's sync server stands */
  readonly peers = new SyncPeers()

  private readonly ctx: SyncContext
  private readonly server: SyncServer
  private readonly puller: Puller
  private readonly applier: RunApplier
  /** the pulls' session streams, one idle per source at most */
  private readonly sessions: Sessions
  private started = false
  /** this node's open watches (client side), closed on stop() */
  private readonly watches = new Set<WatchHandle>()

  constructor (components: SyncComponents, init: SyncInit = {}) {
    super(components, limitsOf(LIMITS, init))
    const busy = (): LedgerMeshError => new LedgerMeshError('timeout', `no free outbound sync stream (${this.maxOutboundStreams} in use) within ${this.timeoutMs} ms`)
    this.ctx = {
      components,
      stats: this.stats,
      peers: this.peers,
      timeoutMs: this.timeoutMs,
      maxEntries: Math.max(1, init.maxEntriesPerResponse ?? MAX_ENTRIES_PER_RESPONSE),
      maxMessageBytes: this.maxMessageBytes,
      keepaliveMs: init.watchKeepaliveMs ?? WATCH_KEEPALIVE_MS,
      sessionIdleMs: init.sessionIdleMs ?? SESSION_IDLE_MS,
      shutdown: () => this.shutdown.signal,
      started: () => this.started,
      deadline: (...signals) => this.deadline(...signals),
      frames: stream => this.frames(stream),
      reserve: async signal => await this.slot(signal, busy),
      open: async (target, signal) => await this.open(target, signal, {
        busy,
        unreachable: err => new LedgerMeshError('master_unreachable', `cannot open a sync stream to ${target.toString()}: ${errorMessage(err)}`)
      })
    }
    this.server = new SyncServer(this.ctx)
    this.applier = new RunApplier(this.ctx)
    this.sessions = new Sessions(this.ctx)
    this.puller = new Puller(this.ctx, this.applier, this.sessions)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/sync'

  isStarted (): boolean { return this.started }

  /** streams this node is serving right now (pulls in progress and open watches) */
  get servingStreams (): number { return this.serving.size }

  /** Serves the protocol. A node that only pulls need not start it (but every node can relay). */
  async start (): Promise<void> {
    if (this.started) return
    this.renewShutdown()
    this.components.ledger.on('appended', this.server.wake)
    await this.handle()
    this.started = true
  }

  /** Stops serving, and ends every stream this protocol has open, served or watched. */
  async stop (): Promise<void> {
    this.started = false
    this.components.ledger.off('appended', this.server.wake)
    await this.stopServing(new LedgerMeshError('timeout', 'the sync protocol is stopping'))
    for (const handle of [...this.watches]) handle.close()
    this.sessions.closeAll()
    this.server.wake()
  }

  protected async serveStream (stream: Stream, connection: Connection): Promise<void> {
    await this.server.serve(stream, connection)
  }

  /**
   * Catches the local replica up from `target`, in as many requests as the limit needs. A
   * replica whose head is not on the source's chain is rewound to the last seq both agree on
   * and caught up from there (`recovered` in the result).
   */
  async pull (target: SyncTarget, opts: PullOptions = {}): Promise<PullResult> {
    return await this.puller.pull(target, opts)
  }

  /**
   * Keeps the replica current from `target`: a pull first, then a stream on which the source
   * pushes every append. The watch ends on close(), stop(), a rejected run, or a source silent
   * for three keepalives.
   */
  /**
   * An inclusion proof of entry `seq`, or a consistency proof from this ledger's tree of
   * `first` entries, in (to) the tree of `target`'s signed checkpoint; checked against this
   * ledger's master keys and its own root (prove.ts).
   */
  async prove (target: SyncTarget, query: { seq: number } | { first: number }): Promise<ProvedAnswer> {
    return await requestProof(this.ctx, target, query)
  }

  watch (target: SyncTarget, handlers: WatchHandlers): WatchHandle {
    return watch(this.ctx, this.applier, async (to, opts) => await this.pull(to, opts), this.watches, target, handlers)
  }
}
