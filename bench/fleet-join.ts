import type { Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import type { Policy } from '../src/policies/policy.js'
import { startNode } from '../test/helpers/node-process.js'
import { type Cleanup, cpuProfileArgs, envInt, percentile, round, withCleanup, PROFILE_KINDS } from './lib/harness.js'
import { INSERT_COMMAND, expectOrdered, preparedHome, sequentialCommands } from './rest.js'

/**
 * fleet-join: a fleet joining one worker at a time. A LevelDB master whose ledger already holds
 * BENCH_FLEET_SLAVES slaves (10), as many sub-accounts and BENCH_FLEET_PROFILES profiles
 * (10,000) waiting for workers; one keep-alive REST client (as in rest-insert) then inserts
 * BENCH_FLEET_WORKERS (5,000) worker declarations one after another, spread over the slaves,
 * each running two of the profile kinds. Every insert starts an allocation round at the master.
 * The goal: the last 1,000 declarations insert at ≥ 0.9 × the rate of the first 1,000.
 */
export interface FleetJoinRow {
  bench: 'fleet-join'
  slaves: number
  profiles: number
  workers: number
  /** inserts/s of the first and the last `window` declarations */
  window: number
  first_per_s: number
  last_per_s: number
  ratio: number
  p50_ms: number
  p99_ms: number
  goal: string
}

function fleetPolicy (slaves: number): (i: number, author: Signer, now: Date) => Policy {
  return (i, author, now) => {
    if (i < slaves) return preparePolicy({ slave: { name: `s-${i}`, slots: 1000 } }, author, now)
    if (i < 2 * slaves) return preparePolicy({ subaccount: { name: `sa-${i - slaves}`, account: 'bench', slave: `s-${i - slaves}` } }, author, now)
    const p = i - 2 * slaves
    return preparePolicy({ profile: { name: `p-${p}`, kind: PROFILE_KINDS[p % PROFILE_KINDS.length], subaccount: `sa-${p % slaves}` } }, author, now)
  }
}

export async function fleetJoin (opts: { slaves?: number, profiles?: number, workers?: number } = {}): Promise<FleetJoinRow[]> {
  const slaves = opts.slaves ?? envInt('BENCH_FLEET_SLAVES', 10)
  const profiles = opts.profiles ?? envInt('BENCH_FLEET_PROFILES', 10_000)
  const workers = opts.workers ?? envInt('BENCH_FLEET_WORKERS', 5000)
  const window = Math.max(1, Math.min(1000, Math.floor(workers / 5)))
  return await withCleanup(async (t: Cleanup) => {
    const home = await preparedHome(t, 2 * slaves + profiles, undefined, fleetPolicy(slaves))
    const master = await startNode(t, { type: 'master', name: 'bench-fleet-master', home, nodeArgs: cpuProfileArgs(), env: { LOG_LEVEL: 'info' } })
    t.teardown(async () => { await master.stop() })
    const run = await sequentialCommands(master, workers, i => {
      // warm-up requests (i < 0) insert probes, so every measured request declares a worker
      if (i < 0) return { method: 'POST', command: INSERT_COMMAND, body: `<p={"probe": {"name": "warm${-i}"}}>` }
      const kinds = [PROFILE_KINDS[i % PROFILE_KINDS.length], PROFILE_KINDS[(i + 1) % PROFILE_KINDS.length]]
      return { method: 'POST', command: INSERT_COMMAND, body: `<p={"worker": {"name": "w-${i}", "slave": "s-${i % slaves}", "slots": 4, "profile_kinds": ${JSON.stringify(kinds)}}}>` }
    }, expectOrdered)
    const rate = (latencies: number[]) => latencies.length / (latencies.reduce((a, b) => a + b, 0) / 1000)
    const first = rate(run.latencies.slice(0, window))
    const last = rate(run.latencies.slice(-window))
    const ratio = last / first
    return [{
      bench: 'fleet-join',
      slaves,
      profiles,
      workers,
      window,
      first_per_s: Math.round(first),
      last_per_s: Math.round(last),
      ratio: round(ratio, 2),
      p50_ms: round(percentile(run.latencies, 50), 3),
      p99_ms: round(percentile(run.latencies, 99), 3),
      goal: `last ${window} >= 0.9 x first ${window}: ${ratio >= 0.9 ? 'met' : 'missed'}`
    }]
  })
}
