import t from 'tap'
import fc from 'fast-check'
import { planPlacement, type PlacementInput, type WorkerLease } from '../src/services/allocation/placement.js'

// The one-worker rules applied to sub-accounts on slaves (slaves hold leases too), as
// properties over random fleets and as examples: a sub-account never runs on two slaves at
// once, goes only to a live slave that is not draining, and its profiles follow it.

const id = (n: number) => n.toString(16).padStart(64, '0')
const SUBS = ['a', 'b', 'c', 'd']
const subId = (name: string) => id(100 + SUBS.indexOf(name))
const LIVE: WorkerLease = { state: 'live', draining: false, running: new Set() }

const fleet = fc.record({
  slaves: fc.uniqueArray(fc.record({
    name: fc.constantFrom('s1', 's2', 's3'),
    slots: fc.nat(3),
    lease: fc.constantFrom<WorkerLease['state']>('live', 'live', 'live', 'expired', 'unknown'),
    draining: fc.boolean(),
    running: fc.subarray(SUBS)
  }), { selector: s => s.name, maxLength: 3 }),
  subaccounts: fc.uniqueArray(fc.record({ name: fc.constantFrom(...SUBS), slave: fc.option(fc.constantFrom('s1', 's2', 'gone'), { nil: undefined }) }), { selector: s => s.name, maxLength: 4 }),
  existing: fc.array(fc.record({ subaccount: fc.constantFrom(...SUBS, 'zz'), slave: fc.constantFrom('s1', 's2', 's3', 'gone') }), { maxLength: 5 }),
  workers: fc.uniqueArray(fc.record({ name: fc.constantFrom('w1', 'w2', 'w3'), slave: fc.constantFrom('s1', 's2', 's3'), slots: fc.nat(3) }), { selector: w => w.name, maxLength: 3 }),
  profiles: fc.uniqueArray(fc.record({ n: fc.nat(4), subaccount: fc.constantFrom(...SUBS), worker: fc.option(fc.constantFrom('w1', 'w2', 'w3'), { nil: undefined }) }), { selector: p => p.n, maxLength: 5 })
})

t.test('sub-accounts on slaves: the one-worker rules hold for random fleets', async t => {
  fc.assert(fc.property(fleet, f => {
    const slaveLeases = new Map(f.slaves.map(s => [s.name, { state: s.lease, draining: s.draining, running: new Set(s.running.map(subId)) }]))
    const input: PlacementInput = {
      slaves: f.slaves.map(s => ({ name: s.name, slots: s.slots })),
      workers: f.workers.map(w => ({ ...w, kinds: ['k'] })),
      subaccounts: f.subaccounts.map(s => ({ id: subId(s.name), ...s })),
      profiles: f.profiles.map(p => ({ id: id(p.n), name: `p${p.n}`, kind: 'k', subaccount: p.subaccount })),
      subaccountAssignments: f.existing.map((a, i) => ({ id: id(200 + i), ...a })),
      profileAssignments: f.profiles.flatMap(p => p.worker === undefined ? [] : [{ id: id(300 + p.n), profile: `p${p.n}`, profileId: id(p.n), worker: p.worker }]),
      lease: () => LIVE,
      reports: [],
      slaveLease: s => slaveLeases.get(s) ?? { state: 'expired', draining: false, running: new Set() },
      // an expired lease's processes are dead (its slave stopped them, or its reaper did)
      slaveReports: f.slaves.filter(s => s.lease !== 'expired').map(s => ({ slave: s.name, running: slaveLeases.get(s.name)!.running }))
    }
    const plan = planPlacement(input)
    const deleted = new Set(plan.deletes.map(d => d.id))
    const kept = input.subaccountAssignments.filter(a => !deleted.has(a.id))
    // kept: on a slave with a live or unknown lease, not draining, once per sub-account
    for (const a of kept) {
      const lease = input.slaveLease(a.slave)
      if (lease.state === 'expired' || lease.draining) return false
      if (kept.filter(b => b.subaccount === a.subaccount).length > 1) return false
    }
    const subPuts = plan.puts.flatMap(p => 'profile' in p ? [] : [p])
    const someUnknown = f.slaves.some(s => s.lease === 'unknown')
    for (const put of subPuts) {
      if (someUnknown) return false
      const slave = f.slaves.find(s => s.name === put.slave)
      if (slave === undefined || slave.lease !== 'live' || slave.draining) return false
      if (kept.some(a => a.subaccount === put.subaccount)) return false
      if (subPuts.filter(p => p.subaccount === put.subaccount).length > 1) return false
      // never on two slaves at once: no other live slave reports it running
      for (const report of input.slaveReports) {
        if (report.slave !== put.slave && report.running.has(subId(put.subaccount))) return false
      }
    }
    // a slave given a sub-account stays within its slots, counting what it still runs unassigned
    for (const s of f.slaves) {
      const placedHere = subPuts.filter(p => p.slave === s.name).length
      if (placedHere === 0) continue
      const keptHere = kept.filter(a => a.slave === s.name)
      const busy = s.lease === 'expired' ? 0 : s.running.filter(n => !keptHere.some(a => a.subaccount === n)).length
      if (keptHere.length + busy + placedHere > s.slots) return false
    }
    // profiles follow their sub-account: kept and new profile assignments are under its slave
    const slaveOf = new Map([...kept.map(a => [a.subaccount, a.slave] as const), ...subPuts.map(p => [p.subaccount, p.slave] as const)])
    const workerSlave = new Map(f.workers.map(w => [w.name, w.slave]))
    for (const a of input.profileAssignments.filter(a => !deleted.has(a.id))) {
      const profile = f.profiles.find(p => `p${p.n}` === a.profile)!
      if (workerSlave.get(a.worker) !== slaveOf.get(profile.subaccount)) return false
    }
    for (const put of plan.puts) {
      if ('profile' in put && put.slave !== slaveOf.get(put.subaccount)) return false
    }
    return true
  }), { numRuns: 3000 })
  t.pass('3,000 random fleets')
})

