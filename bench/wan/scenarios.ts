import { waitFor } from '../../test/helpers/net.js'
import { percentile, round } from '../lib/harness.js'
import { type WanFleet, PROFILE_KIND } from './fleet.js'
import { type Ack, appliedAt, converged, currentMaster, headOf, insertVia, missing, recordHeads, sleep, workload } from './observe.js'

/**
 * The WAN scenarios. Each returns one result row (written to bench/results/wan-<name>.json)
 * whose `checks` must all hold (0 lost, 0 overlaps, no head moving back...) and whose `goals`
 * are the latency targets, reported met or missed.
 */

export interface ScenarioResult {
  scenario: string
  [measure: string]: unknown
  /** invariants: each must be true (the run fails otherwise) */
  checks: Record<string, boolean>
  /** latency targets: met or missed, reported */
  goals: Record<string, string>
  /** what went wrong, for the report (first few of each kind) */
  problems: string[]
}

export interface ScenarioSettings {
  propagationInserts: number
  catchUpPolicies: number
  partitionSeconds: number
  stallSeconds: number
  /** the stall fraction of the stalls scenario */
  heavyStall: number
  /** BLOCKCHAIN_SYNC in ms: a healed partition must converge within it */
  syncMs: number
  log: (line: string) => void
}

const ms = (n: number): number => round(n, 1)
const goal = (met: boolean, text: string): string => `${text}: ${met ? 'met' : 'missed'}`

/** The nodes that replicate from the master (every started node but the masters). */
function replicas (fleet: WanFleet): WanFleet['all'] {
  return fleet.live.filter(n => n.host.role !== 'master')
}

/** `perWorker` profiles per worker, under as many sub-accounts as there are slaves. */
export async function placeProfiles (fleet: WanFleet, perWorker: number): Promise<string[]> {
  const master = await currentMaster(fleet)
  const slaves = fleet.all.filter(n => n.host.role === 'slave')
  const workers = fleet.all.filter(n => n.host.role === 'worker')
  const names: string[] = []
  // not pinned to a slave: the allocator places each, and moves it when its slave is cut off
  for (let i = 0; i < slaves.length; i++) await insertVia(master, { subaccount: { name: `sub-${i + 1}`, account: `account-${i + 1}` } })
  for (let i = 0; i < workers.length * perWorker; i++) {
    const name = `p-${i + 1}`
    names.push(name)
    await insertVia(master, { profile: { name, kind: PROFILE_KIND, subaccount: `sub-${(i % Math.max(1, slaves.length)) + 1}`, settings: { heartbeat_ms: 200, run_log: fleet.runLog } } })
  }
  await waitFor(`${names.length} profiles running`, async () => {
    const placed = await placement(master)
    return names.every(n => placed.get(n)?.status === 'assigned') ? true : undefined
  }, { timeoutMs: 180_000, everyMs: 1000 })
  return names
}

export async function placement (master: WanFleet['all'][number]['node']): Promise<Map<string, { worker: string | null, status: string }>> {
  const response = await fetch(`${master.url}/v1/profiles`, { signal: AbortSignal.timeout(10_000) })
  const body = await response.json() as { profiles: Array<{ name: string, worker: string | null, status: string }> }
  return new Map(body.profiles.map(p => [p.name, p]))
}

