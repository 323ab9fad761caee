import { EventEmitter } from 'node:events'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Entry, LedgerOp } from '../ledger/entry.js'
import type { RegisteredMaster, WriterLease } from '../ledger/pg-store.js'
import type { Signer } from '../policies/keys.js'
import { MasterElection, type ElectionState, type LeaseStore } from './master-election.js'
import { declareRegisteredMasters } from './master-keys.js'
import type { ProcessStatus, Service } from './service.js'
import type { NodeStatus } from '../commands/port.js'

/** How often a standby reads what the writer committed (its replicas see it this much later at most). */
export const FOLLOW_EVERY_MS = 200
/** How often the active master looks for newly registered masters, and each master refreshes its registration. */
const REGISTRY_EVERY_MS = 2000

/** What the master role needs of the ledger. */
export interface MasterRoleLedger {
  readonly masterKeys: string[]
  followStore: () => Promise<number>
  markStoreUncertain: () => void
  submit: (op: LedgerOp) => Promise<Entry>
}

/** What it needs of the store: the writer lease and the masters' registry (PgStore). */
export interface MasterRoleStore extends LeaseStore {
  readLease: () => Promise<WriterLease>
  registerMaster: (master: { key: string, name: string, address: string }) => Promise<void>
  registeredMasters: () => Promise<RegisteredMaster[]>
}

export interface MasterRoleOptions {
  ledger: MasterRoleLedger
  store: MasterRoleStore
  signer: Signer
  /** this master's node name and p2p address (ip:port) */
  name: string
  address: string
  /** the writer lease's TTL (MASTER_LEASE_TTL) */
  leaseTtlMs: number
  /** MASTER_APPROVAL: auto declares registered masters' keys; manual waits for `approve master` */
  approval: 'auto' | 'manual'
  log: Logger
}

export interface MasterRoleEvents {
  /** this master became the writer (true) or stopped being it (false) */
  active: [boolean]
  /** the ledger now trusts this master's key (it runs for the writer lease from now on) */
  trusted: []
}

/** What `get status` shows of a master among several (NodeStatus.master_role). */
export type MasterRoleSummary = NonNullable<NodeStatus['master_role']>

/**
 * A master over a PostgreSQL database that other masters may share. It registers its key in
 * the database; once the ledger trusts that key (the active master declared it, or it began
 * the ledger), it runs for the writer lease (MasterElection). While standing by it follows
 * what the writer commits, so it serves current sync and reads; when it becomes the writer it
 * catches up first and announces 'active', and while active it declares the keys of masters
 * registered since (unless MASTER_APPROVAL=manual).
 */
export class MasterRole extends EventEmitter<MasterRoleEvents> implements Service {
  readonly name = 'Master Role'
  private readonly election: MasterElection
  private timer?: NodeJS.Timeout
  private running = false
  private loop?: Promise<void>
  private electing = false
  private lastRegistry = 0
  private registered: RegisteredMaster[] = []
  private readonly startedAt = new Date()
  private lastError?: string
  private wasActive = false
  /** before it runs for the lease: the active master as last read */
  private waitingActive: string | null = null
  private waitingActiveKey: string | null = null

  constructor (private readonly opts: MasterRoleOptions) {
    super()
    this.election = new MasterElection({
      store: opts.store,
      holder: opts.signer.publicKey,
      address: opts.address,
      ttlMs: opts.leaseTtlMs,
      // a standby tries four times per TTL: it takes over at most a quarter TTL after expiry
      renewEveryMs: Math.max(50, Math.floor(opts.leaseTtlMs / 4)),
      log: opts.log
    })
    this.election.on('change', state => { this.onElection(state) })
  }

  get isActive (): boolean { return this.election.isActive }
  /** Active with its writer lease confirmed in time: only then may it grant worker leases. */
  get holdsLease (): boolean { return this.election.holdsLease }

  /**
   * The active master's p2p address, as the lease row says: null when none holds it, and when
   * the row last read names this master although it stands by (it just lost the lease and
   * does not know the new writer yet).
   */
  get activeAddress (): string | null {
    if (!this.electing) return this.waitingActive
    const { holder, holderAddress } = this.election.state
    return holder === this.opts.signer.publicKey && !this.isActive ? null : holderAddress
  }

