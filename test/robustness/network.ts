import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { type NodeProcess, ROOT, startNode } from '../helpers/node-process.js'
import { MASTER_LEASE_TTL, masterEnv, atActiveMaster } from '../helpers/masters.js'
import { type PgCluster, startPgCluster } from '../helpers/pg-cluster.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { insert, profile, startWorker } from '../helpers/fleet.js'
import { readRunLog } from '../../bench/wan/fleet.js'
import { createTestDatabase, pgQuery } from '../helpers/pg.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import { type Policy, policyBody, policyType } from '../../src/policies/policy.js'
import type { FinalEntry, ProcessRun } from './history.js'
import { startPgBouncer } from '../helpers/pgbouncer.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'
import type { Cleanup } from '../../bench/lib/harness.js'

/** Every node starts with this preload: SIGUSR2 steps its wall clock (test/helpers/clock-step.mjs). */
const CLOCK_STEP = ['--import', join(ROOT, 'test', 'helpers', 'clock-step.mjs')]

/** Everything a run starts, torn down in reverse order when it ends (the benchmarks' own). */
export { Cleanup } from '../../bench/lib/harness.js'

/** The profiles the workers run (their runners report to the slave), and the secret in their settings. */
export const PROFILES = ['p1', 'p2', 'p3']
const KIND = 'k'

/**
 * Where the masters keep the ledger: PostgreSQL directly, through PgBouncer (transaction
 * pooling), or one master on LevelDB, all on loopback; `pg-ha`: a highly available PostgreSQL
 * (pg_auto_failover's monitor and two nodes, synchronous replication: scripts/pg-cluster.sh)
 * whose primary the faults kill or stall; or `wan`: PostgreSQL, with every node in
 * a network namespace of its own and every connection between nodes through the WAN harness's
 * link emulator (delays, stalls, partitions and resets: wan-network.ts).
 */
export type RunStore = 'pg' | 'pgbouncer' | 'level' | 'wan' | 'pg-ha'
export const RUN_STORES: readonly RunStore[] = ['pg', 'pgbouncer', 'level', 'wan', 'pg-ha']

/** What a run does with its network, whichever kind it is. */
export interface RunNetwork {
  readonly nodes: Map<string, NodeProcess>
  /** the secret in every profile's settings: never to be shown */
  readonly secret: string
  readonly masters: NodeProcess[]
  /** the nodes the clients insert and read through, the member the seed may revoke, the workers */
  readonly clientNodes: string[]
  readonly member: string
  readonly workers: string[]
  readonly profiles: string[]
  /** nodes whose wall clock a fault may step: not one whose clock times the process records */
  readonly clockNodes: string[]
  /** each master's way to the database, for db faults (empty when there is none to cut) */
  readonly dbProxies: Map<string, TcpProxy>
  /** regions a link fault may cut off (empty on loopback) */
  readonly regions: string[]
  atWriter: <T>(write: (master: NodeProcess) => Promise<T>) => Promise<T>
  restart: (name: string) => Promise<void>
  drainWorker: (name: string, drain: boolean) => Promise<void>
  replaceProfile: (name: string) => Promise<void>
  /** cuts `region` off from the others ('drop': connections held; 'reset': reset) until heal() */
  partition: (region: string, mode: 'drop' | 'reset') => Promise<void>
  heal: () => Promise<void>
  /** the fraction of chunks the links stall, for a while (undefined: back to the usual) */
  stallLinks: (fraction: number | undefined) => Promise<void>
  /** the final chain, as the masters' store holds it */
  finalLedger: () => Promise<FinalEntry[]>
  /** a highly available PostgreSQL's primary killed (started again after forMs) or stalled for forMs; absent on other stores */
  databaseFault?: (kind: 'kill' | 'stall', forMs: number) => Promise<void>
  /** every profile process's run, from the runners' own records */
  processRuns: () => Promise<ProcessRun[]>
}

/**
 * A run's network, all real node processes: two masters over one PostgreSQL database (or one
 * master on LevelDB), a slave, two workers and a member. Every node can be killed and started
 * again on its own home and ports, paused, and have its wall clock stepped; each master reaches
 * the database through a proxy of its own, which the run can stall or cut.
 */
