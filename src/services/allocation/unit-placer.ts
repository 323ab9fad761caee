import type { NodeLease, Unplaced } from './placement.js'
import type { PlacerAssignment, PlacerNode, PlacerUnit, StepRules, StepRound } from './step-rules.js'
import { SortedNames } from './sorted-names.js'

/**
 * One step of placement (sub-accounts onto slaves, or profiles onto workers) kept up to date
 * change by change: the rules of placement.ts, which stays the reference (a full round), but
 * each round looks only at what the changes since the last round can affect. Property tests
 * (test/placement-incremental.test.ts) hold the two to the same plans over random sequences
 * of changes.
 *
 * What a round may look at, and why that is enough:
 * - an assignment's validity depends on its unit, its node, the node's lease and (for
 *   profiles) the sub-account's slave, and on the unit's other assignments (one counts): so
 *   the assignments of a unit are checked again whenever one of those changes;
 * - an unassigned unit's outcome depends on the unit, on what still runs it (reports,
 *   releases, assignments being deleted), on whether any node's lease is unknown, and on the
 *   nodes of its pool (its sub-account's slave and its kind; every slave, or its pinned one):
 *   a unit is looked at again when one of the first three changes, and the units waiting on a
 *   pool (no candidate last time) when a node of that pool may take one more unit. They are
 *   taken in name order, as the full round takes them, until the first finds no candidate:
 *   loads only grow within a round, so the rest of that pool would find none either.
 */

interface Held<S> extends PlacerAssignment {
  /** the assignment as it was put (what the full round's input lists) */
  source: S
  order: number
  /** counted on its node's load (it holds, or it is kept) */
  counted: boolean
  /** why it is to be deleted */
  invalid?: string
}

/** what a node without a live lease reports running */
const NOTHING_RUNNING: ReadonlySet<string> = new Set()

export class UnitPlacer<U extends PlacerUnit, N extends PlacerNode, S> {
  private readonly units = new Map<string, U>()
  private readonly unitById = new Map<string, string>()
  private readonly nodes = new Map<string, N>()
  private readonly nodesByPool = new Map<string, Set<string>>()
  private readonly assignments = new Map<string, Held<S>>()
  private readonly byUnit = new Map<string, string[]>()
  private readonly byNode = new Map<string, Set<string>>()
  private readonly leases = new Map<string, NodeLease>()
  private defaultState: 'unknown' | 'expired' = 'unknown'
  /** unit → node, from the assignments that hold (facts: not this round's puts) */
  private readonly assignedTo = new Map<string, string>()
  private readonly counted = new Map<string, number>()
  /** per node: units it reports running that are not assigned to it */
  private readonly extra = new Map<string, number>()
  /** unit id → the live nodes reporting it running */
  private readonly reporters = new Map<string, Set<string>>()
  /** unit name → nodes that have not shown it stopped since its assignment there went away, in order */
  private releasing = new Map<string, string[]>()
  /** declared nodes whose lease is unknown (any: nothing is placed) */
  private unknownNodes = 0
  private wasUnknown = false
  /** per pool, the units that found no candidate in it, by name; and each such unit's pool */
  private readonly waiting = new Map<string, SortedNames>()
  private readonly waitingIn = new Map<string, string>()
  /** pools that ran out of candidates in the round under way */
  private stopped = new Set<string>()
  private readonly unplacedUnits = new Map<string, Unplaced>()
  private readonly movingUnits = new Map<string, string>()
  private order = 0
  // what changed since the last round
  private readonly recheck = new Set<string>()
  private readonly dirty = new Set<string>()
  private readonly touched = new Set<string>()
  private readonly extraDirty = new Set<string>()
  private everything = true
  /** this round's puts, until the next round (the ledger then says whether they landed) */
  private puts = new Map<string, string>()
  /** per node, this round's puts on it */
  private putLoad = new Map<string, number>()
  /** assignments to be deleted */
  private readonly invalidIds = new Set<string>()

  constructor (private readonly rules: StepRules<U, N>) {}

  // ---- inputs ----