/** One sub-account 'a' with a profile on w1 (under s1), slaves s1 and s2 with a worker each. */
function base (over: Partial<PlacementInput>): PlacementInput {
  return {
    slaves: [{ name: 's1', slots: 2 }, { name: 's2', slots: 2 }],
    workers: [{ name: 'w1', slave: 's1', slots: 2, kinds: ['k'] }, { name: 'w2', slave: 's2', slots: 2, kinds: ['k'] }],
    subaccounts: [{ id: id(1), name: 'a', slave: undefined }],
    profiles: [{ id: id(2), name: 'p', kind: 'k', subaccount: 'a' }],
    subaccountAssignments: [{ id: id(3), subaccount: 'a', slave: 's1' }],
    profileAssignments: [{ id: id(4), profile: 'p', profileId: id(2), worker: 'w1' }],
    lease: () => LIVE,
    reports: [],
    slaveLease: () => LIVE,
    slaveReports: [],
    ...over
  }
}

t.test('a lapsed slave loses its sub-account, and the profiles follow to workers of the new slave', async t => {
  const plan = planPlacement(base({
    slaveLease: s => s === 's1' ? { state: 'expired', draining: false, running: new Set([id(1)]) } : LIVE,
    slaveReports: [{ slave: 's2', running: new Set() }]
  }))
  t.same(plan.deletes.map(d => d.id).sort(), [id(3), id(4)].sort(), 'both the sub-account\'s and the profile\'s assignments go')
  t.match(plan.deletes.find(d => d.id === id(3))!.reason, /slave 's1' lease lapsed/)
  t.match(plan.deletes.find(d => d.id === id(4))!.reason, /not under the slave/)
  t.same(plan.puts, [{ subaccount: 'a', slave: 's2' }], 'the sub-account moves at once (its slave lapsed)')
  // its worker's lease is live: it hears of the delete through the ledger, and may run p till then
  t.same(plan.moving, [{ profile: 'p', from: 'w1' }], 'the profile waits for its worker to show it stopped')
  const next = planPlacement(base({
    subaccountAssignments: [{ id: id(5), subaccount: 'a', slave: 's2' }],
    profileAssignments: [],
    slaveLease: s => s === 's1' ? { state: 'expired', draining: false, running: new Set([id(1)]) } : LIVE,
    slaveReports: [{ slave: 's2', running: new Set() }]
  }))
  t.same(next.puts, [{ profile: 'p', profile_id: id(2), kind: 'k', subaccount: 'a', slave: 's2', worker: 'w2' }], 'then it follows to a worker of the new slave')
})

t.test('a draining slave\'s sub-account waits until the slave reports its processes stopped', async t => {
  const draining = { state: 'live' as const, draining: true, running: new Set([id(1)]) }
  const still = planPlacement(base({
    slaveLease: s => s === 's1' ? draining : LIVE,
    slaveReports: [{ slave: 's1', running: draining.running }, { slave: 's2', running: new Set() }]
  }))
  t.match(still.deletes.find(d => d.id === id(3))?.reason, /is draining/)
  t.same(still.puts, [], 'not placed on s2 while s1 still runs it')
  t.same(still.movingSubaccounts, [{ subaccount: 'a', from: 's1' }])
  t.match(still.unplaced.find(u => u.name === 'a')?.reason, /waiting for slave 's1'/)
  const stopped = planPlacement(base({
    subaccountAssignments: [],
    profileAssignments: [],
    slaveLease: s => s === 's1' ? { ...draining, running: new Set() } : LIVE,
    slaveReports: [{ slave: 's1', running: new Set() }, { slave: 's2', running: new Set() }]
  }))
  t.same(stopped.puts.map(p => p.slave), ['s2', 's2'], 'placed on s2 (with its profile) once s1 reports it stopped')
})

t.test('no sub-account is placed while some slave\'s lease is unknown', async t => {
  const plan = planPlacement(base({
    subaccountAssignments: [],
    profileAssignments: [],
    slaveLease: s => s === 's2' ? { state: 'unknown', draining: false, running: new Set() } : LIVE
  }))
  t.same(plan.puts, [])
  t.match(plan.unplaced.find(u => u.name === 'a')?.reason, /renew its lease once/)
  t.same(plan.deletes, [], 'an unknown lease deletes nothing')
})

t.test('a sub-account goes only to a live slave that is not draining, pinned or not', async t => {
  const leases: Record<string, WorkerLease> = { s1: { state: 'expired', draining: false, running: new Set() }, s2: { state: 'live', draining: true, running: new Set() } }
  const none = planPlacement(base({ subaccountAssignments: [], profileAssignments: [], slaveLease: s => leases[s] }))
  t.same(none.puts, [])
  t.match(none.unplaced.find(u => u.name === 'a')?.reason, /no live slave/)
  const pinned = planPlacement(base({ subaccounts: [{ id: id(1), name: 'a', slave: 's1' }], subaccountAssignments: [], profileAssignments: [], slaveLease: s => s === 's1' ? leases.s1 : LIVE }))
  t.same(pinned.puts, [], 'its pinned slave has no live lease: it waits')
  t.match(pinned.unplaced.find(u => u.name === 'a')?.reason, /pinned slave 's1'/)
})