/** propagation: inserts on the master, each timed until every replica applied it. */
export async function propagation (fleet: WanFleet, s: ScenarioSettings): Promise<ScenarioResult> {
  const master = await currentMaster(fleet)
  const nodes = replicas(fleet)
  const latencies: number[] = []
  const slowest = new Map<number, number>()
  for (let i = 0; i < s.propagationInserts; i++) {
    const started = Date.now()
    const { seq } = await insertVia(master, { probe: { name: `propagation-${i}-${started}` } })
    const times = await waitFor(`insert ${i} on every replica`, () => {
      const seen = nodes.map(n => appliedAt(n.node, seq!))
      return seen.every(t => t !== undefined) ? seen as number[] : undefined
    }, { timeoutMs: 60_000, everyMs: 10 })
    latencies.push(Math.max(...times) - started)
    const last = times.indexOf(Math.max(...times))
    slowest.set(nodes[last].host.region, (slowest.get(nodes[last].host.region) ?? 0) + 1)
    await sleep(100)
  }
  const p99 = percentile(latencies, 99)
  return {
    scenario: 'propagation',
    replicas: nodes.length,
    inserts: latencies.length,
    p50_ms: ms(percentile(latencies, 50)),
    p99_ms: ms(p99),
    max_ms: ms(Math.max(...latencies)),
    slowest_region_counts: Object.fromEntries(slowest),
    checks: {},
    goals: { p99: goal(p99 < 500, 'p99 < 500 ms') },
    problems: []
  }
}

/**
 * catch-up: the ledger filled to `catchUpPolicies` (every replica following), then the joiners
 * start cold (one near the master, one in the farthest region), each timed from its process
 * start until its head is the master's.
 */
export async function catchUp (fleet: WanFleet, s: ScenarioSettings): Promise<ScenarioResult> {
  const master = await currentMaster(fleet)
  const before = (await headOf(master))!.seq
  const fill = Math.max(0, s.catchUpPolicies - before)
  const fillStarted = Date.now()
  let next = 0
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < fill) {
      const i = next++
      await insertVia(master, { probe: { name: `bulk-${i}`, batch: 'catch-up' } }, 30_000)
    }
  }))
  const filled = (await headOf(master))!
  const inserted = (Date.now() - fillStarted) / 1000
  const everywhere = await converged(fleet, fleet.live, 600_000)
  const spreadSeconds = (Date.now() - fillStarted) / 1000
  s.log(`catch-up: ${fill} inserts in ${inserted.toFixed(1)} s, on every node after ${spreadSeconds.toFixed(1)} s (head ${everywhere.seq})`)
  const joins: Array<{ node: string, region: number, seconds: number }> = []
  for (const host of fleet.topo.hosts.filter(h => h.spare === true)) {
    const started = Date.now()
    const node = await fleet.startHost(host)
    await waitFor(`${host.name} at the master's head`, async () => {
      const head = await headOf(node)
      return head !== undefined && head.seq >= filled.seq ? true : undefined
    }, { timeoutMs: 300_000, everyMs: 100 })
    joins.push({ node: host.name, region: host.region, seconds: round((Date.now() - started) / 1000, 2) })
  }
  return {
    scenario: 'catch-up',
    policies: filled.seq,
    bulk_inserts: fill,
    bulk_on_every_node_s: round(spreadSeconds, 1),
    joins,
    checks: {},
    goals: Object.fromEntries(joins.map(j => [j.node, `cold start to caught up at ${filled.seq} policies, region ${j.region}: ${j.seconds} s`])),
    problems: []
  }
}

/**
 * partition: the last region (no active master there) cut off for `partitionSeconds` while a
 * client inserts on the master and another on a member inside the region; then healed.
 */