  setUnit (name: string, unit: U | undefined): void {
    const previous = this.units.get(name)
    if (previous !== undefined) {
      this.unitById.delete(previous.id)
      this.reportersChanged(previous.id)
    }
    if (unit === undefined) {
      this.units.delete(name)
      this.unplacedUnits.delete(name)
      this.movingUnits.delete(name)
      this.leaveWaiting(name)
    } else {
      this.units.set(name, unit)
      this.unitById.set(unit.id, name)
      this.reportersChanged(unit.id)
    }
    this.recheck.add(name)
    this.dirty.add(name)
  }

  setNode (name: string, node: N | undefined): void {
    const previous = this.nodes.get(name)
    if (previous !== undefined) for (const pool of this.rules.poolsOf(previous)) this.nodesByPool.get(pool)?.delete(name)
    if (previous !== undefined && this.leaseOf(name).state === 'unknown') this.unknownNodes--
    if (node === undefined) this.nodes.delete(name)
    else {
      this.nodes.set(name, node)
      for (const pool of this.rules.poolsOf(node)) {
        let set = this.nodesByPool.get(pool)
        if (set === undefined) { set = new Set(); this.nodesByPool.set(pool, set) }
        set.add(name)
      }
      if (this.leaseOf(name).state === 'unknown') this.unknownNodes++
    }
    this.nodeChanged(name)
  }

  putAssignment (a: PlacerAssignment, source: S): void {
    if (this.assignments.has(a.id)) this.deleteAssignment(a.id)
    this.assignments.set(a.id, { ...a, source, order: this.order++, counted: false })
    const ids = this.byUnit.get(a.unit)
    if (ids === undefined) this.byUnit.set(a.unit, [a.id])
    else ids.push(a.id)
    let onNode = this.byNode.get(a.node)
    if (onNode === undefined) { onNode = new Set(); this.byNode.set(a.node, onNode) }
    onNode.add(a.id)
    this.recheck.add(a.unit)
  }

  deleteAssignment (id: string): void {
    const a = this.assignments.get(id)
    if (a === undefined) return
    if (a.counted) this.addCount(a.node, -1)
    this.assignments.delete(id)
    this.invalidIds.delete(id)
    const ids = this.byUnit.get(a.unit)!.filter(x => x !== id)
    if (ids.length === 0) this.byUnit.delete(a.unit)
    else this.byUnit.set(a.unit, ids)
    const onNode = this.byNode.get(a.node)
    onNode?.delete(id)
    if (onNode?.size === 0) this.byNode.delete(a.node)
    this.recheck.add(a.unit)
    this.dirty.add(a.unit)
  }

  /** A node's lease (undefined: none since the master started). */
  setLease (name: string, lease: NodeLease | undefined): void {
    const before = this.leaseOf(name)
    if (this.nodes.has(name) && before.state === 'unknown') this.unknownNodes--
    if (lease === undefined) this.leases.delete(name)
    else this.leases.set(name, lease)
    const after = this.leaseOf(name)
    if (this.nodes.has(name) && after.state === 'unknown') this.unknownNodes++
    const ranBefore = before.state === 'live' ? before.running : NOTHING_RUNNING
    const ranAfter = after.state === 'live' ? after.running : NOTHING_RUNNING
    for (const id of ranBefore) if (!ranAfter.has(id)) this.report(id, name, false)
    for (const id of ranAfter) if (!ranBefore.has(id)) this.report(id, name, true)
    this.extraDirty.add(name)
    this.nodeChanged(name)
  }

  /** The lease state of nodes that have none: unknown at first, expired once TTL + grace passed. */
  setDefaultLease (state: 'unknown' | 'expired'): void {
    if (state === this.defaultState) return
    // declared nodes, and undeclared ones that assignments still name
    for (const name of new Set([...this.nodes.keys(), ...this.byNode.keys()])) {
      if (this.leases.has(name)) continue
      if (this.nodes.has(name)) {
        if (this.defaultState === 'unknown') this.unknownNodes--
        if (state === 'unknown') this.unknownNodes++
      }
      this.nodeChanged(name)
    }
    this.defaultState = state
  }

