import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { Ledger } from '../ledger/ledger.js'
import { openStore } from '../ledger/open-store.js'
import { ForkWatch } from '../ledger/fork-watch.js'
import { type PgHost, parsePgHosts } from '../ledger/pg-hosts.js'
import type { NodeConfig } from './config.js'
import type { PgStore } from '../ledger/pg-store.js'
import { DatabaseWatch } from '../services/database-watch.js'
import type { Ed25519Signer } from '../policies/keys.js'

/** Where `connect dbms` points the ledger. */
export interface LedgerStoreSpec {
  type: 'psql' | 'level'
  /** the server, or a cluster's servers in the order they are tried for the primary */
  hosts: PgHost[]
  user: string
  password?: string
  database: string
  /** LEDGER_REQUIRE_SYNC: commits refused while PostgreSQL has no synchronous standby */
  requireSync?: boolean
}

/** `connect dbms blockchain where ...`: what the command names; the rest comes from the config's DB_* values. */
export interface ConnectDbmsOptions { database: string, type?: string, ip?: string, port?: string, user?: string, password?: string }

/** The store `connect dbms` names: its options, or the config's values where it leaves one out. */
export function ledgerStoreSpec (db: NodeConfig['db'], opts: ConnectDbmsOptions): LedgerStoreSpec {
  const type = (opts.type ?? db.type).toLowerCase() === 'psql' ? 'psql' : 'level'
  // ip= and port= take libpq's multi-host form, as DB_IP and DB_PORT do
  let hosts = db.hosts
  if (opts.ip !== undefined || opts.port !== undefined) {
    try {
      hosts = parsePgHosts(opts.ip ?? db.ip, opts.port ?? db.port)
    } catch (err) {
      throw new LedgerMeshError('bad_command', `connect dbms: ${errorMessage(err)}`)
    }
  }
  // an empty password (`password=""`) means the config's, as no password
  return { type, hosts, user: opts.user ?? db.user, password: opts.password || db.password || undefined, database: opts.database, requireSync: db.requireSync }
}

export interface OpenedLedger {
  ledger: Ledger
  /** set when the replica was found corrupt and set aside, to be re-synced from its source */
  recovery?: { reason: string, at: Date }
  /** a master on PostgreSQL: its watch over the database's replication and primary */
  database?: DatabaseWatch
}

/**
 * Opens a node's ledger on its store: PostgreSQL, or LevelDB under the node's home. A
 * replica's store is only a copy: when it is corrupt, it is set aside and the replica re-syncs
 * from zero. The master's store is the original, so a master refuses to start instead.
 */
/** `light`: a light worker's store (meta only), apart from any replica the node held before. */
export async function openNodeLedger (opts: { store: LedgerStoreSpec, home: string, isMaster: boolean, signer: Ed25519Signer, log: Logger, light?: boolean }): Promise<OpenedLedger> {
  const { store, home, isMaster, log } = opts
  const dir = opts.light === true ? 'light-ledger' : 'ledger'
  const ledgerStore = store.type === 'psql'
    ? await openStore({ type: 'psql', host: store.hosts[0].host, port: store.hosts[0].port, hosts: store.hosts, user: store.user, password: store.password, database: store.database, requireSync: store.requireSync })
    : await openStore({ type: 'level', path: join(home, dir), durable: isMaster })
  const ledger = new Ledger({ store: ledgerStore, log: log.child({ service: 'ledger' }), masterSigner: isMaster ? opts.signer : undefined })
  try {
    await ledger.open()
  } catch (err) {
    const code = err instanceof LedgerMeshError ? err.code : 'internal'
    if (isMaster || store.type !== 'level' || (code !== 'chain_broken' && code !== 'store_unavailable')) throw err
    const aside = join(home, `ledger.corrupt-${Date.now()}`)
    await ledgerStore.close().catch(() => {})
    await rename(join(home, dir), aside)
    log.warn({ err: errorMessage(err), movedTo: aside }, 'the local replica is corrupt: set aside, re-syncing from zero')
    const reopened = await openNodeLedger(opts)
    return { ledger: reopened.ledger, recovery: { reason: errorMessage(err), at: new Date() } }
  }
  if (!isMaster || store.type !== 'psql') return { ledger }
  // a master on PostgreSQL checks the replication before it serves (refusing, under LEDGER_REQUIRE_SYNC)
  const database = new DatabaseWatch({ store: ledgerStore as PgStore, requireSync: store.requireSync === true, log: log.child({ service: 'database' }) })
  try {
    await database.start()
  } catch (err) {
    await ledger.close().catch(() => {})
    throw err
  }
  return { ledger, database }
}

/**
 * The node's watch over the checkpoints it is shown: a fork (two checkpoints no one history
 * holds) is logged once as an error with both checkpoints, and shown to every connected peer
 * at once so each checks the evidence itself.
 */
export async function watchForks (ledger: Ledger, log: Logger, gossip: () => { exchangeWithAll: () => Promise<void> } | undefined): Promise<ForkWatch> {
  const forks = new ForkWatch(ledger)
  forks.on('fork', report => {
    log.error({ fork_detected: report }, `fork detected: ${report.reason} (shown by ${report.source}); this node stops following the log and keeps serving reads of what it had`)
    void gossip()?.exchangeWithAll()
  })
  await forks.load()
  if (forks.current !== undefined) log.error({ fork_detected: forks.current }, `fork detected earlier (${forks.current.detected_at}): ${forks.current.reason}; this node does not follow the log`)
  return forks
}
