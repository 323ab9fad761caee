import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { type NodeProcess, ROOT, startNode } from '../helpers/node-process.js'
import { masterEnv, atActiveMaster } from '../helpers/masters.js'
import { insert, profile, startWorker } from '../helpers/fleet.js'
import { createTestDatabase } from '../helpers/pg.js'
import { startPgBouncer } from '../helpers/pgbouncer.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'

/** Every node starts with this preload: SIGUSR2 steps its wall clock (test/helpers/clock-step.mjs). */
const CLOCK_STEP = ['--import', join(ROOT, 'test', 'helpers', 'clock-step.mjs')]

/** Everything a run starts, torn down in reverse order when it ends. */
export class Cleanup {
  private readonly fns: Array<() => void | Promise<void>> = []
  teardown (fn: () => void | Promise<void>): void { this.fns.push(fn) }
  async run (): Promise<void> {
    for (const fn of this.fns.reverse()) await Promise.resolve(fn()).catch(() => {})
  }
}

/** The profiles the workers run (their runners report to the slave), and the secret in their settings. */
export const PROFILES = ['p1', 'p2', 'p3']
const KIND = 'k'

/** Where the masters keep the ledger: PostgreSQL directly, through PgBouncer (transaction pooling), or one master on LevelDB. */
export type RunStore = 'pg' | 'pgbouncer' | 'level'
export const RUN_STORES: readonly RunStore[] = ['pg', 'pgbouncer', 'level']

/**
 * A run's network, all real node processes: two masters over one PostgreSQL database (or one
 * master on LevelDB), a slave, two workers and a member. Every node can be killed and started
 * again on its own home and ports, paused, and have its wall clock stepped; each master reaches
 * the database through a proxy of its own, which the run can stall or cut.
 */
export class RobustNetwork {
  readonly nodes = new Map<string, NodeProcess>()
  readonly secret = `robust-${randomBytes(8).toString('hex')}`
  private readonly restarts = new Map<string, (previous: NodeProcess) => Promise<NodeProcess>>()
  /** each master's way to the database, by master name */
  readonly dbProxies = new Map<string, TcpProxy>()

  private constructor (readonly cleanup: Cleanup, readonly db: PgStoreConfig | undefined, readonly masterNames: string[]) {}

  static async start (cleanup: Cleanup, store: RunStore = 'pg'): Promise<RobustNetwork> {
    const db = store === 'level' ? undefined : await createTestDatabase(cleanup)
    const via = db === undefined || store === 'pg' ? db : (await startPgBouncer(cleanup)).through(db)
    const names = via === undefined ? ['master-a'] : ['master-a', 'master-b']
    const net = new RobustNetwork(cleanup, db, names)
    for (const name of names) {
      let env: Record<string, string | number> = {}
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
    for (const name of PROFILES) await net.atWriter(async master => await profile(master, name, KIND, 'acme', { password: net.secret }))
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

  /** kill -9 */
  kill (name: string): void { this.nodes.get(name)?.proc.kill('SIGKILL') }

  async restart (name: string): Promise<void> {
    const previous = this.nodes.get(name)!
    await previous.waitForExit(10_000).catch(() => {})
    this.nodes.set(name, await this.restarts.get(name)!(previous))
  }

  pause (name: string): void { this.nodes.get(name)?.proc.kill('SIGSTOP') }
  resume (name: string): void { this.nodes.get(name)?.proc.kill('SIGCONT') }
  /** Steps the node's wall clock an hour ahead, or back when it is ahead (clock-step.mjs). */
  stepClock (name: string): void { this.nodes.get(name)?.proc.kill('SIGUSR2') }

  /** `worker drain` (or `worker resume`) on the worker, tried again while it does not answer. */
  async drainWorker (name: string, drain: boolean): Promise<void> {
    await retried(async () => { await this.nodes.get(name)!.ok(drain ? 'worker drain' : 'worker resume', { method: 'POST' }) })
  }

  /** Deletes the profile and inserts it again with the same settings (a new id, so a new assignment). */
  async replaceProfile (name: string): Promise<void> {
    await this.atWriter(async master => {
      const reply = await master.command(`blockchain get profile where name = ${name}`)
      const found = Array.isArray(reply.json) ? reply.json as Array<{ profile: { id: string } }> : []
      for (const p of found) await master.ok(`blockchain delete policy where id = ${p.profile.id}`, { method: 'POST' })
    })
    await this.atWriter(async master => await profile(master, name, KIND, 'acme', { password: this.secret }))
  }
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