export async function partition (fleet: WanFleet, s: ScenarioSettings): Promise<ScenarioResult> {
  const region = fleet.topo.regions - 1
  const master = await currentMaster(fleet)
  if (fleet.all.find(n => n.node === master)?.host.region === region) throw new Error('partition: the active master is in the last region')
  const inside = fleet.live.filter(n => n.host.region === region)
  const insideWorkers = new Set(inside.filter(n => n.host.role === 'worker').map(n => n.host.name))
  const member = inside.find(n => n.host.role === 'member')
  const heads = recordHeads(fleet)
  const main = workload('partition-master', async () => await currentMaster(fleet), 200)
  // inside the region: acknowledged from the member's outbox while cut off, delivered after
  const local = member === undefined ? undefined : workload('partition-member', async () => member.node, 1000, { local: true })
  const placedBefore = await placement(master)
  const movedAway = [...placedBefore].filter(([, p]) => p.worker !== null && insideWorkers.has(p.worker)).map(([name]) => name)
  await sleep(2000)
  s.log(`partition: region ${region} (${inside.length} nodes, ${movedAway.length} profiles on its workers) cut off for ${s.partitionSeconds} s`)
  await fleet.emulator.call('partition', { regions: [region] })
  const cutAt = Date.now()
  // the master moves the cut-off workers' profiles once their leases lapse
  let movedAfterMs: number | undefined
  while (Date.now() - cutAt < s.partitionSeconds * 1000) {
    if (movedAfterMs === undefined) {
      const placed = await placement(master).catch(() => undefined)
      if (placed !== undefined && movedAway.every(n => { const p = placed.get(n); return p?.worker != null && !insideWorkers.has(p.worker) && p.status === 'assigned' })) movedAfterMs = Date.now() - cutAt
    }
    await sleep(500)
  }
  const headAtHeal = (await headOf(await currentMaster(fleet)))!.seq
  await fleet.emulator.call('heal')
  const healedAt = Date.now()
  s.log(`partition: healed at master head ${headAtHeal}`)
  // converged: every node of the region applied the master's head as of the heal
  const convergedAt = await waitFor('the region at the head it missed', () => {
    const times = inside.map(n => appliedAt(n.node, headAtHeal))
    return times.every(t => t !== undefined) ? Math.max(...times as number[]) : undefined
  }, { timeoutMs: 300_000, everyMs: 50 })
  await sleep(3000)
  await main.stop()
  await local?.stop()
  const final = await converged(fleet)
  await heads.stop()
  const acks: Ack[] = [...main.acks, ...(local?.acks ?? [])]
  const lost = await missing(await currentMaster(fleet), acks)
  const overlaps = fleet.overlaps()
  const convergeMs = Math.max(0, convergedAt - healedAt)
  return {
    scenario: 'partition',
    region,
    nodes_cut_off: inside.length,
    seconds: s.partitionSeconds,
    profiles_moved: movedAway.length,
    moved_after_ms: movedAfterMs ?? null,
    converge_ms: convergeMs,
    sync_interval_ms: s.syncMs,
    acknowledged: acks.length,
    acknowledged_inside: local?.acks.length ?? 0,
    refused_or_failed: main.failures.length + (local?.failures.length ?? 0),
    lost: lost.length,
    overlaps: overlaps.length,
    heads_backwards: heads.backwards.length,
    final_head: final.seq,
    checks: {
      no_acknowledged_insert_lost: lost.length === 0,
      no_profile_overlap: overlaps.length === 0,
      heads_never_move_back: heads.backwards.length === 0,
      profiles_moved_during_partition: movedAway.length === 0 || movedAfterMs !== undefined
    },
    goals: { converge: goal(convergeMs <= s.syncMs, `converges within one sync interval (${s.syncMs} ms)`) },
    problems: [...lost.slice(0, 5), ...overlaps.slice(0, 5), ...heads.backwards.slice(0, 5)]
  }
}

/**
 * stalls: a much larger fraction of chunks stalled for `stallSeconds` while a client inserts;
 * no replica may fall behind for long (a stuck watch), and no lease may lapse (no profile
 * moves, no runner restarts).
 */
