import type { ProcessStatus, Service } from './service.js'
import { describeDuration, type Duration } from '../base/duration.js'

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
 * On the master the ledger itself is the source, so the process only reports.
 */
export class BlockchainSync implements Service {
  readonly name = 'Blockchain Sync'
  private running = false

  constructor (private readonly opts: BlockchainSyncOptions) {}

  async start (): Promise<void> { this.running = true }
  async stop (): Promise<void> { this.running = false }

  status (): ProcessStatus {
    if (!this.running) return { status: 'Not declared' }
    const every = `Sync every ${describeDuration(this.opts.interval)}`
    return { status: 'Running', details: `${every} with ${this.opts.source} using: ${this.opts.connection}` }
  }
}
