import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { canonicalJson } from '../../src/policies/canonical.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import { preparePolicy } from '../../src/policies/prepare.js'
import { makeTopology, rttMs, type LinkSettings } from '../wan/topology.js'
import { envInt, envInts, percentile, round } from '../lib/harness.js'
import { type Costs, type LinkModel, type Network, type SimNode, relayTree, simulate } from './model.js'
import { criticalCosts } from './calibrate.js'
import { type RealRun, realRun } from './real-runs.js'

/**
 * sim: the propagation simulator (model.ts), calibrated on real runs on this machine, checked
 * against two real runs it was not calibrated on, then used to choose the relay tree for
 * fleets one machine cannot host.
 *
 * 1. Calibration: the critical path's costs (the master's commit, encoding a push, a
 *    replica's verify-and-apply) measured in-process on the real code (calibrate.ts); real
 *    loopback runs with 5 and 20 replicas (BENCH_SIM_INSERTS inserts each, default 200) then
 *    give what each process spends per insert beyond them: the master per insert and per watch
 *    stream it serves, each replica per insert (keep-alives, checkpoint gossip, anti-entropy
 *    pulls, logging). The model runs that as background tasks on the same CPUs.
 * 2. Validation: the model predicts the real 50-replica loopback run (run here) and the last
 *    `npm run wan` propagation run on this machine (bench/results/wan-propagation.json: 29
 *    replicas in 3 regions); predicted and measured p50 and p99, and the error.
 * 3. Relay trees at 1,000 and 10,000 nodes (each node its own two cores, three regions with
 *    the WAN run's round trips, jitter and stalls): p50, p99 and the master's bytes per insert
 *    for a star and for relay trees; the goals are p99 < 1 s and < 2 s, with the master
 *    sending at most 20 × the entry's size per insert.
 */
export interface SimRow {
  part: 'calibration' | 'validation' | 'relay tree'
  what: string
  [key: string]: unknown
}

/** The repository's root: the first folder up from here holding package.json (this file also runs bundled, from dist/). */
function repositoryRoot (): string {
  let dir = import.meta.dirname
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}
const WAN_RESULTS = join(repositoryRoot(), 'bench', 'results', 'wan-propagation.json')
/** pushed on a watch stream for one insert: the steady-state benchmark's measured wire bytes */
const PUSH_BYTES = 757
/** the pause between inserts in the loopback runs (real-runs.ts) and in `npm run wan`'s propagation scenario */
const PAUSE_MS = 50
const WAN_PAUSE_MS = 100
/** one insert every this many ms in the fleets the model sizes */
const SCALE_PERIOD_MS = 100

