import { EventEmitter } from 'node:events'
import { errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { WriterFence, WriterLease } from '../ledger/pg-store.js'
import type { ProcessStatus, Service } from './service.js'

/** What the election needs of the store: the writer lease and the commit fence (PgStore). */
export interface LeaseStore {
  acquireLease: (holder: string, address: string, ttlMs: number) => Promise<WriterLease>
  releaseLease: (holder: string) => Promise<void>
  setFence: (fence: WriterFence | undefined) => void
}

/** A fence no lease ever has: a standby's commits are all refused. */
const NO_EPOCH = -1

export interface ElectionOptions {
  store: LeaseStore
  /** this master's public key */
  holder: string
  /** its p2p address (ip:port), shown to the others while it is active */
  address: string
  /** how long a lease lasts from each renewal, by the database's clock */
  ttlMs: number
  /** how often the lease is renewed or tried for (default a third of ttlMs) */
  renewEveryMs?: number
  log: Logger
}

export interface ElectionState {
  role: 'active' | 'standby'
  /** the lease as last read: its holder, the holder's address and the epoch */
  holder: string | null
  holderAddress: string | null
  epoch: number
  /** when this master last became active or standby */
  since: Date
  /** the last renewal of the lease, by whichever master holds it */
  renewed: Date | null
}

/**
 * Which of several masters over one PostgreSQL database writes: each tries for the writer
 * lease every `renewEveryMs`; the holder renews it, the others stand by. The store's commits
 * are fenced by the epoch this master holds, so a master whose lease lapsed (paused, cut off)
 * writes nothing even before it notices. A master that cannot confirm its lease by its own
 * clock within the TTL (less a margin for clock rates) steps down by itself.
 */
export class MasterElection extends EventEmitter<{ change: [ElectionState] }> implements Service {
  readonly name = 'Master Election'
  private timer?: NodeJS.Timeout
  private running = false
  private attempt?: Promise<void>
  private current: ElectionState = { role: 'standby', holder: null, holderAddress: null, epoch: 0, since: new Date(), renewed: null }
  /** by this process's monotonic clock: the lease is surely held until then */
  private heldUntil = 0
  /** says so at heldUntil unless a renewal moved it on (holdsLease is false from then on) */
  private watchdog?: NodeJS.Timeout
  /** set by the watchdog, cleared by the next renewal that holds the lease */
  private unconfirmed = false
  private lastError?: string

  constructor (private readonly opts: ElectionOptions) {
    super()
  }

  get state (): ElectionState { return this.current }
  get isActive (): boolean { return this.current.role === 'active' }
  /** Active, and its lease confirmed by the database within the TTL, by this process's clock. */
  get holdsLease (): boolean { return this.isActive && performance.now() < this.heldUntil }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.opts.store.setFence({ holder: this.opts.holder, epoch: NO_EPOCH })
    await this.tick()
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    clearTimeout(this.watchdog)
    await this.attempt
    const wasActive = this.isActive
    this.opts.store.setFence({ holder: this.opts.holder, epoch: NO_EPOCH })
    this.update({ ...this.current, role: 'standby', since: wasActive ? new Date() : this.current.since })
    // a clean stop hands the lease over at once instead of letting it run out
    if (wasActive) await this.opts.store.releaseLease(this.opts.holder).catch(() => {})
  }

  status (): ProcessStatus {
    if (!this.running) return { status: 'Not declared' }
    const { role, epoch, holderAddress } = this.current
    const error = this.lastError === undefined ? '' : `, last error: ${this.lastError}`
    return { status: 'Running', details: `${role === 'active' ? 'Active' : `Standby (active: ${holderAddress ?? 'none'})`}, epoch ${epoch}${error}` }
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = setTimeout(() => { void this.tick().finally(() => { this.schedule() }) }, this.opts.renewEveryMs ?? Math.max(50, Math.floor(this.opts.ttlMs / 3)))
    this.timer.unref()
  }

  /** One try: renew (or take) the lease, then act on what the database says. */
  private async tick (): Promise<void> {
    const run = async (): Promise<void> => {
      const asked = performance.now()
      try {
        const lease = await this.opts.store.acquireLease(this.opts.holder, this.opts.address, this.opts.ttlMs)
        this.lastError = undefined
        const mine = lease.holder === this.opts.holder && lease.live
        // trust the lease from when it was asked for, less a tenth for clock rates
        if (mine) this.heldUntil = asked + this.opts.ttlMs * 0.9
        if (mine && this.unconfirmed) this.opts.log.info('writer lease confirmed again: worker leases are granted again')
        if (mine) this.unconfirmed = false
        this.observe(lease, mine)
        if (mine) this.armWatchdog()
      } catch (err) {
        this.lastError = errorMessage(err)
        this.opts.log.warn({ err: this.lastError }, 'writer lease: the database did not answer')
        if (this.isActive && performance.now() >= this.heldUntil) this.observe(undefined, false)
      }
    }
    this.attempt = run()
    await this.attempt
  }

  /**
   * A renewal that hangs (a database call stuck for seconds) neither fails nor moves heldUntil
   * on: from heldUntil, holdsLease is false, so the allocator grants no worker lease, whatever
   * the call is doing (commits are fenced by the database anyway). This timer says so in the
   * log and the status. The master stays active meanwhile: a renewal that answers late but
   * still holds the lease costs no hand-over (a stand-down restarts the allocator, whose new
   * table waits for every worker again); one that fails steps it down (tick()).
   */
  private armWatchdog (): void {
    clearTimeout(this.watchdog)
    this.watchdog = setTimeout(() => {
      if (!this.running || !this.isActive) return
      // a timer may fire a little early on the loop's millisecond clock: wait out the rest
      if (performance.now() < this.heldUntil) { this.armWatchdog(); return }
      this.unconfirmed = true
      this.lastError = `the writer lease was not confirmed within its ${this.opts.ttlMs} ms TTL: no worker lease is granted until it is`
      this.opts.log.warn({ err: this.lastError }, 'writer lease not confirmed in time')
    }, Math.max(0, this.heldUntil - performance.now()) + 1)
    this.watchdog.unref()
  }

  private observe (lease: WriterLease | undefined, mine: boolean): void {
    const role = mine ? 'active' : 'standby'
    this.opts.store.setFence({ holder: this.opts.holder, epoch: mine ? lease!.epoch : NO_EPOCH })
    const next: ElectionState = {
      role,
      holder: lease?.holder ?? this.current.holder,
      holderAddress: lease?.address ?? this.current.holderAddress,
      epoch: lease?.epoch ?? this.current.epoch,
      since: role === this.current.role ? this.current.since : new Date(),
      renewed: lease?.renewed ?? this.current.renewed
    }
    if (role !== this.current.role || next.epoch !== this.current.epoch) {
      this.opts.log.info({ role, epoch: next.epoch, holder: next.holder, address: next.holderAddress }, role === 'active' ? 'this master is active: it holds the writer lease' : 'this master stands by')
    }
    this.update(next)
  }

  private update (next: ElectionState): void {
    const changed = next.role !== this.current.role || next.epoch !== this.current.epoch
    this.current = next
    if (changed) this.emit('change', next)
  }
}
