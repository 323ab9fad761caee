import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { type NodeProcess, ROOT, startNode } from '../../test/helpers/node-process.js'
import { type Child, spawnChild } from '../lib/child.js'
import { type Cleanup, tempDir } from '../lib/harness.js'
import type { WanHost, WanTopology } from './topology.js'

/**
 * The nodes of the simulated WAN: one ledgermesh process per host, each in its namespace,
 * started from an env file as a deployment would (INTERNAL_IP its own address, EXTERNAL_IP the
 * public one the emulator relays), plus the link emulator. The harness runs in the hub
 * namespace: it reaches every node's REST server directly (no emulated delay), as an operator's
 * console in each data centre would; everything between nodes crosses the emulator.
 *
 * Masters keep the ledger in PostgreSQL, reached through its unix socket (the one way out of
 * the namespaces: a database beside the masters, with no emulated delay).
 */

/** Every host listens on the same ports, in its own namespace. */
export const TCP_PORT = 32048
export const REST_PORT = 32049
export const PG_SOCKET = process.env.WAN_PGHOST ?? '/var/run/postgresql'
export const RUNNER = `${process.execPath} ${join(ROOT, 'scripts', 'demo-runner.mjs')}`
export const PROFILE_KIND = 'demo'

export interface FleetOptions {
  /** BLOCKCHAIN_SYNC of every node */
  sync: string
  /** profile slots per worker */
  slots: number
  /** node's own arguments for every node process (a preload, say) */
  nodeArgs?: string[]
}

export interface WanNode { host: WanHost, node: NodeProcess }

/**
 * The REST token of every node: the harness writes from the hub, another host as a node sees
 * it, and without a token a node takes writes from its own host only.
 */
export const REST_TOKEN = randomBytes(16).toString('hex')
export const AUTHORIZATION = { Authorization: `Bearer ${REST_TOKEN}` }

export class WanFleet {
  readonly nodes = new Map<string, WanNode>()
  /** where the demo runners append their heartbeats (profile overlap checks read it) */
  readonly runLog: string

  private constructor (readonly t: Cleanup, readonly topo: WanTopology, readonly emulator: Child, readonly db: pg.ClientConfig & { database: string }, readonly opts: FleetOptions, dir: string) {
    this.runLog = join(dir, 'runs')
    mkdirSync(this.runLog)
  }

  static async start (t: Cleanup, topo: WanTopology, opts: FleetOptions, log: (line: string) => void): Promise<WanFleet> {
    const emulator = await spawnChild(t, '../wan/emulator-child.ts', { links: topo.links, regions: topo.regions })
    await emulator.call('hosts', { hosts: topo.hosts })
    for (const host of topo.hosts) await emulator.call('listen', { host, ports: [TCP_PORT, REST_PORT] })
    const db = await createDatabase(t, `lmwan_${topo.runId}`)
    const fleet = new WanFleet(t, topo, emulator, db, opts, tempDir(t, 'lm-wan-'))
    const started = performance.now()
    const byRole = (role: WanHost['role']): WanHost[] => topo.hosts.filter(h => h.role === role && h.spare !== true)
    // masters one after the other (the first begins the ledger), then the rest five at a time:
    // thirty processes starting at once on two cores would time out their start-up
    for (const host of byRole('master')) await fleet.startHost(host)
    for (const role of ['slave', 'worker', 'member'] as const) {
      const hosts = byRole(role)
      for (let i = 0; i < hosts.length; i += 5) await Promise.all(hosts.slice(i, i + 5).map(async host => await fleet.startHost(host)))
    }
    log(`${fleet.nodes.size} nodes started in ${((performance.now() - started) / 1000).toFixed(0)} s`)
    return fleet
  }

  get masters (): WanNode[] { return this.all.filter(n => n.host.role === 'master') }
  get all (): WanNode[] { return [...this.nodes.values()] }
  /** every node still running */
  get live (): WanNode[] { return this.all.filter(n => n.node.exitCode === undefined) }

  node (name: string): NodeProcess {
    const found = this.nodes.get(name)
    if (found === undefined) throw new Error(`no node ${name}`)
    return found.node
  }

  /** LEDGER_CONN: every master's public address. */
  get ledgerConn (): string {
    return this.topo.hosts.filter(h => h.role === 'master').map(h => `${h.publicIp}:${TCP_PORT}`).join(',')
  }

  /** The slave a worker of region `region` reports to. */
  slaveFor (region: number): string {
    const slaves = this.topo.hosts.filter(h => h.role === 'slave')
    return (slaves.find(s => s.region === region) ?? slaves[region % slaves.length]).name
  }

