import t from 'tap'
import fc from 'fast-check'
import { type NodeLease, type Plan, planPlacement } from '../src/services/allocation/placement.js'
import { IncrementalPlacement } from '../src/services/allocation/incremental.js'

// The incremental placement against the full round it stands in for: random sequences of
// changes (nodes, sub-accounts and profiles put, replaced and deleted; assignments written,
// some of them wrong; leases granted, drained, lapsed, reporting units; releases; the plans
// written back, some of their writes lost), and after each round the incremental plan must be
// the full round's over the same inputs: the same deletes, puts, unplaced units with their
// reasons, and units waiting to move.

const SLAVES = ['s1', 's2', 's3']
const WORKERS = ['w1', 'w2', 'w3', 'w4', 'w5']
const SUBS = ['a', 'b', 'c']
const PROFILES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']
const KINDS = ['k1', 'k2', 'k3']
/** runs per property: many more under `npm run torture` */
const RUNS = process.env.TORTURE === '1' ? 30_000 : 600
const hex = (n: number) => n.toString(16).padStart(64, '0')

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 4 })
// running: units by name (their id at the time), or an id no unit has
const lease = fc.record({
  state: fc.constantFrom<'live' | 'expired' | 'unknown'>('live', 'live', 'live', 'live', 'expired', 'unknown'),
  draining: fc.constantFrom(false, false, false, true),
  running: fc.subarray([...PROFILES, ...SUBS, 'nothing'], { maxLength: 3 })
})

type Change =
  | { op: 'slave', name: string, slots?: number }
  | { op: 'worker', name: string, value?: { slave?: string, slots: number, kinds: string[] } }
  | { op: 'sub', name: string, value?: { slave?: string } }
  | { op: 'profile', name: string, value?: { kind: string, subaccount: string, held: boolean } }
  | { op: 'assign-sub', sub: string, slave: string }
  | { op: 'assign-profile', profile: string, worker: string, stale: boolean }
  | { op: 'unassign', pick: number }
  | { op: 'lease', role: 'worker' | 'slave', name: string, lease?: { state: 'live' | 'expired' | 'unknown', draining: boolean, running: string[] } }
  | { op: 'default-lease', state: 'unknown' | 'expired' }
  | { op: 'releasing', role: 'worker' | 'slave', entries: Array<{ node: string, name: string }> }
  | { op: 'round', keep: number[] }

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ op: fc.constant('slave' as const), name: fc.constantFrom(...SLAVES), slots: maybe(fc.nat(3)) }),
  fc.record({ op: fc.constant('worker' as const), name: fc.constantFrom(...WORKERS), value: maybe(fc.record({ slave: maybe(fc.constantFrom(...SLAVES)), slots: fc.nat(3), kinds: fc.subarray(KINDS) })) }),
  fc.record({ op: fc.constant('sub' as const), name: fc.constantFrom(...SUBS), value: maybe(fc.record({ slave: fc.option(fc.constantFrom(...SLAVES), { nil: undefined, freq: 2 }) })) }),
  fc.record({ op: fc.constant('profile' as const), name: fc.constantFrom(...PROFILES), value: maybe(fc.record({ kind: fc.constantFrom(...KINDS), subaccount: fc.constantFrom(...SUBS, 'zz'), held: fc.constantFrom(false, false, false, false, true) })) }),
  fc.record({ op: fc.constant('assign-sub' as const), sub: fc.constantFrom(...SUBS), slave: fc.constantFrom(...SLAVES, 'gone') }),
  { weight: 2, arbitrary: fc.record({ op: fc.constant('assign-profile' as const), profile: fc.constantFrom(...PROFILES), worker: fc.constantFrom(...WORKERS, 'gone'), stale: fc.constantFrom(false, false, false, true) }) },
  fc.record({ op: fc.constant('unassign' as const), pick: fc.nat() }),
  { weight: 3, arbitrary: fc.record({ op: fc.constant('lease' as const), role: fc.constantFrom<'worker' | 'slave'>('worker', 'worker', 'slave'), name: fc.constantFrom(...WORKERS, ...SLAVES, 'ghost'), lease: maybe(lease) }) },
  fc.record({ op: fc.constant('default-lease' as const), state: fc.constantFrom<'unknown' | 'expired'>('unknown', 'expired') }),
  fc.record({ op: fc.constant('releasing' as const), role: fc.constantFrom<'worker' | 'slave'>('worker', 'slave'), entries: fc.array(fc.record({ node: fc.constantFrom(...WORKERS, ...SLAVES), name: fc.constantFrom(...PROFILES, ...SUBS) }), { maxLength: 3 }) }),
  // a round, then its writes back as the allocator makes them, each kept with some chance
  fc.record({ op: fc.constant('round' as const), keep: fc.array(fc.nat(9), { minLength: 12, maxLength: 12 }) }),
  fc.record({ op: fc.constant('round' as const), keep: fc.constant(Array(12).fill(9)) }),
  fc.record({ op: fc.constant('round' as const), keep: fc.constant(Array(12).fill(9)) })
)