export class RobustNetwork implements RunNetwork {
  readonly nodes = new Map<string, NodeProcess>()
  readonly clientNodes = ['m1', 'w1', 'master-a', 'master-b', 's1']
  readonly member = 'm1'
  readonly workers = ['w1', 'w2']
  readonly profiles = PROFILES
  readonly regions: string[] = []
  // the slave's clock times the process runs the checker reads (its heartbeat records)
  get clockNodes (): string[] { return [...this.nodes.keys()].filter(name => name !== 's1') }
  readonly secret = `robust-${randomBytes(8).toString('hex')}`
  private readonly restarts = new Map<string, (previous: NodeProcess) => Promise<NodeProcess>>()
  /** each master's way to the database, by master name */
  readonly dbProxies = new Map<string, TcpProxy>()
  /** where the profiles' runners record their runs (the demo runner's run_log) */
  readonly runLog: string

  /** the masters' cluster (store pg-ha) */
  private cluster?: PgCluster

  private constructor (readonly cleanup: Cleanup, readonly db: PgStoreConfig | undefined, readonly masterNames: string[]) {
    this.runLog = mkdtempSync(join(tmpdir(), 'lm-robust-runs-'))
    cleanup.teardown(() => { rmSync(this.runLog, { recursive: true, force: true }) })
  }

  static async start (cleanup: Cleanup, store: RunStore = 'pg'): Promise<RobustNetwork> {
    const cluster = store === 'pg-ha' ? await startPgCluster(cleanup) : undefined
    const db = store === 'level' || cluster !== undefined ? undefined : await createTestDatabase(cleanup)
    const via = db === undefined || store === 'pg' ? db : (await startPgBouncer(cleanup)).through(db)
    const names = via === undefined && cluster === undefined ? ['master-a'] : ['master-a', 'master-b']
    const net = new RobustNetwork(cleanup, db, names)
    net.cluster = cluster
    for (const name of names) {
      let env: Record<string, string | number> = {}
      // the masters name both servers and write to whichever is primary
      if (cluster !== undefined) env = { DB_TYPE: 'psql', DB_IP: cluster.hosts, DB_USER: 'postgres', DB_NAME: cluster.database, MASTER_LEASE_TTL }
      if (via !== undefined) {
        const proxy = new TcpProxy({ host: via.host, port: via.port })
        await proxy.start()
        cleanup.teardown(async () => { await proxy.stop() })
        net.dbProxies.set(name, proxy)
        env = masterEnv({ ...via, host: '127.0.0.1', port: proxy.port })
      }
      const master = await startNode(cleanup, { type: 'master', name, env, nodeArgs: CLOCK_STEP })
      net.add(master, async previous => await startNode(cleanup, { type: 'master', name, env, nodeArgs: CLOCK_STEP, home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }))
    }
    const a = net.masters[0]
    const slaveEnv = { LEDGER_CONN: a.ledgerConn, SLOTS: 4, PROFILE_STOP_GRACE: '1 second' }
    net.add(await startNode(cleanup, { type: 'slave', name: 's1', nodeArgs: CLOCK_STEP, env: slaveEnv }),
      async previous => await startNode(cleanup, { type: 'slave', name: 's1', master: a, nodeArgs: CLOCK_STEP, env: slaveEnv, home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }))
    for (const name of ['w1', 'w2']) {
      const spec = { name, slave: 's1', slots: 2, kinds: [KIND], nodeArgs: CLOCK_STEP }
      net.add(await startWorker(cleanup, a, spec), async previous => await startWorker(cleanup, a, { ...spec, restartOf: previous }))
    }
    const member = await startNode(cleanup, { type: 'member', name: 'm1', nodeArgs: CLOCK_STEP, env: { LEDGER_CONN: a.ledgerConn } })
    net.add(member, async previous => await startNode(cleanup, { type: 'member', name: 'm1', master: a, nodeArgs: CLOCK_STEP, env: { LEDGER_CONN: a.ledgerConn }, home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }))

    await net.atWriter(async master => await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } }))
    for (const name of PROFILES) await net.atWriter(async master => await net.insertProfile(master, name))
    return net
  }

  private add (node: NodeProcess, restart: (previous: NodeProcess) => Promise<NodeProcess>): void {
    this.nodes.set(node.name, node)
    this.restarts.set(node.name, restart)
  }

  get masters (): NodeProcess[] { return this.masterNames.map(name => this.nodes.get(name)!) }

  /** Runs `write` at the master that writes: the active one of several (atActiveMaster), or the only one, tried again while it is down. */
  async atWriter<T> (write: (master: NodeProcess) => Promise<T>): Promise<T> {
    if (this.masterNames.length > 1) return await atActiveMaster(this.masters, write)
    for (let attempt = 1; ; attempt++) {
      try {
        return await write(this.masters[0])
      } catch (err) {
        if (attempt >= 40) throw err
        await new Promise(resolve => setTimeout(resolve, 500))
      }
    }
  }
  get slave (): NodeProcess { return this.nodes.get('s1')! }


  async restart (name: string): Promise<void> {
    const previous = this.nodes.get(name)!
    await previous.waitForExit(10_000).catch(() => {})
    this.nodes.set(name, await this.restarts.get(name)!(previous))
  }


  /** `worker drain` (or `worker resume`) on the worker, tried again while it does not answer. */
  async drainWorker (name: string, drain: boolean): Promise<void> {
    await retried(async () => { await this.nodes.get(name)!.ok(drain ? 'worker drain' : 'worker resume', { method: 'POST' }) })
  }

  async replaceProfile (name: string): Promise<void> {
    await replaceProfile(this, name, async master => await this.insertProfile(master, name))
  }

  /** The profile's settings: the secret, and where its runner records its own runs. */
  private async insertProfile (master: NodeProcess, name: string): Promise<unknown> {
    return await profile(master, name, KIND, 'acme', { password: this.secret, run_log: this.runLog })
  }

  /**
   * pg-kill and pg-stall: the fault hits whichever node is primary now, and heals with the
   * cluster whole again (a killed node restarted and a synchronous standby again), so the
   * next fault finds a primary with a standby to fail over to.
   */
  get databaseFault (): RunNetwork['databaseFault'] {
    const cluster = this.cluster
    if (cluster === undefined) return undefined
    return async (kind, forMs) => {
      const primary = await cluster.primary()
      await (kind === 'kill' ? cluster.kill(primary) : cluster.stall(primary))
      await new Promise(resolve => setTimeout(resolve, forMs))
      await (kind === 'kill' ? cluster.restart(primary) : cluster.resume(primary))
      await cluster.ready()
    }
  }

  async partition (): Promise<void> { throw new Error('no link faults on loopback') }
  async heal (): Promise<void> {}
  async stallLinks (): Promise<void> { throw new Error('no link faults on loopback') }

  /** The final chain, as the database holds it (a LevelDB master: its store, read once it has stopped). */
  async finalLedger (): Promise<FinalEntry[]> {
    if (this.cluster !== undefined) return await pgLedger(await this.cluster.primaryDb())
    if (this.db !== undefined) return await pgLedger(this.db)
    const master = this.masters[0]
    await master.stop()
    const store = new LevelStore({ path: join(master.home, 'ledger') })
    await store.open()
    try {
      return (await store.range(1, Infinity)).map(e => finalEntry(e.seq, e.hash, e.op, e.policy))
    } finally {
      await store.close()
    }
  }

  /**
   * Every profile process's run, from the runners' own records (a replaced profile's runs under
   * its name, and every run whatever the slave, which a fault may restart, remembers).
   */
  async processRuns (): Promise<ProcessRun[]> {
    return readRunLog(this.runLog).map(run => ({ unit: run.profile, host: run.worker, startMs: run.first, stopMs: run.last }))
  }
}