  /** Whether the ledger trusts this master's key, so it runs for the writer lease. */
  get trusted (): boolean { return this.electing }

  /** The active master's key, with its address (activeAddress): null when that is. */
  get activeKey (): string | null {
    if (this.activeAddress === null) return null
    return this.electing ? this.election.state.holder : this.waitingActiveKey
  }

  /**
   * The error a standby answers writes with: names the active master, by address and key, so
   * clients go there, and only if that key is a master they trust (MasterList's activeHint).
   */
  notActiveError (): LedgerMeshError {
    const active = this.activeAddress
    const key = this.activeKey
    return new LedgerMeshError('not_active', `this master stands by: ${active === null ? 'no master holds the writer lease right now' : `the active master is ${active}`}`, active === null ? {} : { active, ...(key === null ? {} : { active_key: key }) })
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    // it stands by, fenced, until it wins the lease
    this.opts.store.setFence({ holder: this.opts.signer.publicKey, epoch: -1 })
    await this.refreshRegistry()
    await this.step()
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    await this.loop
    const wasActive = this.election.isActive
    await this.election.stop()
    this.wasActive = false
    if (wasActive) this.emit('active', false)
  }

  status (): ProcessStatus {
    if (!this.running) return { status: 'Not declared' }
    if (!this.electing) return { status: 'Running', details: 'Waiting: its key is registered in the database, not yet declared on the ledger by the active master' }
    return this.election.status()
  }

  summary (): MasterRoleSummary {
    const state = this.election.state
    const trusted = new Set(this.opts.ledger.masterKeys)
    return {
      role: !this.electing ? 'waiting' : state.role,
      since: (this.electing ? state.since : this.startedAt).toISOString(),
      epoch: state.epoch,
      active_master: state.holderAddress,
      lease_renewed: state.renewed?.toISOString() ?? null,
      masters: this.registered.map(m => ({ name: m.name, key: m.key, address: m.address, trusted: trusted.has(m.key), seen: m.seen.toISOString() }))
    }
  }

  /** The masters registered in the database, read now. */
  async registeredMasters (): Promise<RegisteredMaster[]> {
    this.registered = await this.opts.store.registeredMasters()
    return this.registered
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.loop = this.step().finally(() => { this.schedule() })
    }, FOLLOW_EVERY_MS)
    this.timer.unref()
  }

  /** One round: follow the writer while standing by; join the election once trusted; keep the registry. */
  private async step (): Promise<void> {
    try {
      if (!this.election.isActive) await this.opts.ledger.followStore()
      if (!this.electing && !this.opts.ledger.masterKeys.includes(this.opts.signer.publicKey)) {
        const lease = await this.opts.store.readLease()
        this.waitingActive = lease.live ? lease.address : null
        this.waitingActiveKey = lease.live ? lease.holder : null
      } else if (!this.electing) {
        this.electing = true
        this.opts.log.info('this master\'s key is trusted on the ledger: it runs for the writer lease')
        await this.election.start()
        this.emit('trusted')
      }
      if (Date.now() - this.lastRegistry >= REGISTRY_EVERY_MS) await this.refreshRegistry()
      this.lastError = undefined
    } catch (err) {
      const message = errorMessage(err)
      if (message !== this.lastError) this.opts.log.warn({ err: message }, 'master role: a step failed (tried again shortly)')
      this.lastError = message
    }
  }

  /** Registers this master (its `seen` is its heartbeat) and, while active, declares new masters' keys. */
  private async refreshRegistry (): Promise<void> {
    this.lastRegistry = Date.now()
    const { signer, name, address, store } = this.opts
    await store.registerMaster({ key: signer.publicKey, name, address })
    await this.registeredMasters()
    if (this.election.isActive && this.opts.approval === 'auto') {
      await declareRegisteredMasters({ ledger: this.opts.ledger, registry: { registeredMasters: async () => this.registered }, signer, log: this.opts.log })
    }
  }

  private onElection (state: ElectionState): void {
    const active = state.role === 'active'
    if (active === this.wasActive) return
    this.wasActive = active
    if (active) {
      // what the previous writer committed since the last follow is read before the first write
      this.opts.ledger.markStoreUncertain()
      this.emit('active', true)
      this.lastRegistry = 0
    } else {
      this.emit('active', false)
    }
  }
}