/** The same plan, whatever order each list is in. */
function normal (plan: Plan): object {
  const sorted = <T>(xs: T[]) => xs.map(x => JSON.stringify(x)).sort()
  return { deletes: sorted(plan.deletes), puts: sorted(plan.puts), unplaced: sorted(plan.unplaced), moving: sorted(plan.moving), movingSubaccounts: sorted(plan.movingSubaccounts) }
}

/** Runs the changes against an IncrementalPlacement, comparing every round with the full one; answers the number of rounds compared. */
function run (changes: Change[], roundEvery: boolean, startExpired: boolean, withFleet: boolean): number {
  const model = new IncrementalPlacement()
  // mostly as a master runs once TTL + grace have passed: a node without a lease has lapsed
  if (startExpired) model.setDefaultLease('expired')
  let next = 1
  const fresh = () => hex(next++)
  const profileIds = new Map<string, string>()
  const unitIds = new Map<string, string>()
  const unitId = (name: string) => unitIds.get(name) ?? hex(777_777)
  let rounds = 0
  const compare = (): Plan => {
    const expected = planPlacement(model.input())
    const got = model.plan()
    rounds++
    const a = normal(got)
    const b = normal(expected)
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      throw new Error(`incremental plan differs from the full round's after ${rounds} rounds:\nincremental ${JSON.stringify(a, null, 1)}\nfull ${JSON.stringify(b, null, 1)}`)
    }
    return got
  }
  if (withFleet) {
    // a running fleet to change: every slave and worker declared with a live lease, the
    // sub-accounts and profiles placed by a first round written back whole
    const live = (running: string[] = []): NodeLease => ({ state: 'live', draining: false, running: new Set(running) })
    SLAVES.forEach((name, i) => { model.setSlave(name, { name, slots: 1 + i }); model.setLease('slave', name, live()) })
    WORKERS.forEach((name, i) => { model.setWorker(name, { name, slave: SLAVES[i % 3], slots: 2, kinds: [KINDS[i % 3], KINDS[(i + 1) % 3]] }); model.setLease('worker', name, live()) })
    SUBS.forEach(name => { const id = fresh(); unitIds.set(name, id); model.setSubaccount(name, { id, name, slave: undefined }) })
    PROFILES.forEach((name, i) => { const id = fresh(); unitIds.set(name, id); profileIds.set(name, id); model.setProfile(name, { id, name, kind: KINDS[i % 3], subaccount: SUBS[i % 3] }) })
    changes = [{ op: 'round', keep: Array(12).fill(9) }, { op: 'round', keep: Array(12).fill(9) }, ...changes]
  }
  for (const c of changes) {
    switch (c.op) {
      case 'slave': model.setSlave(c.name, c.slots === undefined ? undefined : { name: c.name, slots: c.slots }); break
      case 'worker': model.setWorker(c.name, c.value === undefined ? undefined : { name: c.name, ...c.value }); break
      case 'sub': {
        const id = fresh()
        unitIds.set(c.name, id)
        model.setSubaccount(c.name, c.value === undefined ? undefined : { id, name: c.name, ...c.value })
        break
      }
      case 'profile': {
        const id = fresh()
        unitIds.set(c.name, id)
        if (c.value === undefined) profileIds.delete(c.name)
        else profileIds.set(c.name, id)
        model.setProfile(c.name, c.value === undefined ? undefined : { id, name: c.name, kind: c.value.kind, subaccount: c.value.subaccount, ...(c.value.held ? { held: 'no copy for this key' } : {}) })
        break
      }
      case 'assign-sub': model.putSubaccountAssignment({ id: fresh(), subaccount: c.sub, slave: c.slave }); break
      case 'assign-profile': model.putProfileAssignment({ id: fresh(), profile: c.profile, profileId: c.stale ? hex(999_999) : profileIds.get(c.profile), worker: c.worker }); break
      case 'unassign': {
        const input = model.input()
        const ids = [...input.subaccountAssignments.map(a => a.id), ...input.profileAssignments.map(a => a.id)]
        if (ids.length > 0) model.deleteAssignment(ids[c.pick % ids.length])
        break
      }
      case 'lease': {
        const l: NodeLease | undefined = c.lease === undefined || c.lease.state === 'unknown' ? undefined : { state: c.lease.state, draining: c.lease.draining, running: new Set(c.lease.running.map(unitId)) }
        model.setLease(c.role, c.name, l)
        break
      }
      case 'default-lease': model.setDefaultLease(c.state); break
      case 'releasing': model.setReleasing(c.role, c.entries); break
      case 'round': {
        const plan = compare()
        let i = 0
        const kept = () => c.keep[i++ % c.keep.length] > 1
        for (const d of plan.deletes) if (kept()) model.deleteAssignment(d.id)
        for (const put of plan.puts) {
          if (!kept()) continue
          if ('profile' in put) model.putProfileAssignment({ id: fresh(), profile: put.profile, profileId: put.profile_id, worker: put.worker })
          else model.putSubaccountAssignment({ id: fresh(), subaccount: put.subaccount, slave: put.slave })
        }
        break
      }
    }
    if (roundEvery) compare()
  }
  compare()
  return rounds
}