export async function stalls (fleet: WanFleet, s: ScenarioSettings): Promise<ScenarioResult> {
  const master = await currentMaster(fleet)
  const nodes = replicas(fleet)
  const placedBefore = await placement(master)
  const runsBefore = fleet.runs().length
  const heads = recordHeads(fleet)
  await fleet.emulator.call('stall', { fraction: s.heavyStall })
  const stalls0 = (await fleet.emulator.call<{ stalls: number }>('stats')).stalls
  const load = workload('stalls', async () => await currentMaster(fleet), 250)
  const started = Date.now()
  await sleep(s.stallSeconds * 1000)
  await load.stop()
  const stallCount = (await fleet.emulator.call<{ stalls: number }>('stats')).stalls - stalls0
  await fleet.emulator.call('stall', { fraction: fleet.topo.links.stall })
  await converged(fleet)
  await heads.stop()
  // each acknowledged insert: how long until the last replica applied it
  const latencies = load.acks.filter(a => a.seq !== undefined).map(a => Math.max(...nodes.map(n => (appliedAt(n.node, a.seq!) ?? Infinity))) - (a.at))
  const worst = Math.max(0, ...latencies)
  const stuck = latencies.filter(l => l > s.syncMs).length
  const placedAfter = await placement(await currentMaster(fleet))
  const moved = [...placedBefore].filter(([name, p]) => placedAfter.get(name)?.worker !== p.worker).map(([name]) => name)
  const newRuns = fleet.runs().filter(r => r.first >= started).length
  const lost = await missing(await currentMaster(fleet), load.acks)
  return {
    scenario: 'stalls',
    seconds: s.stallSeconds,
    stall_fraction: s.heavyStall,
    chunks_stalled: stallCount,
    inserts: load.acks.length,
    failed_inserts: load.failures.length,
    propagation_p50_ms: ms(percentile(latencies, 50)),
    propagation_p99_ms: ms(percentile(latencies, 99)),
    propagation_max_ms: ms(worst),
    profiles_moved: moved.length,
    runner_starts: newRuns,
    runs_before: runsBefore,
    lost: lost.length,
    checks: {
      no_stuck_watch: stuck === 0,
      no_lease_flapping: moved.length === 0 && newRuns === 0,
      no_acknowledged_insert_lost: lost.length === 0,
      heads_never_move_back: heads.backwards.length === 0
    },
    goals: { propagation: goal(percentile(latencies, 99) < 2000, 'p99 < 2 s while stalling') },
    problems: [...moved.slice(0, 5), ...lost.slice(0, 5), ...heads.backwards.slice(0, 5), ...(load.failures.slice(0, 3))]
  }
}

/** failover: kill -9 of the active master while clients insert; a standby takes over. */
export async function failover (fleet: WanFleet, s: ScenarioSettings): Promise<ScenarioResult> {
  if (fleet.masters.length < 2) throw new Error('failover needs WAN_MASTERS >= 2')
  const active = await currentMaster(fleet)
  const heads = recordHeads(fleet)
  const load = workload('failover', async () => await currentMaster(fleet, 15_000), 200)
  await sleep(3000)
  const killedAt = Date.now()
  s.log(`failover: kill -9 ${active.name}`)
  await active.kill()
  const next = await currentMaster(fleet, 60_000)
  const takeoverMs = Date.now() - killedAt
  await waitFor('an insert acknowledged by the new master', () => load.acks.some(a => a.at > killedAt && a.via === next.name) ? true : undefined, { timeoutMs: 60_000, everyMs: 100 })
  const firstAck = load.acks.find(a => a.at > killedAt)!
  await sleep(5000)
  await load.stop()
  const final = await converged(fleet)
  await heads.stop()
  const lost = await missing(next, load.acks)
  const overlaps = fleet.overlaps()
  return {
    scenario: 'failover',
    killed: active.name,
    new_master: next.name,
    takeover_ms: takeoverMs,
    first_insert_after_ms: firstAck.at - killedAt,
    acknowledged: load.acks.length,
    failed_inserts: load.failures.length,
    lost: lost.length,
    overlaps: overlaps.length,
    final_head: final.seq,
    checks: {
      no_acknowledged_insert_lost: lost.length === 0,
      no_profile_overlap: overlaps.length === 0,
      heads_never_move_back: heads.backwards.length === 0
    },
    goals: { takeover: goal(firstAck.at - killedAt < 10_000, 'inserts accepted again within 10 s') },
    problems: [...lost.slice(0, 5), ...overlaps.slice(0, 5), ...heads.backwards.slice(0, 5)]
  }
}

export const SCENARIOS = { propagation, 'catch-up': catchUp, partition, stalls, failover } as const
