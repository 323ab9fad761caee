import { LedgerMeshError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import type { LeaseRequest, LeaseRole } from '../../protocols/lease/index.js'
import type { NodeLease } from './placement.js'

/** How many superseded boot ids of each node are remembered (their renewals are refused). */
const RETIRED_BOOTS_KEPT = 16

export interface LeaseRecord {
  peer: string
  /** performance.now() when the renewal was applied */
  renewedAt: number
  running: Set<string>
  draining: boolean
  expired: boolean
  /** the (boot, seq) of the renewal applied last; boot '' for a node without them */
  boot: string
  seq: number
  /** the node's replica head when it listed `running` */
  head: number
}

/** What `get profiles` and /v1/profiles show of one lease. */
export interface LeaseRow { state: NodeLease['state'], draining: boolean, running: number, renewed_ms_ago?: number }

/** What the units are called in log lines: a worker runs profiles, a slave sub-accounts. */
const UNITS: Record<LeaseRole, string> = { worker: 'profiles', slave: 'sub-accounts' }

/**
 * The master's leases, workers' and slaves' side by side (a slave and a worker may share a
 * name: they are kept apart by role). It counts on the monotonic clock (performance.now()),
 * never the wall clock: a step of the wall clock (NTP, `date -s`) must neither lapse a lease
 * that still holds nor extend one that lapsed. The allocator decides; this only remembers.
 */
export class LeaseTable {
  private readonly records: Record<LeaseRole, Map<string, LeaseRecord>> = { worker: new Map(), slave: new Map() }
  /** per role and node, the boot ids of its processes that a newer process replaced, newest last */
  private readonly retiredBoots: Record<LeaseRole, Map<string, string[]>> = { worker: new Map(), slave: new Map() }
  private readonly startedAt = performance.now()
  private unknownSettled = false

  constructor (private readonly opts: { ttlMs: number, graceMs: number, log: Logger }) {}

  private get limit (): number { return this.opts.ttlMs + this.opts.graceMs }

  get (role: LeaseRole, name: string): LeaseRecord | undefined { return this.records[role].get(name) }

  names (role: LeaseRole): string[] { return [...this.records[role].keys()] }

  /** A lease's state as the placement rules see it. */
  leaseOf (role: LeaseRole, name: string, now = performance.now()): NodeLease {
    const record = this.records[role].get(name)
    if (record === undefined) {
      return { state: now - this.startedAt > this.limit ? 'expired' : 'unknown', draining: false, running: new Set() }
    }
    return { state: record.expired ? 'expired' : 'live', draining: record.draining, running: record.running }
  }

  /**
   * Whether `node` has shown that `unit` no longer runs there since seq `deletedAt` removed its
   * assignment: a renewal listing its processes at a head past that delete, without it; or
   * its lease lapsed (a node never heard from since the master started: once it would have).
   */
  released (role: LeaseRole, node: string, unit: string, deletedAt: number): boolean {
    const record = this.records[role].get(node)
    if (record === undefined) return this.leaseOf(role, node).state === 'expired'
    return record.expired || (record.head >= deletedAt && !record.running.has(unit))
  }

  /** What every unexpired lease of `role` reports, declared node or not. */
  reports (role: LeaseRole): Array<{ name: string, running: ReadonlySet<string> }> {
    return [...this.records[role]].filter(([, r]) => !r.expired).map(([name, r]) => ({ name, running: r.running }))
  }

  /** The lease state of a node with no lease since the master started (see leaseOf), as of the last check(). */
  unrecordedState (): 'unknown' | 'expired' { return this.unknownSettled ? 'expired' : 'unknown' }

  /**
   * Marks leases that lapsed past TTL + grace (each told to `onLapsed`); true when something
   * changed (a round is due).
   */
  check (onLapsed?: (role: LeaseRole, name: string) => void): boolean {
    const now = performance.now()
    let changed = false
    for (const role of ['worker', 'slave'] as const) {
      for (const [name, record] of this.records[role]) {
        if (!record.expired && now - record.renewedAt > this.limit) {
          record.expired = true
          changed = true
          onLapsed?.(role, name)
          this.opts.log.warn({ [role]: name, silentMs: Math.round(now - record.renewedAt) }, `${role} lease lapsed: its ${UNITS[role]} will move`)
        }
      }
    }
    // nodes not heard from since the master started become `expired` at startedAt + limit
    if (!this.unknownSettled && now - this.startedAt > this.limit) {
      this.unknownSettled = true
      changed = true
    }
    return changed
  }

  /**
   * Refuses a renewal older than the one applied last for its node, so a renewal that took
   * longer on its way (or waited here) cannot put back an older running set or drain state:
   * the same boot with a seq not above the last applied one, or a boot a newer process of the
   * node has replaced. Refused rather than granted: a node sends one renewal at a time, so
   * only a renewal it has already given up on, or one from a process that should no longer run
   * anything (a second copy of the node), can be stale, and neither should hold a lease.
   * A node that predates boot ids (boot '') is applied in arrival order, as it always was.
   */
  refuseStale (role: LeaseRole, request: LeaseRequest): void {
    if (request.boot === '') return
    const last = this.records[role].get(request.worker)
    if (last !== undefined && last.boot === request.boot && request.seq <= last.seq) {
      throw new LedgerMeshError('conflict', `stale lease renewal from ${role} '${request.worker}': seq ${request.seq} arrived after seq ${last.seq} was applied`)
    }
    if (this.retiredBoots[role].get(request.worker)?.includes(request.boot) === true) {
      throw new LedgerMeshError('conflict', `lease renewal from a replaced process of ${role} '${request.worker}' (boot ${request.boot}): a newer process of the ${role} holds the lease`)
    }
  }

  /** Applies a renewal; true when what placement reads of it changed (a round is due). */
  apply (role: LeaseRole, request: LeaseRequest, peer: string): boolean {
    const name = request.worker
    const previous = this.records[role].get(name)
    const running = new Set(request.running)
    const changed = previous === undefined || previous.expired || previous.draining !== request.draining ||
      previous.running.size !== running.size || [...running].some(id => !previous.running.has(id))
    if (previous === undefined) {
      this.opts.log.info({ [role]: name, peer }, `${role} lease granted`)
    } else if (previous.draining !== request.draining) {
      this.opts.log.info({ [role]: name, draining: request.draining }, request.draining ? `${role} draining: moving its ${UNITS[role]}` : `${role} drain ended`)
    }
    if (previous !== undefined && previous.boot !== request.boot && previous.boot !== '') {
      const retired = this.retiredBoots[role].get(name) ?? []
      retired.push(previous.boot)
      this.retiredBoots[role].set(name, retired.slice(-RETIRED_BOOTS_KEPT))
      this.opts.log.info({ [role]: name, boot: request.boot, previousBoot: previous.boot }, `${role} lease renewed by a new process of the ${role}`)
    }
    this.records[role].set(name, { peer, renewedAt: performance.now(), running, draining: request.draining, expired: false, boot: request.boot, seq: request.seq, head: request.head ?? 0 })
    return changed
  }

  /** Every lease of `role` among `declared` names and those renewed, sorted by name. */
  rows (role: LeaseRole, declared: Iterable<string>, now = performance.now()): Record<string, LeaseRow> {
    const names = new Set([...this.records[role].keys(), ...declared])
    const rows: Record<string, LeaseRow> = {}
    for (const name of [...names].sort()) {
      const lease = this.leaseOf(role, name, now)
      const record = this.records[role].get(name)
      rows[name] = { state: lease.state, draining: lease.draining, running: lease.running.size, ...(record !== undefined ? { renewed_ms_ago: Math.round(now - record.renewedAt) } : {}) }
    }
    return rows
  }
}