  envFor (host: WanHost): Record<string, string | number> {
    const common = {
      INTERNAL_IP: host.ip,
      EXTERNAL_IP: host.publicIp,
      TCP_BIND: 'true',
      REST_BIND: 'true',
      LEDGER_CONN: this.ledgerConn,
      BLOCKCHAIN_SYNC: this.opts.sync,
      LOCATION: `region-${host.region}`,
      REST_TOKEN,
      LOG_LEVEL: 'info'
    }
    switch (host.role) {
      case 'master':
        return { ...common, DB_TYPE: 'psql', DB_IP: PG_SOCKET, DB_PORT: Number(this.db.port ?? 5432), DB_USER: String(this.db.user), DB_NAME: this.db.database }
      case 'slave':
        return { ...common, SLOTS: this.opts.slots * 8, PROFILE_STOP_GRACE: '1 second' }
      case 'worker':
        return {
          ...common,
          BLOCKCHAIN_SOURCE: 'master',
          SLAVE_NAME: this.slaveFor(host.region),
          SLOTS: this.opts.slots,
          PROFILE_KINDS: PROFILE_KIND,
          [`PROFILE_RUNNER_${PROFILE_KIND.toUpperCase()}`]: RUNNER,
          PROFILE_STOP_GRACE: '1 second'
        }
      case 'member':
        return common
    }
  }

  /** Starts (or restarts, on the same home) the node of `host`. */
  async startHost (host: WanHost, restartOf?: NodeProcess): Promise<NodeProcess> {
    const firstMaster = this.nodes.get(this.topo.hosts[0].name)?.node
    // a join token from the first master, as an operator hands them out
    const joinToken = host.role === 'master' || restartOf !== undefined ? undefined : await this.joinToken(firstMaster)
    const node = await startNode(this.t, {
      type: host.role,
      name: host.name,
      netns: { name: host.ns, host: host.ip },
      tcpPort: TCP_PORT,
      restPort: REST_PORT,
      ...(restartOf !== undefined ? { home: restartOf.home } : {}),
      join: false,
      ...(this.opts.nodeArgs !== undefined ? { nodeArgs: this.opts.nodeArgs } : {}),
      env: { ...this.envFor(host), ...(joinToken !== undefined ? { JOIN_TOKEN: joinToken } : {}) },
      startWithinMs: 120_000
    })
    this.nodes.set(host.name, { host, node })
    // WAN_LOG_DIR: every node's log kept there (registered after startNode's own teardown, so
    // it runs first, while the process still holds its lines)
    const logDir = process.env.WAN_LOG_DIR
    if (logDir !== undefined) {
      this.t.teardown(() => { mkdirSync(logDir, { recursive: true }); writeFileSync(join(logDir, `${host.name}${restartOf !== undefined ? '-restarted' : ''}.log`), node.logs() + '\n') })
    }
    return node
  }

  private async joinToken (master: NodeProcess | undefined): Promise<string> {
    if (master === undefined) throw new Error('no master to hand out join tokens')
    const reply = await master.command('create join token where uses = 1', { method: 'POST', headers: AUTHORIZATION })
    if (reply.status !== 200) throw new Error(`${master.name}: create join token answered ${reply.status}: ${reply.text}`)
    return reply.text.trim()
  }

  /** The heartbeat lines the demo runners wrote: one run per (profile, worker, pid). */
  runs (): RunLogRun[] { return readRunLog(this.runLog) }

  /**
   * Pairs of runs of one profile on two different workers whose lifetimes intersect, by the
   * runners' own clock (every host shares this machine's clock): the no-overlap check.
   */
  overlaps (): string[] {
    const byProfile = new Map<string, ReturnType<WanFleet['runs']>>()
    for (const run of this.runs()) byProfile.set(run.profile, [...(byProfile.get(run.profile) ?? []), run])
    const found: string[] = []
    for (const [profile, runs] of byProfile) {
      runs.sort((a, b) => a.first - b.first)
      for (let i = 0; i < runs.length; i++) {
        for (let j = i + 1; j < runs.length; j++) {
          const [a, b] = [runs[i], runs[j]]
          if (a.worker !== b.worker && b.first <= a.last) found.push(`${profile}: ${a.worker} (pid ${a.pid}) until ${a.last} and ${b.worker} (pid ${b.pid}) from ${b.first}`)
        }
      }
    }
    return found
  }
}

export interface RunLogRun { profile: string, worker: string, pid: number, first: number, last: number }

/**
 * The runs the demo runners recorded in `dir` (their `run_log` setting): one per (profile,
 * worker, pid), from its first heartbeat line to its last, by the runner's own clock.
 */
export function readRunLog (dir: string): RunLogRun[] {
  const runs: RunLogRun[] = []
  for (const file of readdirSync(dir)) {
    const [profile, worker, pid] = file.replace(/\.log$/, '').split('--')
    const times = readFileSync(join(dir, file), 'utf8').split('\n').filter(l => l !== '').map(l => Number(l.split(' ')[0]))
    if (times.length === 0) continue
    runs.push({ profile, worker, pid: Number(pid), first: Math.min(...times), last: Math.max(...times) })
  }
  return runs
}

/** A database of its own on the machine's PostgreSQL (through the socket), dropped at cleanup. */
async function createDatabase (t: Cleanup, database: string): Promise<pg.ClientConfig & { database: string }> {
  const server = { host: PG_SOCKET, port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' }
  const run = async (sql: string): Promise<void> => {
    const client = new pg.Client({ ...server, database: 'postgres', connectionTimeoutMillis: 5000 })
    await client.connect()
    try { await client.query(sql) } finally { await client.end() }
  }
  await run(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
  await run(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
  t.teardown(async () => { await run(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`) })
  return { ...server, database }
}
