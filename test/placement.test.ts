import t from 'tap'
import fc from 'fast-check'
import { planPlacement, type PlacementInput, type WorkerLease } from '../src/services/allocation/placement.js'

// The allocator's rules as properties over random fleets: whatever the input, a plan never
// overfills a slave or a worker, never gives a worker a kind it does not run, never places on
// a worker without a live lease, and never places a profile some live worker still runs.

const KINDS = ['linkedin', 'email', 'mta']
const id = (n: number) => n.toString(16).padStart(64, '0')
const LIVE: WorkerLease = { state: 'live', draining: false, running: new Set() }
/** every slave's lease live and not draining, nothing reported: the worker-side cases */
const liveSlaves = { slaveLease: () => LIVE, slaveReports: [] }

const fleet = fc.record({
  slaves: fc.uniqueArray(fc.record({ name: fc.constantFrom('s1', 's2', 's3'), slots: fc.nat(3) }), { selector: s => s.name, maxLength: 3 }),
  workers: fc.uniqueArray(fc.record({
    name: fc.constantFrom('w1', 'w2', 'w3', 'w4'),
    slave: fc.option(fc.constantFrom('s1', 's2', 's3'), { nil: undefined }),
    slots: fc.nat(3),
    kinds: fc.subarray(KINDS),
    lease: fc.constantFrom<WorkerLease['state']>('live', 'live', 'expired', 'unknown'),
    draining: fc.boolean(),
    running: fc.subarray([0, 1, 2, 3, 4, 5])
  }), { selector: w => w.name, maxLength: 4 }),
  subaccounts: fc.uniqueArray(fc.record({ name: fc.constantFrom('a', 'b', 'c'), slave: fc.option(fc.constantFrom('s1', 's2'), { nil: undefined }) }), { selector: s => s.name, maxLength: 3 }),
  profiles: fc.uniqueArray(fc.record({ n: fc.nat(5), kind: fc.constantFrom(...KINDS), subaccount: fc.constantFrom('a', 'b', 'c', 'zz') }), { selector: p => p.n, maxLength: 6 }),
  existing: fc.array(fc.record({ profile: fc.nat(5), worker: fc.constantFrom('w1', 'w2', 'w3', 'w4', 'gone') }), { maxLength: 4 })
})

t.test('placement invariants hold for random fleets', async t => {
  fc.assert(fc.property(fleet, f => {
    const leases = new Map(f.workers.map(w => [w.name, { state: w.lease, draining: w.draining, running: new Set(w.running.map(id)) }]))
    const input: PlacementInput = {
      slaves: f.slaves,
      workers: f.workers.map(w => ({ name: w.name, slave: w.slave, slots: w.slots, kinds: w.kinds })),
      subaccounts: f.subaccounts.map((s, i) => ({ id: id(100 + i), ...s })),
      profiles: f.profiles.map(p => ({ id: id(p.n), name: `p${p.n}`, kind: p.kind, subaccount: p.subaccount })),
      subaccountAssignments: [],
      profileAssignments: f.existing.map((a, i) => ({ id: id(200 + i), profile: `p${a.profile}`, profileId: id(a.profile), worker: a.worker })),
      lease: w => leases.get(w) ?? { state: 'expired', draining: false, running: new Set() },
      reports: [...leases].filter(([, l]) => l.state === 'live').map(([worker, l]) => ({ worker, running: l.running })),
      slaveLease: () => LIVE,
      slaveReports: []
    }
    const plan = planPlacement(input)
    const deleted = new Set(plan.deletes.map(d => d.id))
    const slaveOf = new Map(plan.puts.flatMap(p => 'profile' in p ? [] : [[p.subaccount, p.slave] as const]))
    const perSlave = new Map<string, number>()
    for (const [, slave] of slaveOf) perSlave.set(slave, (perSlave.get(slave) ?? 0) + 1)
    for (const s of f.slaves) if ((perSlave.get(s.name) ?? 0) > s.slots) return false
    const kept = input.profileAssignments.filter(a => !deleted.has(a.id))
    for (const put of plan.puts) {
      if (!('profile' in put)) continue
      const worker = f.workers.find(w => w.name === put.worker)
      if (worker === undefined || worker.lease !== 'live' || worker.draining) return false
      if (!worker.kinds.includes(put.kind) || worker.slave !== put.slave) return false
      if (kept.some(a => a.profile === put.profile)) return false
      // a profile a live worker reports running, without holding it, is never placed
      for (const [name, lease] of leases) {
        if (lease.state === 'live' && lease.running.has(put.profile_id) && !kept.some(a => a.profile === put.profile && a.worker === name)) return false
      }
    }
    // a worker given a profile ends up within its slots, counting what it still runs unassigned
    for (const w of f.workers) {
      const placedHere = plan.puts.filter(p => 'profile' in p && p.worker === w.name).length
      if (placedHere === 0) continue
      const keptHere = kept.filter(a => a.worker === w.name)
      const busyUnassigned = [...w.running].filter(n => !keptHere.some(a => a.profileId === id(n))).length
      if (keptHere.length + busyUnassigned + placedHere > w.slots) return false
    }
    return true
  }), { numRuns: 2000 })
  t.pass('2,000 random fleets')
})

