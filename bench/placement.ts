import { IncrementalPlacement } from '../src/services/allocation/incremental.js'
import { type NodeLease, type Plan, planPlacement } from '../src/services/allocation/placement.js'
import { envInt, percentile, round } from './lib/harness.js'

/**
 * placement: the allocator's placement in-process, at fleet size. BENCH_PLACEMENT_WORKERS
 * (10,000) workers under BENCH_PLACEMENT_SLAVES (100) slaves, BENCH_PLACEMENT_PROFILES (50,000)
 * profiles in 1,000 sub-accounts, every lease live, placed by a first round and written back.
 * Then:
 * - the full round (planPlacement over everything, what the allocator runs once a minute as a
 *   check) and the incremental placement looking at everything again (what it compares with);
 * - one change at a time (a worker joins, a profile is inserted, a worker's lease lapses, a
 *   profile is deleted), each followed by an incremental round and its writes.
 * Goal: the full round ≤ 50 ms (p50 of 20 runs; p99 shown beside it).
 */
export interface PlacementRow {
  bench: 'placement'
  what: string
  workers: number
  profiles: number
  runs: number
  p50_ms: number
  p99_ms: number
  goal?: string
}

const KINDS = ['linkedin', 'facebook', 'email-verification', 'mta']
const live = (): NodeLease => ({ state: 'live', draining: false, running: new Set() })
const hex = (n: number) => n.toString(16).padStart(64, '0')

export async function placement (opts: { workers?: number, slaves?: number, profiles?: number } = {}): Promise<PlacementRow[]> {
  const workers = opts.workers ?? envInt('BENCH_PLACEMENT_WORKERS', 10_000)
  const slaves = opts.slaves ?? envInt('BENCH_PLACEMENT_SLAVES', 100)
  const profiles = opts.profiles ?? envInt('BENCH_PLACEMENT_PROFILES', 50_000)
  const subs = Math.max(1, Math.min(1000, profiles))
  const model = new IncrementalPlacement()
  model.setDefaultLease('expired')
  let next = 1
  const fresh = () => hex(next++)
  // slots: room for every profile, with some to spare
  const slots = Math.ceil((profiles / Math.max(1, workers)) * 1.5) + 1
  for (let i = 0; i < slaves; i++) { model.setSlave(`s-${i}`, { name: `s-${i}`, slots: subs }); model.setLease('slave', `s-${i}`, live()) }
  const addWorker = (i: number) => {
    model.setWorker(`w-${i}`, { name: `w-${i}`, slave: `s-${i % slaves}`, slots, kinds: [KINDS[i % 4], KINDS[(i + 1) % 4]] })
    model.setLease('worker', `w-${i}`, live())
  }
  for (let i = 0; i < workers; i++) addWorker(i)
  for (let i = 0; i < subs; i++) model.setSubaccount(`a-${i}`, { id: fresh(), name: `a-${i}`, slave: `s-${i % slaves}` })
  const addProfile = (i: number) => model.setProfile(`p-${i}`, { id: fresh(), name: `p-${i}`, kind: KINDS[i % 4], subaccount: `a-${i % subs}` })
  for (let i = 0; i < profiles; i++) addProfile(i)
  const write = (plan: Pick<Plan, 'deletes' | 'puts'>) => {
    for (const d of plan.deletes) model.deleteAssignment(d.id)
    for (const put of plan.puts) {
      if ('profile' in put) model.putProfileAssignment({ id: fresh(), profile: put.profile, profileId: put.profile_id, worker: put.worker })
      else model.putSubaccountAssignment({ id: fresh(), subaccount: put.subaccount, slave: put.slave })
    }
  }
  // placed, written back, settled
  for (let i = 0; i < 3; i++) write(model.round())
  const unplaced = model.unplaced().length

  const rows: PlacementRow[] = []
  const measure = (what: string, runs: number, work: (i: number) => void, goal?: (p99: number) => string): void => {
    const times: number[] = []
    // (the first runs warm the JIT up: not counted)
    for (let i = 0; i < Math.min(5, runs); i++) work(runs + i)
    for (let i = 0; i < runs; i++) {
      const started = performance.now()
      work(i)
      times.push(performance.now() - started)
    }
    const p50 = percentile(times, 50)
    rows.push({ bench: 'placement', what, workers, profiles, runs, p50_ms: round(percentile(times, 50), 3), p99_ms: round(percentile(times, 99), 3), ...(goal !== undefined ? { goal: goal(p50) } : {}) })
  }
  const fullGoal = (p50: number) => `<= 50 ms (p50): ${p50 <= 50 ? 'met' : 'missed'}`
  measure(`full round: every input gathered, planPlacement over it (${unplaced} unplaced)`, 20, () => { planPlacement(model.input()) }, fullGoal)
  const input = model.input()
  measure('  of which planPlacement alone', 20, () => { planPlacement(input) })
  measure('  of which the inputs gathered', 20, () => { model.input() })
  measure('the periodic check: the full round, and the incremental round it is compared with', 20, () => { planPlacement(model.input()); model.plan() })
  measure('incremental, every unit looked at again (after a restart)', 5, () => { model.markAll(); model.round() })
  let joined = workers
  measure('incremental: a worker joins', 500, () => { addWorker(joined++); write(model.round()) })
  let inserted = profiles
  measure('incremental: a profile is inserted', 500, () => { addProfile(inserted++); write(model.round()) })
  measure('incremental: a worker lapses (its profiles move)', 200, i => {
    model.setLease('worker', `w-${i}`, { state: 'expired', draining: false, running: new Set() })
    write(model.round())
    write(model.round())
  })
  measure('incremental: a profile is deleted', 500, i => { model.setProfile(`p-${i + 1000}`, undefined); write(model.round()) })
  return rows
}
