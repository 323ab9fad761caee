import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { ClassicLevel } from 'classic-level'
import { canonicalJson } from '../../src/policies/canonical.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import { preparePolicy } from '../../src/policies/prepare.js'
import { makeTopology, rttMs, type LinkSettings } from '../wan/topology.js'
import { envInt, percentile, round } from '../lib/harness.js'
import { type Costs, type LinkModel, type Network, type SimNode, random, relayTree, simulate, simulateInsert } from './model.js'
import { type RealRun, realRun } from './real-runs.js'

/**
 * sim: the propagation simulator (model.ts), calibrated on real runs on this machine, checked
 * against two real runs it was not calibrated on, then used to choose the relay tree for
 * fleets one machine cannot host.
 *
 * 1. Calibration: real loopback runs with 5 and 20 replicas (BENCH_SIM_INSERTS inserts each,
 *    default 60): the master's CPU per insert at both sizes gives its per-push cost and its
 *    commit cost; the replicas' CPU per insert the apply cost; their idle CPU the background
 *    load; the store's durable write is timed on its own. What the 5-replica run showed beyond
 *    the model (each replica's lag less the model's) is the noise the model draws from.
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

const WAN_RESULTS = join(import.meta.dirname, '..', 'results', 'wan-propagation.json')
/** pushed on a watch stream for one insert: the steady-state benchmark's measured wire bytes */
const PUSH_BYTES = 757

export async function sim (): Promise<SimRow[]> {
  const inserts = envInt('BENCH_SIM_INSERTS', 60)
  const validationReplicas = envInt('BENCH_SIM_REPLICAS', 50)
  const rows: SimRow[] = []

  // ---- 1. calibration ----
  const small = await realRun({ replicas: 5, inserts })
  const medium = await realRun({ replicas: 20, inserts })
  const pushMs = Math.max(0.01, (medium.masterCpuMsPerInsert - small.masterCpuMsPerInsert) / (medium.replicas - small.replicas))
  const replicaCpu = [...small.replicaCpuMsPerInsert, ...medium.replicaCpuMsPerInsert]
  const costs: Costs = {
    commitMs: Math.max(0.05, small.masterCpuMsPerInsert - small.replicas * pushMs),
    durableMs: await durableWriteMs(),
    pushMs,
    applyMs: Math.max(0.05, replicaCpu.reduce((a, b) => a + b, 0) / replicaCpu.length),
    pushBytes: PUSH_BYTES,
    entryBytes: entryBytes()
  }
  const backgroundLoad = (small.idleLoad + medium.idleLoad) / 2
  const loopback: LinkModel = { rttMs: () => 0.1, jitter: 0, stall: 0, stallMinMs: 0, rateKbit: 0 }
  const star = (count: number, regions = 1): SimNode[] => Array.from({ length: count }, (_, i) => ({ region: i % regions, source: -1 }))
  const shared = (nodes: SimNode[], links = loopback, masterRegion = 0): Network => ({ masterRegion, nodes, links, sharedCores: 2, backgroundLoad })
  // noise: each replica's measured lag beyond the model's, in the 5-replica run
  const residuals = residualsOf(small, shared(star(small.replicas)), costs)
  const noise = (rand: () => number): number => residuals[Math.floor(rand() * residuals.length)]
  rows.push({ part: 'calibration', what: 'costs from real runs of 5 and 20 replicas (loopback, this machine)', ...roundAll(costs), background_load: round(backgroundLoad, 4), noise_p50_ms: round(percentile(residuals, 50), 2), noise_p99_ms: round(percentile(residuals, 99), 2) })
  for (const run of [small, medium]) rows.push(realRow('calibration', run, costs, shared(star(run.replicas)), noise))

  // ---- 2. validation ----
  const large = await realRun({ replicas: validationReplicas, inserts })
  rows.push(realRow('validation', large, costs, shared(star(large.replicas)), noise))
  const relayed = await realRun({ replicas: validationReplicas, relays: 7, inserts })
  rows.push(realRow('validation', relayed, costs, shared(relayTree(relayed.replicas, 1, [7, Math.ceil(relayed.replicas / 7)])), noise))
  rows.push(wanValidation(costs, backgroundLoad, noise))

  // ---- 3. relay trees for fleets one machine cannot host ----
  const wanLinks = wanLinkModel()
  for (const count of [1000, 10_000]) {
    const limit = count >= 10_000 ? 2000 : 1000
    for (const fanout of treesFor(count)) {
      const nodes = fanout.length === 0 ? star(count, 3) : relayTree(count, 3, fanout)
      const net: Network = { masterRegion: 0, nodes, links: wanLinks, coresPerNode: 2 }
      const r = simulate(net, costs, { inserts: 200, seed: 7, noise })
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
  return count <= 1000 ? [[], [10], [10, 10], [5, 14], [10, 32]] : [[], [10], [10, 10], [10, 32], [10, 10, 10]]
}

/** The model's prediction of a real run beside its measurement. */
function realRow (part: SimRow['part'], run: RealRun, costs: Costs, net: Network, noise: (rand: () => number) => number): SimRow {
  const predicted = simulate(net, costs, { inserts: 400, seed: 11, noise })
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

/** Each replica's measured lag less the model's lag for it without noise (at least 0). */
function residualsOf (run: RealRun, net: Network, costs: Costs): number[] {
  const model = simulateInsert(net, costs, random(1)).appliedMs
  return run.lags.flatMap(lags => lags.map((lag, j) => Math.max(0, lag - model[j])))
}

/** The last `npm run wan` propagation run on this machine, predicted with its topology. */
function wanValidation (costs: Costs, backgroundLoad: number, noise: (rand: () => number) => number): SimRow {
  const result = JSON.parse(readFileSync(WAN_RESULTS, 'utf8')) as { date: string, machine: { model?: string }, network: { roles: Record<string, number>, regions: number, links: LinkSettings }, rows: Array<{ scenario: string, replicas: number, inserts: number, p50_ms: number, p99_ms: number }> }
  const row = result.rows.find(r => r.scenario === 'propagation')!
  const { roles, regions, links } = result.network
  const topology = makeTopology('sim', { regions, masters: roles.master, slaves: roles.slave, workers: roles.worker, members: roles.member, joiners: 0 }, links)
  const master = topology.hosts[0]
  // every replica syncs from the active master (the harness's workers name it BLOCKCHAIN_SOURCE)
  const nodes = topology.hosts.filter(h => h.role !== 'master').map(h => ({ region: h.region, source: -1 }))
  const net: Network = {
    masterRegion: master.region,
    nodes,
    links: { rttMs: (a, b) => rttMs(links, a, b, regions), jitter: links.jitter, stall: links.stall, stallMinMs: links.stallMinMs, rateKbit: links.rateKbit },
    sharedCores: 2,
    // both masters and the link emulator run too
    backgroundLoad
  }
  const predicted = simulate(net, costs, { inserts: 400, seed: 13, noise })
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

/** The median time of a durable (synced) LevelDB write of one small batch, as the master's commit makes. */
async function durableWriteMs (): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'lm-sim-'))
  const db = new ClassicLevel<string, string>(dir)
  try {
    await db.open()
    const times: number[] = []
    for (let i = 0; i < 200; i++) {
      const started = performance.now()
      await db.batch([{ type: 'put', key: `k${i}`, value: 'x'.repeat(500) }], { sync: true })
      times.push(performance.now() - started)
    }
    return percentile(times, 50)
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function roundAll (costs: Costs): Record<string, number> {
  return Object.fromEntries(Object.entries(costs).map(([k, v]) => [k, round(v, 3)]))
}