  /** Units (by name) whose assignment on a node went away and that it has not shown stopped. */
  setReleasing (entries: ReadonlyArray<{ node: string, name: string }>): void {
    const next = new Map<string, string[]>()
    for (const { node, name } of entries) {
      const nodes = next.get(name)
      if (nodes === undefined) next.set(name, [node])
      else nodes.push(node)
    }
    for (const name of new Set([...this.releasing.keys(), ...next.keys()])) {
      const a = this.releasing.get(name)
      const b = next.get(name)
      if (a === undefined || b === undefined || a.length !== b.length || a.some((n, i) => n !== b[i])) this.dirty.add(name)
    }
    this.releasing = next
  }

  /** The assignments of `unit` are checked again next round (something their validity reads changed). */
  recheckUnit (unit: string): void { this.recheck.add(unit); this.dirty.add(unit) }

  // ---- reads ----

  unit (name: string): U | undefined { return this.units.get(name) }
  node (name: string): N | undefined { return this.nodes.get(name) }
  allUnits (): IterableIterator<U> { return this.units.values() }
  allNodes (): IterableIterator<N> { return this.nodes.values() }
  leaseOf (name: string): NodeLease {
    return this.leases.get(name) ?? { state: this.defaultState, draining: false, running: NOTHING_RUNNING }
  }

  /** The node of a unit: its assignment that holds, or this round's put. */
  nodeOf (unit: string): string | undefined { return this.puts.get(unit) ?? this.assignedTo.get(unit) }
  /** The assignments as put, in the order they were put (a Map iterates in insertion order; a put again moves to the end). */
  assignmentsInOrder (): S[] {
    return Array.from(this.assignments.values(), a => a.source)
  }

  releasingEntries (): Array<{ node: string, name: string }> {
    return [...this.releasing].flatMap(([name, nodes]) => nodes.map(node => ({ node, name })))
  }

  reports (): Array<{ node: string, running: ReadonlySet<string> }> {
    // (a report of nothing running changes no plan: left out)
    const reports: Array<{ node: string, running: ReadonlySet<string> }> = []
    for (const [node, l] of this.leases) if (l.state === 'live' && l.running.size > 0) reports.push({ node, running: l.running })
    return reports
  }

  unplaced (): Unplaced[] { return [...this.unplacedUnits.values()].sort((a, b) => a.name < b.name ? -1 : 1) }
  moving (): Array<{ unit: string, from: string }> {
    return [...this.movingUnits].sort(([a], [b]) => a < b ? -1 : 1).map(([unit, from]) => ({ unit, from }))
  }

  // ---- the round ----

  round (): StepRound<U> {
    const previousPuts = this.puts
    this.puts = new Map()
    this.putLoad = new Map()
    const before = new Map<string, string | undefined>()
    const remember = (unit: string): void => { if (!before.has(unit)) before.set(unit, previousPuts.get(unit) ?? this.assignedTo.get(unit)) }
    for (const [unit, node] of previousPuts) { remember(unit); this.dirty.add(unit); this.touched.add(node) }
    for (const unit of this.recheck) { remember(unit); this.validate(unit) }
    this.recheck.clear()
    for (const node of this.extraDirty) this.countExtra(node)
    this.extraDirty.clear()

    const unknown = this.unknownNodes > 0
    if (unknown !== this.wasUnknown) { this.everything = true; this.wasUnknown = unknown }
    const candidates = this.everything ? [...this.units.keys()] : [...this.dirty]
    for (const unit of candidates) remember(unit)
    this.everything = false
    this.dirty.clear()
    const pools = new Set<string>()
    for (const name of this.touched) {
      const node = this.nodes.get(name)
      if (node !== undefined && this.takes(name, node)) for (const pool of this.rules.poolsOf(node)) pools.add(pool)
    }
    this.touched.clear()

    for (const unit of this.inNameOrder(candidates.sort(), pools)) this.evaluate(unit, unknown)

    const moved = new Set<string>()
    for (const [unit, node] of before) if (this.nodeOf(unit) !== node) moved.add(unit)
    for (const unit of this.puts.keys()) if (!before.has(unit)) moved.add(unit)
    const deletes = [...this.invalidIds].map(id => this.assignments.get(id)!).sort((a, b) => a.order - b.order).map(a => ({ id: a.id, reason: a.invalid! }))
    const puts = [...this.puts].sort(([a], [b]) => a < b ? -1 : 1).map(([unit, node]) => ({ unit: this.units.get(unit)!, node }))
    return { deletes, puts, moved }
  }

