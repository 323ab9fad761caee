import { randomBytes } from 'node:crypto'
import { errorMessage } from '../../base/errors.js'
import type { ReplicaView } from './replica-view.js'
import type { Logger } from '../../base/logger.js'
import type { SealKey } from '../../policies/seal.js'
import type { Signer } from '../../policies/keys.js'
import { policyBody } from '../../policies/policy.js'
import type { LeaseGrant, LeaseProtocol, LeaseRequest } from '../../protocols/lease/index.js'
import type { ProcessStatus as ServiceStatus, Service } from '../service.js'
import { type MasterList, tcpAddress } from '../master-list.js'
import type { AssignmentWarnings } from './assignment-warnings.js'
import { ProfileSource } from './profile-source.js'
import type { ProcessSource } from './source.js'
import { SupervisedProcess, type ProcessSpec, type ProcessState, type ProcessStatus, processLabel } from './supervised-process.js'
import { Reaper } from './reaper.js'

/** How often the operator checks its lease's deadline and reconciles. */
const TICK_MS = 200
/** Retry a failed renewal this soon. */
const RETRY_MS = 500
/** Until the first grant says otherwise. */
const FIRST_RENEW_MS = 1000

interface OperatorCommon {
  ledger: ReplicaView
  lease: LeaseProtocol
  /** the masters (LEDGER_CONN and those the ledger declares): renewals go to the current one */
  masters: MasterList
  /** SIGTERM → SIGKILL when stopping a process (capped at half the master's grace) */
  stopGraceMs: number
  log: Logger
  /**
   * A light worker (LEDGER_MODE=light): renewals ask for a signed answer, and each grant is
   * checked by this before it counts (throws to refuse it: the lease is then not renewed).
   */
  checkGrant?: (grant: LeaseGrant, request: Omit<LeaseRequest, 'version'>) => void
}

/** What runs here: a source (ProfileSource, SubaccountSource), or a worker's profiles as the fields say. */
export type OperatorOptions = OperatorCommon & ({ source: ProcessSource } | {
  workerName: string
  /** the worker's identity key: it opens the profile settings the master sealed to this worker, and signs heartbeat proofs */
  signer: SealKey & Signer
  /** kind → command (PROFILE_RUNNER_<KIND>) */
  runners: Record<string, string>
})

/** where the node's replica store keeps its drain across restarts (a slave's apart, should one node be both) */
const DRAINING_META_KEY = { worker: 'operator.draining', slave: 'operator.draining.slave' } as const

interface LeaseState {
  /** performance.now() until which the lease holds: from when the renewal was *sent* */
  validUntil: number
  grant: LeaseGrant
}

/**
 * The "Operator" of a worker or a slave: it keeps the node's lease with the master and runs
 * one supervised process per unit its source says should run here: a worker's profiles, a
 * slave's processes per sub-account. The same rules hold for both.
 *
 * Safety (one profile never runs on two workers, one sub-account on two slaves): the lease is
 * counted from when a renewal was sent, so it lapses here no later than at the master; when it
 * lapses every process is stopped, SIGKILL included, within half the master's grace, before
 * the master may move them. After a grant, nothing starts until the replica holds the grant's
 * `minSeq`, so the node has seen any moves the master made while it was away.
 */
export class Operator implements Service {
  readonly name = 'Operator'
  readonly source: ProcessSource
  private readonly processes = new Map<string, SupervisedProcess>()
  private readonly reaper: Reaper
  private lease?: LeaseState
  private started = false
  private draining = false
  /** the one renewal loop's next renewal; set only while no renewal is in flight */
  private renewTimer?: NodeJS.Timeout
  private renewing = false
  /** an early renewal was asked for while one was in flight: send the next one as soon as it ends */
  private renewAgain = false
  /** drained because a `drain` policy names this node (its deletion resumes it) */
  private drainedByLedger = false
  /** callers waiting for a renewal that was sent after they asked (setDraining) */
  private renewWaiters: Array<() => void> = []
  /** this process's id for the master, new at every start: the master orders renewals by (boot, seq) */
  private boot = ''
  private seq = 0
  private tick?: NodeJS.Timeout
  private renewFailing?: string
  private waitingReason?: string
  /** assignments not started because their settings do not open here, as `get profiles` rows */
  private refused = new Map<string, ProcessStatus>()
  restartsTotal = 0

