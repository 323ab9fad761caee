import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { Ledger } from '../ledger/ledger.js'
import { openStore } from '../ledger/open-store.js'
import { ForkWatch } from '../ledger/fork-watch.js'
import type { Ed25519Signer } from '../policies/keys.js'

/** Where `connect dbms` points the ledger. */
export interface LedgerStoreSpec {
  type: 'psql' | 'level'
  ip: string
  port: number
  user: string
  password?: string
  database: string
}

export interface OpenedLedger {
  ledger: Ledger
  /** set when the replica was found corrupt and set aside, to be re-synced from its source */
  recovery?: { reason: string, at: Date }
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
    ? await openStore({ type: 'psql', host: store.ip, port: store.port, user: store.user, password: store.password, database: store.database })
    : await openStore({ type: 'level', path: join(home, dir), durable: isMaster })
  const ledger = new Ledger({ store: ledgerStore, log: log.child({ service: 'ledger' }), masterSigner: isMaster ? opts.signer : undefined })
  try {
    await ledger.open()
    return { ledger }
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
