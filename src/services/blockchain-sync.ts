import { LedgerMeshError } from '../base/errors.js'
import { describeDuration, type Duration } from '../base/duration.js'
import type { ReplicaSync } from './replica-sync.js'
import type { ProcessStatus } from './service.js'

export interface BlockchainSyncOptions {
  /** `master` or the peer this node syncs from */
  source: string
  /** the master's (or source's) p2p address, ip:port */
  connection: string
  interval: Duration
  /** true on the master: its ledger is the source, there is nothing to pull */
  isMaster: boolean
}

/**
 * AnyLog's "Blockchain Sync" process: keeps the local replica current from its source.
 * On the master the ledger itself is the source, so the process only reports: it keeps no
 * replica, has no lag and no outbox (a replica's is the Replicator).
 */
export class BlockchainSync implements ReplicaSync {
  readonly name = 'Blockchain Sync'
  readonly keepsReplica = false
  readonly lag = undefined
  readonly recovered = undefined
  readonly outboxSize = undefined
  readonly outboxDropped = undefined
  readonly lastOutboxDrop = undefined
  private running = false

  constructor (private readonly opts: BlockchainSyncOptions) {}

  async start (): Promise<void> { this.running = true }
  async stop (): Promise<void> { this.running = false }

  /** The master orders its inserts itself: it has no outbox to keep them in. */
  async keepLocal (): Promise<void> {
    throw new LedgerMeshError('bad_command', 'the master keeps no outbox: its inserts are ordered on its own ledger')
  }

  async flushOutbox (): Promise<void> {}

  /** The master is the source: there is nothing to pull. */
  async pullOnce (): Promise<void> {}

  status (): ProcessStatus {
    if (!this.running) return { status: 'Not declared' }
    const every = `Sync every ${describeDuration(this.opts.interval)}`
    return { status: 'Running', details: `${every} with ${this.opts.source} using: ${this.opts.connection}` }
  }
}