  constructor (private readonly opts: OperatorOptions) {
    this.reaper = new Reaper(opts.log)
    this.source = 'source' in opts ? opts.source : new ProfileSource({ ...opts, log: opts.log })
  }

  /** problems with assignments, each logged once; bounded (see AssignmentWarnings) */
  get warned (): AssignmentWarnings { return this.source.warned }
  get role (): ProcessSource['role'] { return this.source.role }
  /** without a command configured nothing can run: no reaper is started nor needed */
  private get needsReaper (): boolean { return this.source.runsAnything }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    // a drain outlives a restart, as Nomad's does: the node asked to be emptied
    const drained = await this.opts.ledger.store.getMeta(DRAINING_META_KEY[this.role]).catch(() => undefined)
    this.draining = drained === 'true' || drained === 'ledger'
    this.drainedByLedger = drained === 'ledger'
    if (this.needsReaper) this.reaper.start()
    this.opts.ledger.on('appended', this.reconcile)
    this.tick = setInterval(this.reconcile, TICK_MS)
    this.tick.unref()
    // a restarted worker counts its renewals from 1 again: a new boot id tells the master so
    this.boot = randomBytes(16).toString('hex')
    this.seq = 0
    this.renewNow()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    clearTimeout(this.renewTimer)
    this.renewTimer = undefined
    for (const resolve of this.renewWaiters.splice(0)) resolve()
    clearInterval(this.tick)
    this.opts.ledger.off('appended', this.reconcile)
    await Promise.all([...this.processes.values()].map(async p => { await p.stop(this.killGraceMs()) }))
    this.processes.clear()
    this.reaper.stop()
  }

  /** Nomad's drain: the master moves this node's profiles (sub-accounts) away and gives it no new ones. */
  async setDraining (draining: boolean, byLedger = false): Promise<void> {
    // the state first (the ledger check runs on every reconcile: it must see this at once)
    this.draining = draining
    this.drainedByLedger = draining && byLedger
    await this.opts.ledger.store.setMeta(DRAINING_META_KEY[this.role], draining && byLedger ? 'ledger' : String(draining))
    await this.renewSoon()
  }

  /**
   * A `drain` policy naming this node drains it, as the local command would; its deletion
   * resumes it (a drain asked locally stays until resumed locally).
   */
  private followLedgerDrain (): void {
    const asked = [...this.opts.ledger.state.policiesOfType('drain')].some(p => policyBody(p).node === this.source.nodeName)
    if (asked && !this.draining) {
      this.opts.log.info({ node: this.source.nodeName }, 'a drain policy names this node: draining')
      void this.setDraining(true, true)
    } else if (!asked && this.draining && this.drainedByLedger) {
      this.opts.log.info({ node: this.source.nodeName }, 'the drain policy was deleted: resuming')
      void this.setDraining(false)
    }
  }

  get isDraining (): boolean { return this.draining }

  private killGraceMs (): number {
    const grace = this.lease?.grant.graceMs
    return grace === undefined ? this.opts.stopGraceMs : Math.min(this.opts.stopGraceMs, Math.floor(grace / 2))
  }

  leaseValid (now = performance.now()): boolean {
    return this.lease !== undefined && now < this.lease.validUntil
  }

  /**
   * Renews as soon as possible and resolves once a renewal sent after this call has ended
   * (granted or not), so the master has heard what changed before the caller goes on.
   */
  private async renewSoon (): Promise<void> {
    if (!this.started) return
    const { promise, resolve } = Promise.withResolvers<void>()
    this.renewWaiters.push(resolve)
    this.renewNow()
    await promise
  }

  /**
   * Starts a renewal now, unless one is in flight: then that one is followed at once by
   * another. Either way there stays one renewal loop with at most one renewal in flight, so
   * renewals reach the master in the order they were sent.
   */
  private renewNow (): void {
    if (!this.started) return
    if (this.renewing) { this.renewAgain = true; return }
    clearTimeout(this.renewTimer)
    this.renewTimer = undefined
    void this.renew()
  }

  private async renew (): Promise<void> {
    this.renewing = true
    this.renewAgain = false
    const waiters = this.renewWaiters.splice(0)
    let sentAt = performance.now()
    let next = RETRY_MS
    try {
      // the head first: what runs is listed as of a head at least this one (see LeaseRequest.head)
      const head = this.opts.ledger.head.seq
      const running = [...this.processes.values()].filter(p => p.active).map(p => p.spec.unitId)
      // each known master once, past dead ones; this loop's own retry (RETRY_MS) does the rest.
      // Every attempt is a renewal of its own (a new seq), counted from when it was sent.
      const { masters } = this.opts
      const grant = await masters.withMaster(async address => {
        sentAt = performance.now()
        const request = {
          worker: this.source.nodeName,
          running: [...new Set(running)],
          draining: this.draining,
          boot: this.boot,
          seq: ++this.seq,
          role: this.role,
          head,
          ...(this.opts.checkGrant === undefined ? {} : { light: true })
        }
        const granted = await this.opts.lease.renew(tcpAddress(address), request)
        // a light worker's: signed for this request by a trusted master, or not a grant at all
        this.opts.checkGrant?.(granted, request)
        return granted
      }, { attempts: masters.size })
      const wasValid = this.leaseValid()
      this.lease = { validUntil: sentAt + grant.ttlMs, grant }
      // backstop if this process freezes: the reaper kills the processes once the lease and
      // the kill grace are over (the master waits the whole grace, twice as long). Sent as a
      // delay from now, which the reaper counts on its own monotonic clock: a wall-clock
      // deadline would move with a clock step (a step ahead would disarm it).
      this.reaper.killAfter((this.lease.validUntil - performance.now()) + this.killGraceMs() + 100)
      if (!wasValid || this.renewFailing !== undefined) this.opts.log.info({ ttlMs: grant.ttlMs, graceMs: grant.graceMs, minSeq: grant.minSeq }, 'lease granted by the master')
      this.renewFailing = undefined
      next = Math.max(100, Math.floor(grant.ttlMs / 3))
    } catch (err) {
      const message = errorMessage(err)
      if (this.renewFailing !== message) this.opts.log.warn({ err: message }, 'lease renewal failed')
      this.renewFailing = message
      next = this.lease === undefined ? FIRST_RENEW_MS : RETRY_MS
    }
    this.renewing = false
    try {
      this.reconcile()
    } finally {
      for (const resolve of waiters) resolve()
    }
    if (!this.started) return
    if (this.renewAgain) { this.renewNow(); return }
    this.renewTimer = setTimeout(() => { this.renewTimer = undefined; this.renewNow() }, next)
    this.renewTimer.unref()
  }

  /**
   * What should run now: what the source reads in the replica, or nothing without a valid
   * lease. `mayStart` is false until the replica holds the lease's minSeq: running processes
   * go on meanwhile (unless their assignment is gone), new ones wait.
   */
  private desired (): { wanted: Map<string, ProcessSpec>, mayStart: boolean } {
    this.refused = new Map()
    if (!this.leaseValid()) {
      this.waitingReason = this.lease === undefined ? 'no lease from the master yet' : 'the lease lapsed'
      return { wanted: new Map(), mayStart: false }
    }
    if (this.needsReaper && !this.reaper.alive) {
      // Without a reaper nothing would kill the processes if this node died or froze, and the
      // one-node rule counts on that: run none until a reaper is up again (Reaper restarts it).
      this.waitingReason = 'no process reaper running'
      return { wanted: new Map(), mayStart: false }
    }
    const mayStart = this.opts.ledger.head.seq >= this.lease!.grant.minSeq
    this.waitingReason = mayStart ? undefined : `waiting for the replica to reach seq ${this.lease!.grant.minSeq}`
    const { wanted, refused } = this.source.desired()
    this.refused = refused
    return { wanted, mayStart }
  }

  /** Starts what should run and is not, stops what runs and should not. */
  private readonly reconcile = (): void => {
    if (!this.started) return
    this.followLedgerDrain()
    const { wanted, mayStart } = this.desired()
    const lapsed = this.lease !== undefined && !this.leaseValid()
    const noReaper = this.needsReaper && !this.reaper.alive
    for (const [id, process] of this.processes) {
      if (wanted.has(id) || process.state === 'STOPPING') continue
      if (process.state === 'STOPPED') { this.processes.delete(id); continue }
      const { spec } = process
      if (lapsed) this.opts.log.warn({ [spec.unit]: spec.unitId, name: spec.name }, `lease lapsed: stopping ${processLabel(spec)} before the master moves it`)
      else if (noReaper) this.opts.log.warn({ [spec.unit]: spec.unitId, name: spec.name }, `no process reaper running: stopping ${processLabel(spec)}`)
      void process.stop(this.killGraceMs()).then(() => {
        if (this.processes.get(id) === process) this.processes.delete(id)
        // tell the master at once, so a move waiting for this stop does not wait a renewal
        if (this.started && this.leaseValid()) this.renewNow()
      })
    }
    if (!mayStart) return
    for (const [id, spec] of wanted) {
      if (this.processes.has(id)) continue
      const process = new SupervisedProcess(spec, {
        reaper: this.reaper,
        log: this.opts.log,
        onChange: () => { this.restartsTotal = [...this.processes.values()].reduce((n, p) => n + p.restarts, 0) },
        mayRun: () => this.leaseValid() && (this.reaper.alive || !this.needsReaper) && this.opts.ledger.head.seq >= (this.lease?.grant.minSeq ?? Infinity)
      })
      this.processes.set(id, process)
      process.start()
    }
  }

  /** Every process, and every assignment not started because of its settings (with its `problem`). */
  profiles (): ProcessStatus[] {
    return [...[...this.processes.values()].map(p => p.status()), ...this.refused.values()].sort((a, b) => a.name < b.name ? -1 : 1)
  }

  countByState (): Record<ProcessState, number> {
    const counts: Record<ProcessState, number> = { STARTING: 0, RUNNING: 0, STOPPING: 0, STOPPED: 0, ERROR: 0 }
    for (const p of this.processes.values()) counts[p.state]++
    counts.ERROR += this.refused.size
    return counts
  }

  leaseSummary (): { valid: boolean, expires_in_ms: number | null, draining: boolean, renew_error: string | null, waiting: string | null } {
    return {
      valid: this.leaseValid(),
      expires_in_ms: this.lease === undefined ? null : Math.round(this.lease.validUntil - performance.now()),
      draining: this.draining,
      renew_error: this.renewFailing ?? null,
      waiting: this.waitingReason ?? null
    }
  }

  status (): ServiceStatus {
    if (!this.started) return { status: 'Stopped' }
    const counts = this.countByState()
    const lease = this.leaseValid() ? 'valid' : this.renewFailing !== undefined ? `not renewed (${this.renewFailing})` : 'none'
    const refused = this.refused.size > 0 ? ` (${this.refused.size} not started: settings do not open, see get profiles)` : ''
    return { status: 'Running', details: `${this.source.label}: ${counts.RUNNING} running, ${counts.ERROR} in error${refused}, ${counts.STARTING + counts.STOPPING} changing, Lease: ${lease}${this.draining ? ', draining' : ''}` }
  }
}