  /** Every unit looked at again in the next round (the periodic check, and lease tables rebuilt). */
  markAll (): void { this.everything = true; for (const unit of this.byUnit.keys()) this.recheck.add(unit); for (const node of this.leases.keys()) this.extraDirty.add(node) }

  /**
   * The dirty units and the units waiting on `pools`, merged in name order. A pool's waiting
   * units are taken until the first finds no candidate (evaluate stops the pool).
   */
  private * inNameOrder (dirty: string[], pools: Set<string>): Generator<string> {
    const cursors = new Map<string, string | undefined>([...pools].map(pool => [pool, undefined]))
    this.stopped = new Set()
    let i = 0
    const seen = new Set<string>()
    for (;;) {
      let next: string | undefined
      let from: string | undefined
      if (i < dirty.length) { next = dirty[i]; from = undefined }
      for (const [pool, after] of cursors) {
        if (this.stopped.has(pool)) { cursors.delete(pool); continue }
        const name = this.waiting.get(pool)?.firstAfter(after)
        if (name === undefined) { cursors.delete(pool); continue }
        if (next === undefined || name < next) { next = name; from = pool }
      }
      if (next === undefined) return
      if (from === undefined) i++
      else cursors.set(from, next)
      if (seen.has(next)) continue
      seen.add(next)
      yield next
    }
  }

  private evaluate (name: string, unknown: boolean): void {
    const unit = this.units.get(name)
    this.leaveWaiting(name)
    this.movingUnits.delete(name)
    this.unplacedUnits.delete(name)
    if (unit === undefined || this.assignedTo.has(name) || this.puts.has(name)) return
    const unplaced = (reason: string): void => { this.unplacedUnits.set(name, { type: this.rules.type, name, reason }) }
    const blocked = this.rules.blocked(unit)
    if (blocked !== undefined) { unplaced(blocked); return }
    const from = this.stillOn(unit)
    if (from !== undefined) {
      this.movingUnits.set(name, from)
      unplaced(this.rules.waitingFor(from))
      return
    }
    if (unknown) { unplaced(this.rules.unknown); return }
    const pool = this.rules.pool(unit)
    if ('reason' in pool) { unplaced(pool.reason); return }
    let best: string | undefined
    let bestFree = 0
    for (const nodeName of this.nodesByPool.get(pool.key) ?? []) {
      const node = this.nodes.get(nodeName)!
      const free = this.free(nodeName, node)
      if (free <= 0 || free < bestFree || (free === bestFree && best !== undefined && best < nodeName)) continue
      const lease = this.leaseOf(nodeName)
      if (lease.state !== 'live' || lease.draining) continue
      best = nodeName
      bestFree = free
    }
    if (best === undefined) {
      unplaced(this.rules.noCandidate(unit))
      let list = this.waiting.get(pool.key)
      if (list === undefined) { list = new SortedNames(); this.waiting.set(pool.key, list) }
      list.add(name)
      this.waitingIn.set(name, pool.key)
      this.stopped.add(pool.key)
      return
    }
    this.puts.set(name, best)
    this.putLoad.set(best, (this.putLoad.get(best) ?? 0) + 1)
  }

  /** Slots left on a node: its slots less what holds there, what it runs unassigned, and this round's puts. */
  private free (name: string, node: N): number {
    return node.slots - (this.counted.get(name) ?? 0) - (this.extra.get(name) ?? 0) - (this.putLoad.get(name) ?? 0)
  }

