import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'
import { freePortBlock } from './net.js'
import { ROOT } from './node-process.js'
import type { Teardown } from './tmp.js'

const run = promisify(execFile)
const SCRIPT = join(ROOT, 'scripts', 'pg-cluster.sh')

export type ClusterNode = 'node1' | 'node2'

/**
 * A highly available PostgreSQL for a test: pg_auto_failover's monitor and two data nodes with
 * synchronous replication, started by scripts/pg-cluster.sh on random free ports of 127.0.0.1
 * and stopped at teardown. When pg_auto_failover is not installed, the start fails saying so.
 */
export interface PgCluster {
  /** DB_IP for the masters: both nodes, host:port each */
  hosts: string
  ports: Record<ClusterNode, number>
  /** a database name of the test's own (the masters create it on the primary) */
  database: string
  /** the node that is primary now, by the monitor */
  primary: () => Promise<ClusterNode>
  /** kill -9 every process of a node (its keeper and its server, and walsenders held by holdReplication) */
  kill: (node: ClusterNode) => Promise<void>
  /**
   * SIGSTOP a node's walsenders: its standbys get nothing more, so what it commits from now on is
   * flushed on it alone (the next kill ends them: a primary that dies holding a WAL tail its
   * standby never got)
   */
  holdReplication: (node: ClusterNode) => Promise<void>
  /** start a killed node's server alone, without its keeper: an old primary comes back read-write, as it was */
  startPostgresAlone: (node: ClusterNode) => Promise<void>
  /** SIGSTOP the monitor's and the keepers' processes, the servers left running: a test sets the nodes' state by hand */
  freezeKeepers: () => Promise<void>
  /** SIGSTOP / SIGCONT every process of a node */
  stall: (node: ClusterNode) => Promise<void>
  resume: (node: ClusterNode) => Promise<void>
  /** start a killed node again: it rejoins as a standby */
  restart: (node: ClusterNode) => Promise<void>
  /** until one node is primary and the other a synchronous standby */
  ready: () => Promise<void>
  switchover: () => Promise<void>
  /** a connection to the test's database on the current primary (for checks) */
  primaryDb: () => Promise<PgStoreConfig>
  stop: () => Promise<void>
}

async function script (args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { timeout: 180_000, maxBuffer: 1 << 20, env: { ...process.env, ...env } })
    return stdout.trim()
  } catch (err) {
    const { stderr = '', stdout = '' } = err as { stderr?: string, stdout?: string }
    throw new Error(`scripts/pg-cluster.sh ${args.join(' ')} failed: ${String(stderr || stdout || (err as Error).message).trim()} ` +
      '(it needs Debian\'s postgresql-<version>-auto-failover and pg-auto-failover-cli: `npm run test:setup` installs them)')
  }
}

/** `timings`: the monitor's failover timings, fast (about 4 s to fail a primary, the default) or pg_auto_failover's own. */
export async function startPgCluster (t: Teardown, opts: { timings?: 'fast' | 'default' } = {}): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'ledgermesh-pgha-'))
  const base = await freePortBlock([0, 1, 2])
  const stop = async (): Promise<void> => { await script(['stop', dir]).catch(() => {}) }
  // registered before the start: a start that fails half way leaves nothing running
  t.teardown(async () => {
    await stop()
    // KEEP_PGHA=1: the cluster's directory (monitor.log, node1.log, node2.log, the servers' logs) stays, for a post-mortem
    if (process.env.KEEP_PGHA === '1') { process.stderr.write(`[pg-cluster] KEEP_PGHA: kept ${dir}\n`); return }
    // retried: a server's last writes may still land as the directory goes
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
  })
  await script(['start', dir, String(base)], { PG_CLUSTER_TIMINGS: opts.timings ?? 'fast' })
  const ports = { node1: base + 1, node2: base + 2 }
  const primary = async (): Promise<ClusterNode> => {
    const name = await script(['primary', dir])
    if (name !== 'node1' && name !== 'node2') throw new Error(`no primary in the cluster now (the monitor says ${JSON.stringify(name)})`)
    return name
  }
  const database = `lm_ha_${randomBytes(4).toString('hex')}`
  return {
    hosts: `127.0.0.1:${ports.node1},127.0.0.1:${ports.node2}`,
    ports,
    database,
    primary,
    kill: async node => { await script(['kill', dir, node]) },
    holdReplication: async node => { await script(['hold-replication', dir, node]) },
    startPostgresAlone: async node => { await script(['postgres', dir, node]) },
    freezeKeepers: async () => { await script(['freeze', dir]) },
    stall: async node => { await script(['stall', dir, node]) },
    resume: async node => { await script(['resume', dir, node]) },
    restart: async node => { await script(['run', dir, node]) },
    ready: async () => { await script(['wait', dir]) },
    switchover: async () => { await script(['switchover', dir]) },
    primaryDb: async () => ({ host: '127.0.0.1', port: ports[await primary()], user: 'postgres', database }),
    stop
  }
}
