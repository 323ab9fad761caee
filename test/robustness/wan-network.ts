import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { AUTHORIZATION, PROFILE_KIND, WanFleet } from '../../bench/wan/fleet.js'
import { type WanTopology, linksFromEnv, makeTopology } from '../../bench/wan/topology.js'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'
import { atActiveMaster } from '../helpers/masters.js'
import { insert, profile } from '../helpers/fleet.js'
import { type NodeProcess, ROOT } from '../helpers/node-process.js'
import type { FinalEntry, ProcessRun } from './history.js'
import { type Cleanup, PROFILES, type RunNetwork, pgLedger, replaceProfile } from './network.js'

/** The seed's wide-area network: two regions, a master in each, a slave, a worker in each, a member. */
export const WAN_SIZES = { regions: 2, masters: 2, slaves: 1, workers: 2, members: 1, joiners: 0 }
const CLOCK_STEP = ['--import', join(ROOT, 'test', 'helpers', 'clock-step.mjs')]

export function wanTopology (runId: string): WanTopology {
  return makeTopology(runId, WAN_SIZES, linksFromEnv())
}

/**
 * A run's network across the WAN harness (bench/wan): every node in a network namespace of its
 * own, started from its env file, every connection between two nodes through the link emulator
 * (a round trip of 20 ms within a region and 80-150 ms across, jitter, stalled chunks), the two
 * masters on one PostgreSQL database reached through its socket. Runs inside the hub namespace
 * (test/robustness/wan-child.ts), which reaches every node's REST server directly.
 */
export class WanRobustNetwork implements RunNetwork {
  readonly nodes = new Map<string, NodeProcess>()
  readonly secret = `robust-${randomBytes(8).toString('hex')}`
  readonly clientNodes = ['member-1', 'worker-1', 'master-1', 'master-2', 'slave-1']
  readonly member = 'member-1'
  readonly workers = ['worker-1', 'worker-2']
  readonly profiles = PROFILES
  readonly dbProxies = new Map()
  readonly regions: string[]
  // the runners' own clocks time the process runs: any node's may step
  get clockNodes (): string[] { return [...this.nodes.keys()] }

  private constructor (private readonly fleet: WanFleet) {
    this.regions = Array.from({ length: fleet.topo.regions }, (_v, i) => `region-${i}`)
    for (const [name, { node }] of fleet.nodes) this.track(name, node)
  }

  static async start (cleanup: Cleanup, topo: WanTopology, say: (line: string) => void): Promise<WanRobustNetwork> {
    const fleet = await WanFleet.start(cleanup, topo, { sync: '2 second', slots: 2, nodeArgs: CLOCK_STEP }, say)
    const net = new WanRobustNetwork(fleet)
    await net.atWriter(async master => await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } }))
    for (const name of PROFILES) await net.atWriter(async master => await net.insertProfile(master, name))
    return net
  }

  /** Every request of the harness's carries the REST token: it writes from the hub, another host as the nodes see it. */
  private track (name: string, node: NodeProcess): void {
    node.headers = { ...AUTHORIZATION }
    this.nodes.set(name, node)
  }

  private async insertProfile (master: NodeProcess, name: string): Promise<unknown> {
    return await profile(master, name, PROFILE_KIND, 'acme', { password: this.secret, run_log: this.fleet.runLog })
  }

  get masters (): NodeProcess[] { return this.fleet.masters.map(m => this.nodes.get(m.host.name)!) }

  async atWriter<T> (write: (master: NodeProcess) => Promise<T>): Promise<T> {
    return await atActiveMaster(this.masters, write)
  }


  async restart (name: string): Promise<void> {
    const previous = this.nodes.get(name)!
    await previous.waitForExit(10_000).catch(() => {})
    this.track(name, await this.fleet.startHost(this.fleet.nodes.get(name)!.host, previous))
  }


  async drainWorker (name: string, drain: boolean): Promise<void> {
    await this.nodes.get(name)!.ok(drain ? 'worker drain' : 'worker resume', { method: 'POST' })
  }

  async replaceProfile (name: string): Promise<void> {
    await replaceProfile(this, name, async master => await this.insertProfile(master, name))
  }

  async partition (region: string, mode: 'drop' | 'reset'): Promise<void> {
    await this.fleet.emulator.call('partition', { regions: [Number(region.replace('region-', ''))], mode })
  }

  async heal (): Promise<void> { await this.fleet.emulator.call('heal') }

  async stallLinks (fraction: number | undefined): Promise<void> {
    await this.fleet.emulator.call('stall', { fraction: fraction ?? this.fleet.topo.links.stall })
  }

  async finalLedger (): Promise<FinalEntry[]> {
    const { host, port, user, database } = this.fleet.db
    const db: PgStoreConfig = { host: String(host), port: Number(port ?? 5432), user: String(user), database }
    return await pgLedger(db)
  }

  /** From the demo runners' own records (each appends its heartbeats to the run log). */
  async processRuns (): Promise<ProcessRun[]> {
    return this.fleet.runs().map(run => ({ unit: run.profile, host: run.worker, startMs: run.first, stopMs: run.last }))
  }
}