  private takes (name: string, node: N): boolean {
    const lease = this.leaseOf(name)
    return lease.state === 'live' && !lease.draining && this.free(name, node) > 0
  }

  /** The node that may still run an unassigned unit: one reporting it, else one releasing it, else one whose assignment of it is being deleted. */
  private stillOn (unit: U): string | undefined {
    let last: string | undefined
    for (const node of this.reporters.get(unit.id) ?? []) if (last === undefined || node > last) last = node
    if (last !== undefined) return last
    const releasing = this.releasing.get(unit.name)
    if (releasing !== undefined) return releasing[0]
    for (const id of this.byUnit.get(unit.name) ?? []) {
      const a = this.assignments.get(id)!
      if (a.invalid !== undefined && this.leaseOf(a.node).state !== 'expired') return a.node
    }
    return undefined
  }

  /** The full round's first loop, for one unit's assignments. */
  private validate (unitName: string): void {
    const unit = this.units.get(unitName)
    const previous = this.assignedTo.get(unitName)
    let holder: string | undefined
    for (const id of this.byUnit.get(unitName) ?? []) {
      const a = this.assignments.get(id)!
      const lease = this.leaseOf(a.node)
      let { reason, gone } = this.rules.check(a, unit, this.nodes.get(a.node), lease)
      const twice = reason === undefined && holder !== undefined
      if (twice) reason = this.rules.twice(unitName)
      const kept = reason !== undefined && !gone && !twice && this.rules.keeps(unit)
      const counts = reason === undefined || kept
      a.invalid = counts ? undefined : reason
      if (a.invalid === undefined) this.invalidIds.delete(id)
      else this.invalidIds.add(id)
      if (counts) holder = a.node
      if (counts !== a.counted) { a.counted = counts; this.addCount(a.node, counts ? 1 : -1) }
    }
    if (holder === undefined) this.assignedTo.delete(unitName)
    else this.assignedTo.set(unitName, holder)
    if (holder !== previous) {
      const id = unit?.id
      if (id !== undefined) for (const node of this.reporters.get(id) ?? []) this.extraDirty.add(node)
      if (previous !== undefined) this.extraDirty.add(previous)
      if (holder !== undefined) this.extraDirty.add(holder)
    }
    this.dirty.add(unitName)
  }

  private countExtra (node: string): void {
    const lease = this.leaseOf(node)
    let extra = 0
    if (lease.state === 'live') {
      for (const id of lease.running) {
        const unit = this.unitById.get(id)
        if (unit === undefined || this.assignedTo.get(unit) !== node) extra++
      }
    }
    if (extra !== (this.extra.get(node) ?? 0)) this.touched.add(node)
    if (extra === 0) this.extra.delete(node)
    else this.extra.set(node, extra)
  }

  private addCount (node: string, by: number): void {
    const n = (this.counted.get(node) ?? 0) + by
    if (n === 0) this.counted.delete(node)
    else this.counted.set(node, n)
    this.touched.add(node)
  }

  private report (id: string, node: string, running: boolean): void {
    let set = this.reporters.get(id)
    if (running) {
      if (set === undefined) { set = new Set(); this.reporters.set(id, set) }
      set.add(node)
    } else if (set !== undefined) {
      set.delete(node)
      if (set.size === 0) this.reporters.delete(id)
    }
    const unit = this.unitById.get(id)
    if (unit !== undefined) this.dirty.add(unit)
  }

  /** A unit with this id appeared or went: the nodes reporting the id count it differently. */
  private reportersChanged (id: string): void {
    for (const node of this.reporters.get(id) ?? []) this.extraDirty.add(node)
  }

  private nodeChanged (name: string): void {
    for (const id of this.byNode.get(name) ?? []) this.recheck.add(this.assignments.get(id)!.unit)
    this.touched.add(name)
    this.extraDirty.add(name)
  }

  private leaveWaiting (name: string): void {
    const pool = this.waitingIn.get(name)
    if (pool === undefined) return
    this.waiting.get(pool)?.delete(name)
    this.waitingIn.delete(name)
  }
}