t.test('an expired worker\'s assignment is deleted and its profile placed elsewhere in the same plan', async t => {
  const plan = planPlacement({
    slaves: [{ name: 's1', slots: 1 }],
    workers: [{ name: 'w1', slave: 's1', slots: 1, kinds: ['mta'] }, { name: 'w2', slave: 's1', slots: 1, kinds: ['mta'] }],
    subaccounts: [{ id: id(1), name: 'a', slave: undefined }],
    profiles: [{ id: id(2), name: 'p', kind: 'mta', subaccount: 'a' }],
    subaccountAssignments: [{ id: id(3), subaccount: 'a', slave: 's1' }],
    profileAssignments: [{ id: id(4), profile: 'p', profileId: id(2), worker: 'w1' }],
    lease: w => ({ state: w === 'w1' ? 'expired' : 'live', draining: false, running: new Set() }),
    reports: [{ worker: 'w2', running: new Set() }],
    ...liveSlaves
  })
  t.same(plan.deletes.map(d => d.id), [id(4)])
  t.match(plan.deletes[0].reason, /lease lapsed/)
  t.same(plan.puts, [{ profile: 'p', profile_id: id(2), kind: 'mta', subaccount: 'a', slave: 's1', worker: 'w2' }])
})

t.test('a draining worker\'s profile waits until the worker reports it stopped', async t => {
  const base = {
    slaves: [{ name: 's1', slots: 1 }],
    workers: [{ name: 'w1', slave: 's1', slots: 1, kinds: ['mta'] }, { name: 'w2', slave: 's1', slots: 1, kinds: ['mta'] }],
    subaccounts: [{ id: id(1), name: 'a', slave: undefined }],
    profiles: [{ id: id(2), name: 'p', kind: 'mta', subaccount: 'a' }],
    subaccountAssignments: [{ id: id(3), subaccount: 'a', slave: 's1' }],
    profileAssignments: []
  }
  const stillRunning = planPlacement({
    ...base,
    lease: w => ({ state: 'live', draining: w === 'w1', running: new Set(w === 'w1' ? [id(2)] : []) }),
    reports: [{ worker: 'w1', running: new Set([id(2)]) }, { worker: 'w2', running: new Set() }],
    ...liveSlaves
  })
  t.same(stillRunning.puts, [], 'not placed while w1 still runs it')
  t.same(stillRunning.moving, [{ profile: 'p', from: 'w1' }])
  const stopped = planPlacement({
    ...base,
    lease: w => ({ state: 'live', draining: w === 'w1', running: new Set() }),
    reports: [{ worker: 'w1', running: new Set() }, { worker: 'w2', running: new Set() }],
    ...liveSlaves
  })
  t.equal(stopped.puts.length, 1)
  t.equal((stopped.puts[0] as { worker: string }).worker, 'w2', 'placed on w2 once w1 reports it stopped')
})

t.test('a profile whose settings this master cannot open keeps its assignment and is not placed anew', async t => {
  const input = (assigned: boolean, workerLease: WorkerLease['state'] = 'live') => planPlacement({
    slaves: [{ name: 's1', slots: 1 }],
    workers: [{ name: 'w1', slave: 's1', slots: 1, kinds: ['mta'] }, { name: 'w2', slave: 's1', slots: 1, kinds: ['mta'] }],
    subaccounts: [{ id: id(1), name: 'a', slave: undefined }],
    profiles: [{ id: id(2), name: 'p', kind: 'mta', subaccount: 'a', held: 'no settings copy for this master yet' }],
    subaccountAssignments: [{ id: id(3), subaccount: 'a', slave: 's1' }],
    profileAssignments: assigned ? [{ id: id(4), profile: 'p', profileId: id(2), worker: 'w1' }] : [],
    lease: w => ({ state: w === 'w1' ? workerLease : 'live', draining: false, running: new Set() }),
    reports: [{ worker: 'w1', running: new Set() }, { worker: 'w2', running: new Set() }],
    ...liveSlaves
  })
  const running = input(true)
  t.same(running.deletes, [], 'a new writer lacking the settings copy does not stop the running profile')
  t.same(running.puts, [])
  const lapsed = input(true, 'expired')
  t.same(lapsed.deletes, [], 'nor moves it when its worker lapses: it cannot seal the settings for another worker')
  t.same(lapsed.puts, [])
  const unassigned = input(false)
  t.same(unassigned.puts, [], 'an unassigned one is not placed')
  t.match(unassigned.unplaced, [{ type: 'profile', name: 'p', reason: /this master cannot open its settings: no settings copy/ }], 'and says why')
})
