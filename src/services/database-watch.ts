import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { PrimaryChange } from '../ledger/pg-primary.js'
import type { DatabaseSummary, ReplicationState } from '../ledger/pg-replication.js'

/** How often a master reads its PostgreSQL primary's replication state. */
export const DATABASE_WATCH_EVERY_MS = 2000

/** What the watch needs of the store (PgStore). */
export interface WatchedDatabase {
  readonly location: string
  replication: () => Promise<ReplicationState>
  cluster: () => { hosts: string[], primary: string | null, failovers: readonly PrimaryChange[], require_sync: boolean }
}

/**
 * A master's watch over its PostgreSQL: whether an insert it acknowledges is on more than one
 * server (synchronous replication), and which server it writes to. It checks once before the
 * master serves (refusing to start under LEDGER_REQUIRE_SYNC=true when no synchronous standby
 * confirms commits, warning otherwise), then every DATABASE_WATCH_EVERY_MS, logging each
 * change: replication lost or back, a failover ridden through.
 */
export class DatabaseWatch {
  private latest: ReplicationState | null = null
  private checkedAt: Date | null = null
  private lastError?: string
  /** the last failover already logged */
  private lastFailover?: PrimaryChange
  private timer?: NodeJS.Timeout
  private running = false
  private reading?: Promise<void>

  constructor (private readonly opts: { store: WatchedDatabase, requireSync: boolean, log: Logger, everyMs?: number }) {}

  async start (): Promise<void> {
    const { store, requireSync, log } = this.opts
    const state = await store.replication()
    this.record(state)
    if (state.problem !== undefined) {
      if (requireSync) throw new LedgerMeshError('store_unavailable', `LEDGER_REQUIRE_SYNC=true and ${store.location} cannot confirm a commit on a second server: ${state.problem}`, { location: store.location })
      log.warn({ database: store.location, problem: state.problem }, `PostgreSQL has no synchronous standby: ${state.problem} (set LEDGER_REQUIRE_SYNC=true to refuse instead)`)
    }
    this.running = true
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    await this.reading
  }

  /** What status and health show. */
  summary (): DatabaseSummary {
    const cluster = this.opts.store.cluster()
    return {
      location: this.opts.store.location,
      hosts: cluster.hosts,
      primary: cluster.primary,
      require_sync: cluster.require_sync,
      replication: this.latest,
      checked_at: this.checkedAt?.toISOString() ?? null,
      ...(this.lastError !== undefined ? { error: this.lastError } : {}),
      failovers: cluster.failovers
    }
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.reading = this.read().finally(() => { this.schedule() })
    }, this.opts.everyMs ?? DATABASE_WATCH_EVERY_MS)
    this.timer.unref()
  }

  private async read (): Promise<void> {
    try {
      this.record(await this.opts.store.replication())
      this.lastError = undefined
    } catch (err) {
      this.lastError = errorMessage(err)
    }
    const { failovers } = this.opts.store.cluster()
    const last = failovers[failovers.length - 1]
    if (last !== undefined && last !== this.lastFailover) {
      this.opts.log.warn({ from: last.from, to: last.to, at: last.at }, `PostgreSQL failover: writes now go to ${last.to} (were ${last.from})`)
    }
    this.lastFailover = last
  }

  private record (state: ReplicationState): void {
    const before = this.latest
    this.latest = state
    this.checkedAt = new Date()
    if (before === null) return
    if (before.problem === undefined && state.problem !== undefined) this.opts.log.warn({ problem: state.problem }, `PostgreSQL synchronous replication lost: ${state.problem}`)
    if (before.problem !== undefined && state.problem === undefined) this.opts.log.info({ standbys: state.synchronous_standbys }, 'PostgreSQL synchronous replication is back: commits wait for a standby again')
  }
}
