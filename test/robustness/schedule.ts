import fc from 'fast-check'

/**
 * The kinds of fault a run injects, each healed after `forMs`:
 * - kill: kill -9 of the node, started again on its home after forMs
 * - pause: SIGSTOP, SIGCONT after forMs
 * - clock: the node's wall clock steps an hour ahead, and back after forMs (its monotonic clock runs on)
 * - db-stall: a master's PostgreSQL connections hang (forward nothing either way), then go on
 * - db-cut: a master's PostgreSQL connections are cut and new ones refused, then allowed again
 * - drain: `worker drain` on a worker (its profiles move away), `worker resume` after forMs
 * - replace: a profile deleted and inserted again (a new id: its assignment goes away unrenewed)
 * - partition: a region cut off from the others through the link emulator (connections held), then healed
 * - reset: the same, but every connection across the cut reset at once, and new ones too
 * - slow-links: many more chunks stalled on every link (as after lost segments), then the usual again
 * (the last three only in a network of namespaces: on loopback there are no links to cut)
 * - pg-kill: kill -9 of the PostgreSQL primary's every process (a highly available cluster: the
 *   monitor promotes the standby); the killed node starts again after forMs and rejoins as a standby
 * - pg-stall: the primary's processes stopped (SIGSTOP) for forMs, then continued: a hung server,
 *   which the monitor fails over when it lasts past its health checks
 */
export type FaultKind = 'kill' | 'pause' | 'clock' | 'db-stall' | 'db-cut' | 'drain' | 'replace' | 'partition' | 'reset' | 'slow-links' | 'wipe' | 'pg-kill' | 'pg-stall'
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'pause', 'clock', 'db-stall', 'db-cut', 'drain', 'replace', 'partition', 'reset', 'slow-links', 'wipe', 'pg-kill', 'pg-stall']

/** One fault of a run, `atMs` after the clients started. */
export interface Fault {
  atMs: number
  kind: FaultKind
  /** the node's name (for replace: the profile's) */
  target: string
  /** how long the fault lasts before it heals */
  forMs: number
  /** set when injecting it failed (an admin operation refused): the report shows it */
  error?: string
}

/** What each kind of fault may hit: node names, master names (db faults), worker names, profile names. */
export interface FaultTargets {
  nodes: string[]
  /** nodes whose wall clock may step (not one whose clock times the process records) */
  clockNodes: string[]
  /** masters whose database connections pass through a proxy the run controls (none on LevelDB) */
  dbMasters: string[]
  workers: string[]
  profiles: string[]
  /** regions a link fault may cut off (none on loopback) */
  regions: string[]
  /** nodes whose ledger a wipe may lose (every node but the masters): they start again from a snapshot */
  replicas: string[]
  /** `primary` when the masters' PostgreSQL is a highly available cluster (pg-kill, pg-stall), else none */
  databases?: string[]
}

/** A revocation issued while the faults run: `revoke node` of the member's key on the active master. */
export interface Revocation { atMs: number, target: string }

/** Whether the seed revokes the member during the run, and when (the member is then left out of the faults). */
export function revocationFor (seed: number, runMs: number, member: string): Revocation | undefined {
  const [drawn] = fc.sample(fc.record({ revoke: fc.boolean(), at: fc.double({ min: 0.3, max: 0.7, noNaN: true }) }), { seed: seed ^ 0x5eed, numRuns: 1 })
  return drawn.revoke ? { atMs: Math.round(drawn.at * runMs), target: member } : undefined
}

/** The targets a kind of fault draws from. */
function targetsOf (kind: FaultKind, targets: FaultTargets): string[] {
  switch (kind) {
    case 'db-stall': case 'db-cut': return targets.dbMasters
    case 'pg-kill': case 'pg-stall': return targets.databases ?? []
    case 'drain': return targets.workers
    case 'wipe': return targets.replicas
    case 'replace': return targets.profiles
    case 'partition': case 'reset': case 'slow-links': return targets.regions
    case 'clock': return targets.clockNodes
    default: return targets.nodes
  }
}

/**
 * A run's faults, generated from its seed (fast-check's generator, so one seed always gives
 * the same schedule, which is printed and can be replayed with --seed): one per 15 s slot,
 * starting in the slot's first half and lasting 1 to 6 s (at most half the slot), so each is
 * healed before the next begins and every run ends with the whole network up. A kind with no
 * target in this network (db faults on LevelDB) is not drawn.
 */
export function scheduleFor (seed: number, runMs: number, targets: FaultTargets): Fault[] {
  const count = Math.max(1, Math.floor(runMs / 15_000))
  const slot = runMs / count
  const kinds = FAULT_KINDS.filter(kind => targetsOf(kind, targets).length > 0)
  // without bias: fast-check's first draws lean to the bounds (every start at 0, say)
  const fault = fc.noBias(fc.record({
    kind: fc.constantFrom(...kinds),
    pick: fc.nat(),
    // whole milliseconds: fc.double spreads over the floats' representation (nearly all near 0)
    startMs: fc.integer({ min: 0, max: Math.floor(slot / 2) }),
    forMs: fc.integer({ min: 1000, max: Math.max(1000, Math.min(6000, Math.floor(slot / 2))) })
  }))
  const [drawn] = fc.sample(fc.array(fault, { minLength: count, maxLength: count }), { seed, numRuns: 1 })
  return drawn.map((f, i) => {
    const list = targetsOf(f.kind, targets)
    return { atMs: Math.round(i * slot) + f.startMs, kind: f.kind, target: list[f.pick % list.length], forMs: f.forMs }
  })
}