export async function sim (): Promise<SimRow[]> {
  const inserts = envInt('BENCH_SIM_INSERTS', 200)
  const validationReplicas = envInt('BENCH_SIM_REPLICAS', 50)
  const rows: SimRow[] = []

  // ---- 1. calibration ----
  const critical = await criticalCosts()
  const [smallSize, mediumSize] = envInts('BENCH_SIM_CALIBRATION', [5, 20])
  const small = await realRun({ replicas: smallSize, inserts })
  const medium = await realRun({ replicas: mediumSize, inserts })
  const replicaCpu = mean([...small.replicaCpuMsPerInsert, ...medium.replicaCpuMsPerInsert])
  const perWatch = (medium.masterCpuMsPerInsert - small.masterCpuMsPerInsert) / (medium.replicas - small.replicas)
  const measuredExtra = {
    master: Math.max(0, small.masterCpuMsPerInsert - critical.commitMs - small.replicas * perWatch),
    watch: Math.max(0, perWatch - critical.encodeMs),
    replica: Math.max(0, replicaCpu - critical.applyMs)
  }
  const backgroundLoad = (small.idleLoad + medium.idleLoad) / 2
  const loopback: LinkModel = { rttMs: () => 0.1, jitter: 0, stall: 0, stallMinMs: 0, rateKbit: 0 }
  const star = (count: number, regions = 1): SimNode[] => Array.from({ length: count }, (_, i) => ({ region: i % regions, source: -1 }))
  const shared = (nodes: SimNode[], costs: Costs, pauseMs: number, links = loopback, masterRegion = 0): Network =>
    paced({ masterRegion, nodes, links, sharedCores: 2, backgroundLoad, periodMs: pauseMs }, costs, pauseMs)
  // What real processes spend per insert beyond the critical path measured in-process is
  // partly on it (the network stack on both ends, logging, the event loop's wake-ups) and
  // partly not (gossip and pulls on timers, garbage collection): the share on it and the size
  // of the rest's tasks are fitted to the two calibration runs (their p50 and p99).
  const costsFor = (onPath: number, taskMs: number): Costs => ({
    commitMs: critical.commitMs + onPath * measuredExtra.master,
    durableMs: critical.durableMs,
    pushMs: critical.encodeMs + onPath * measuredExtra.watch,
    applyMs: critical.applyMs + onPath * measuredExtra.replica,
    pushBytes: PUSH_BYTES,
    entryBytes: entryBytes(),
    masterExtraMs: (1 - onPath) * measuredExtra.master,
    watchExtraMs: (1 - onPath) * measuredExtra.watch,
    replicaExtraMs: (1 - onPath) * measuredExtra.replica,
    bgTaskMs: taskMs,
    hopMs: 0
  })
  let fit = { onPath: 0, taskMs: 1, error: Infinity }
  for (const onPath of [0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]) {
    for (const taskMs of [1, 3, 10, 30, 100]) {
      const c = costsFor(onPath, taskMs)
      const error = [small, medium].reduce((sum, run) => {
        const r = simulate(shared(star(run.replicas), c, PAUSE_MS), c, { inserts: 150, seed: 5 })
        return sum + relError(r.p50, percentile(run.latencies, 50)) + relError(r.p99, percentile(run.latencies, 99))
      }, 0)
      if (error < fit.error) fit = { onPath, taskMs, error }
    }
  }
  const costs = costsFor(fit.onPath, fit.taskMs)
  rows.push({
    part: 'calibration',
    what: 'costs: the critical path measured in-process on the real code; the rest of what real runs of 5 and 20 replicas spent per insert (loopback, this machine), its share on the critical path and its task size fitted to those runs',
    ...roundAll(costs),
    critical_in_process: roundAll(critical as unknown as Costs),
    measured_extra_ms: roundAll(measuredExtra as unknown as Costs),
    fitted_share_on_path: fit.onPath,
    fitted_background_task_ms: fit.taskMs,
    idle_load_per_process: round(backgroundLoad, 4)
  })
  for (const run of [small, medium]) rows.push(realRow('calibration', run, costs, shared(star(run.replicas), costs, PAUSE_MS)))

  // ---- 2. validation ----
  const large = await realRun({ replicas: validationReplicas, inserts })
  rows.push(realRow('validation', large, costs, shared(star(large.replicas), costs, PAUSE_MS)))
  const relays = Math.max(1, Math.min(7, Math.floor(validationReplicas / 3)))
  const relayed = await realRun({ replicas: validationReplicas, relays, inserts })
  rows.push(realRow('validation', relayed, costs, shared(relayTree(relayed.replicas, 1, [relays, Math.ceil(relayed.replicas / relays)]), costs, PAUSE_MS)))
  rows.push(wanValidation(costs, backgroundLoad))

  // ---- 3. relay trees for fleets one machine cannot host ----
  const wanLinks = wanLinkModel()
  for (const count of envInts('BENCH_SIM_FLEETS', [1000, 10_000])) {
    const limit = count >= 10_000 ? 2000 : 1000
    for (const fanout of treesFor(count)) {
      const nodes = fanout.length === 0 ? star(count, 3) : relayTree(count, 3, fanout)
      const net: Network = { masterRegion: 0, nodes, links: wanLinks, coresPerNode: 2, periodMs: SCALE_PERIOD_MS }
      const r = simulate(net, costs, { inserts: envInt('BENCH_SIM_MODEL_INSERTS', 200), seed: 7 })
      const bytesRatio = r.masterBytesPerInsert / costs.entryBytes
      rows.push({
        part: 'relay tree',
        what: `${count} nodes, ${fanout.length === 0 ? 'star (every node syncs from the master)' : `relays: fan-out ${fanout.join(' x ')}, the rest below the last level`}`,
        nodes: count,
        p50_ms: round(r.p50, 1),
        p99_ms: round(r.p99, 1),
        master_bytes_per_insert: Math.round(r.masterBytesPerInsert),
        master_bytes_x_entry: round(bytesRatio, 1),
        goal: `p99 < ${limit} ms and master <= 20 x entry: ${r.p99 < limit && bytesRatio <= 20 ? 'met' : 'missed'}`
      })
    }
  }
  return rows
}

/** Star, and trees whose first level keeps the master within 20 × the entry size. */
function treesFor (count: number): number[][] {
  if (count < 100) return [[], [2]]
  return count <= 1000 ? [[], [10], [10, 10], [5, 14], [10, 32]] : [[], [10], [10, 10], [10, 32], [10, 10, 10]]
}

