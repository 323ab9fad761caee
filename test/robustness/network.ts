import { randomBytes } from 'node:crypto'
import { type NodeProcess, startNode } from '../helpers/node-process.js'
import { masterEnv, startMasters, atActiveMaster } from '../helpers/masters.js'
import { insert, profile, startSlave, startWorker } from '../helpers/fleet.js'
import { createTestDatabase } from '../helpers/pg.js'
import { startPgBouncer } from '../helpers/pgbouncer.js'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'

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
 * again on its own home and ports.
 */
export class RobustNetwork {
  readonly nodes = new Map<string, NodeProcess>()
  readonly secret = `robust-${randomBytes(8).toString('hex')}`
  private readonly restarts = new Map<string, (previous: NodeProcess) => Promise<NodeProcess>>()

  private constructor (readonly cleanup: Cleanup, readonly db: PgStoreConfig | undefined, readonly masterNames: string[]) {}

  static async start (cleanup: Cleanup, store: RunStore = 'pg'): Promise<RobustNetwork> {
    const db = store === 'level' ? undefined : await createTestDatabase(cleanup)
    const via = db === undefined || store === 'pg' ? db : (await startPgBouncer(cleanup)).through(db)
    const masters = via === undefined
      ? [await startNode(cleanup, { type: 'master', name: 'master-a' })]
      : await startMasters(cleanup, via, 2)
    const net = new RobustNetwork(cleanup, db, masters.map(m => m.name))
    for (const master of masters) {
      net.add(master, async previous => await startNode(cleanup, { type: 'master', name: previous.name, env: via === undefined ? {} : masterEnv(via), home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }))
    }
    const a = masters[0]
    const slave = await startSlave(cleanup, a, 's1', 4)
    net.add(slave, async previous => await startNode(cleanup, { type: 'slave', name: 's1', master: a, env: { LEDGER_CONN: a.ledgerConn, SLOTS: 4, PROFILE_STOP_GRACE: '1 second' }, home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }))
    for (const name of ['w1', 'w2']) {
      const spec = { name, slave: 's1', slots: 2, kinds: [KIND] }
      net.add(await startWorker(cleanup, a, spec), async previous => await startWorker(cleanup, a, { ...spec, restartOf: previous }))
    }
    const member = await startNode(cleanup, { type: 'member', name: 'm1', env: { LEDGER_CONN: a.ledgerConn } })
    net.add(member, async previous => await startNode(cleanup, { type: 'member', name: 'm1', master: a, env: { LEDGER_CONN: a.ledgerConn }, home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }))

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
}