/** Deletes the profile and inserts it again (`insert`) with the same settings: a new id, so a new assignment. */
export async function replaceProfile (net: Pick<RunNetwork, 'atWriter'>, name: string, insert: (master: NodeProcess) => Promise<unknown>): Promise<void> {
  await net.atWriter(async master => {
    const reply = await master.command(`blockchain get profile where name = ${name}`)
    const found = Array.isArray(reply.json) ? reply.json as Array<{ profile: { id: string } }> : []
    for (const p of found) await master.ok(`blockchain delete policy where id = ${p.profile.id}`, { method: 'POST' })
  })
  await net.atWriter(insert)
}

/** An entry of the final chain as the checker reads it. */
function finalEntry (seq: number, hash: string, op: 'put' | 'delete', policy: Policy, storedId?: string): FinalEntry {
  const body = policyBody(policy)
  const type = policyType(policy)
  return {
    seq,
    hash,
    op,
    id: String(body.id ?? storedId),
    type,
    author: String(body.public_key),
    ...(op === 'delete' ? { target: String(body.policy_id) } : {}),
    ...(type === 'revocation' ? { revokes: String(body.key) } : {})
  }
}

/** The final chain from the masters' PostgreSQL database. */
export async function pgLedger (db: PgStoreConfig): Promise<FinalEntry[]> {
  const rows = await pgQuery<{ seq: string, op: 'put' | 'delete', policy_id: string, policy_text: string, hash: string }>(db, 'SELECT seq, op, policy_id, policy_text, hash FROM ledger ORDER BY seq')
  return rows.map(row => finalEntry(Number(row.seq), row.hash, row.op, JSON.parse(row.policy_text) as Policy, row.policy_id))
}

async function retried (fn: () => Promise<void>, attempts = 20): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn()
      return
    } catch (err) {
      if (attempt >= attempts) throw err
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  }
}
