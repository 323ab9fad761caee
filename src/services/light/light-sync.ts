import type { Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import type { LedgerOp } from '../../ledger/entry.js'
import { type MasterList, tcpAddress } from '../master-list.js'
import type { AdmissionState, ReplicaSync } from '../replica-sync.js'
import type { ProcessStatus } from '../service.js'
import type { LightReplica, LightSummary } from './light-replica.js'

/** How many times start() tries the join (each time every master once) before it goes on. */
const JOIN_ROUNDS = 3
const JOIN_RETRY_MS = 1000

/**
 * A light worker's "Blockchain Sync" process: no log to pull. It presents the join token
 * (JOIN_TOKEN) on first contact, then has the LightReplica fetch this worker's policies with
 * their proofs; after that the master's signed lease answers drive what it holds. It keeps no
 * outbox: a write needs a master that answers.
 */
export class LightSync implements ReplicaSync {
  readonly name = 'Blockchain Sync'
  readonly keepsReplica = true
  readonly lag = undefined
  readonly outboxSize = undefined
  readonly outboxDropped = undefined
  admission?: AdmissionState
  private started = false

  constructor (private readonly opts: {
    replica: LightReplica
    masters: MasterList
    log: Logger
    /** presents this node's join token to the master at `target` (JOIN_TOKEN) */
    join?: (target: Multiaddr) => Promise<void>
  }) {}

  get light (): LightSummary { return this.opts.replica.summary() }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.joinOnce()
    await this.opts.replica.start()
  }

  private async joinOnce (): Promise<void> {
    const join = this.opts.join
    if (join === undefined) return
    const { masters } = this.opts
    for (let round = 1; round <= JOIN_ROUNDS && this.started; round++) {
      try {
        await masters.withMaster(async address => { await join(tcpAddress(address)) }, { attempts: masters.size })
        this.admission = { admitted: true }
        return
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err), round }, 'join refused or not answered')
        if (round < JOIN_ROUNDS) await new Promise(resolve => setTimeout(resolve, JOIN_RETRY_MS).unref())
      }
    }
  }

  async stop (): Promise<void> {
    this.started = false
    this.opts.replica.stop()
  }

  async keepLocal (_op: LedgerOp): Promise<void> {
    throw new LedgerMeshError('master_unreachable', 'a light worker keeps no outbox: the insert needs a master that answers (try again)')
  }

  async pullOnce (): Promise<void> { await this.opts.replica.start() }
  async flushOutbox (): Promise<void> {}

  status (): ProcessStatus {
    if (!this.started) return { status: 'Stopped' }
    const s = this.opts.replica.summary()
    const refused = s.last_refusal === null ? '' : `, refused ${s.refused} answers (last from ${s.last_refusal.source}: ${s.last_refusal.reason})`
    return { status: 'Running', details: `Light worker: ${s.policies} policies held with proofs, at checkpoint size ${s.checkpoint_size}${s.complete ? '' : ' (fetching)'}${refused}` }
  }
}