t.test('the incremental plan is the full round\'s, change by change', async t => {
  let rounds = 0
  fc.assert(fc.property(fc.array(change, { minLength: 10, maxLength: 80 }), fc.boolean(), fc.boolean(), (changes, expired, fleet) => { rounds += run(changes, true, expired, fleet) }), { numRuns: RUNS })
  t.ok(rounds > 300, `${rounds} rounds compared`)
})

t.test('the incremental plan is the full round\'s after many changes at once', async t => {
  let rounds = 0
  fc.assert(fc.property(fc.array(change, { minLength: 20, maxLength: 160 }), fc.boolean(), fc.boolean(), (changes, expired, fleet) => { rounds += run(changes, false, expired, fleet) }), { numRuns: RUNS })
  t.ok(rounds >= 300, `${rounds} rounds compared`)
})

t.test('a unit a worker reports running stops counting as extra load once it is assigned there', async t => {
  const model = new IncrementalPlacement()
  model.setDefaultLease('expired')
  const live = (running: string[]): NodeLease => ({ state: 'live', draining: false, running: new Set(running) })
  model.setSlave('s1', { name: 's1', slots: 5 })
  model.setLease('slave', 's1', live([]))
  model.setSubaccount('a', { id: hex(1), name: 'a', slave: undefined })
  model.setWorker('w1', { name: 'w1', slave: 's1', slots: 2, kinds: ['k'] })
  model.setProfile('p1', { id: hex(11), name: 'p1', kind: 'k', subaccount: 'a' })
  model.setProfile('p2', { id: hex(12), name: 'p2', kind: 'k', subaccount: 'a' })
  // w1 runs p1 without an assignment: p1 waits for it, and it takes one of w1's two slots
  model.setLease('worker', 'w1', live([hex(11)]))
  const first = model.plan()
  t.same(normal(first), normal(planPlacement(model.input())))
  t.same(first.puts, [{ subaccount: 'a', slave: 's1' }, { profile: 'p2', profile_id: hex(12), kind: 'k', subaccount: 'a', slave: 's1', worker: 'w1' }])
  model.putSubaccountAssignment({ id: hex(21), subaccount: 'a', slave: 's1' })
  // the write for p2 is lost; an admin assigns p1 where it runs: w1 then holds p1 and has a slot for p2 again
  model.putProfileAssignment({ id: hex(22), profile: 'p1', profileId: hex(11), worker: 'w1' })
  const second = model.plan()
  t.same(normal(second), normal(planPlacement(model.input())))
  t.same(second.puts, [{ profile: 'p2', profile_id: hex(12), kind: 'k', subaccount: 'a', slave: 's1', worker: 'w1' }])
})