/** The model's prediction of a real run beside its measurement. */
function realRow (part: SimRow['part'], run: RealRun, costs: Costs, net: Network): SimRow {
  const predicted = simulate(net, costs, { inserts: 400, seed: 11 })
  const p50 = percentile(run.latencies, 50)
  const p99 = percentile(run.latencies, 99)
  return {
    part,
    what: `${run.replicas} replicas on loopback${run.relays > 0 ? `, ${run.relays} of them relays for the rest` : ''}`,
    inserts: run.inserts,
    measured_p50_ms: p50,
    measured_p99_ms: p99,
    predicted_p50_ms: round(predicted.p50, 1),
    predicted_p99_ms: round(predicted.p99, 1),
    error_p50: `${round((100 * (predicted.p50 - p50)) / p50, 1)}%`,
    error_p99: `${round((100 * (predicted.p99 - p99)) / p99, 1)}%`,
    master_cpu_ms_per_insert: round(run.masterCpuMsPerInsert, 3),
    replica_cpu_ms_per_insert: round(run.replicaCpuMsPerInsert.reduce((a, b) => a + b, 0) / run.replicaCpuMsPerInsert.length, 3)
  }
}

/**
 * The network with its insert period: the benchmarks insert, wait until every replica has
 * the entry, pause, and insert again, so the period is the propagation time plus the pause
 * (and the insert's own round trip): found by iterating the model.
 */
function paced (net: Network, costs: Costs, pauseMs: number): Network {
  let period = pauseMs + 10
  for (let i = 0; i < 3; i++) {
    const r = simulate({ ...net, periodMs: period }, costs, { inserts: 60, seed: 3 })
    period = pauseMs + 10 + r.mean
  }
  return { ...net, periodMs: period }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
const relError = (predicted: number, measured: number): number => Math.abs(predicted - measured) / measured

/** The last `npm run wan` propagation run on this machine, predicted with its topology. */
function wanValidation (costs: Costs, backgroundLoad: number): SimRow {
  const result = JSON.parse(readFileSync(WAN_RESULTS, 'utf8')) as { date: string, machine: { model?: string }, network: { roles: Record<string, number>, regions: number, links: LinkSettings }, rows: Array<{ scenario: string, replicas: number, inserts: number, p50_ms: number, p99_ms: number }> }
  const row = result.rows.find(r => r.scenario === 'propagation')!
  const { roles, regions, links } = result.network
  const topology = makeTopology('sim', { regions, masters: roles.master, slaves: roles.slave, workers: roles.worker, members: roles.member, joiners: 0 }, links)
  const master = topology.hosts[0]
  // every replica syncs from the active master (the harness's workers name it BLOCKCHAIN_SOURCE)
  const nodes = topology.hosts.filter(h => h.role !== 'master').map(h => ({ region: h.region, source: -1 }))
  const net: Network = paced({
    masterRegion: master.region,
    nodes,
    links: { rttMs: (a, b) => rttMs(links, a, b, regions), jitter: links.jitter, stall: links.stall, stallMinMs: links.stallMinMs, rateKbit: links.rateKbit },
    sharedCores: 2,
    backgroundLoad,
    periodMs: WAN_PAUSE_MS
  }, costs, WAN_PAUSE_MS)
  const predicted = simulate(net, costs, { inserts: 400, seed: 13 })
  return {
    part: 'validation',
    what: `npm run wan propagation (${result.date.slice(0, 10)}, ${result.machine.model ?? '?'}): ${nodes.length} replicas in ${regions} regions`,
    inserts: row.inserts,
    measured_p50_ms: row.p50_ms,
    measured_p99_ms: row.p99_ms,
    predicted_p50_ms: round(predicted.p50, 1),
    predicted_p99_ms: round(predicted.p99, 1),
    error_p50: `${round((100 * (predicted.p50 - row.p50_ms)) / row.p50_ms, 1)}%`,
    error_p99: `${round((100 * (predicted.p99 - row.p99_ms)) / row.p99_ms, 1)}%`
  }
}

/** The WAN harness's default links (3 regions, 20 ms within one, 80–150 ms between). */
function wanLinkModel (): LinkModel {
  const links: LinkSettings = { localRttMs: 20, remoteRttMs: [80, 150], jitter: 0.1, stall: 0.005, stallMinMs: 200, rateKbit: 0, nat: false }
  return { rttMs: (a, b) => rttMs(links, a, b, 3), jitter: links.jitter, stall: links.stall, stallMinMs: links.stallMinMs, rateKbit: 0 }
}

/** A probe policy's size as the ledger holds it. */
function entryBytes (): number {
  const policy = preparePolicy({ probe: { name: 'propagation-12-1765000000000' } }, new Ed25519Signer(Buffer.alloc(32, 7)))
  return Buffer.byteLength(canonicalJson(policy))
}

function roundAll (costs: Costs): Record<string, number> {
  return Object.fromEntries(Object.entries(costs).map(([k, v]) => [k, round(v, 3)]))
}
