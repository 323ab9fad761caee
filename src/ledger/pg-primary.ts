import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { PG, databaseMissing, sqlState } from './pg-schema.js'
import { type PgHost, pgHostText } from './pg-hosts.js'

/**
 * The pool of the cluster's current primary. With several hosts (a primary and its
 * standbys), it finds the one that takes writes, as libpq's `target_session_attrs=read-write`
 * does: the first host, in the order given, whose server is not in recovery and not read-only.
 * A connection error or a read-only answer on the current primary drops its pool (lost()), and
 * the next call looks again: the old primary died, or was demoted and now refuses writes.
 * With one host (one server, or a PgBouncer or HAProxy that the cluster manager points at the
 * primary) the same check runs, so a standby behind the proxy is named as such.
 */

/** A failover the store rode through: the primary it wrote to before, and the one it writes to now. */
export interface PrimaryChange { at: string, from: string, to: string }

export interface PgPrimaryOptions {
  hosts: PgHost[]
  database: string
  /** a pool on one host and database */
  newPool: (host: PgHost, database: string) => pg.Pool
}

/** How long one search for the primary may take over several hosts, passes included. */
export const FIND_PRIMARY_BUDGET_MS = 4000
/** The jittered pause between passes over the hosts grows from this to MAX. */
const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 1000
/** The failovers kept for status. */
const CHANGES_KEPT = 20

/** SQLSTATEs after which the server is no longer the primary (or no longer there). */
const LOSS_STATES: ReadonlySet<string> = new Set([
  PG.readOnlyTransaction, PG.adminShutdown, PG.crashShutdown, PG.cannotConnectNow
])

/**
 * Whether `err` says the server is gone or no longer takes writes: a connection-level failure
 * (pg's errors without a SQLSTATE: refused, reset, terminated, a read timeout), a connection
 * exception (class 08), a shutdown, or a write refused as read-only (a standby).
 */
export function isPrimaryLoss (err: unknown): boolean {
  if (err instanceof LedgerMeshError) return false
  const state = sqlState(err)
  if (state === undefined || !/^[0-9A-Z]{5}$/.test(state)) return true
  return state.startsWith('08') || LOSS_STATES.has(state)
}

/** What the role check found on a server. */
type Role = 'primary' | 'standby' | 'read-only'

export class PgPrimary {
  private current?: { host: PgHost, pool: pg.Pool }
  private finding?: Promise<{ host: PgHost, pool: pg.Pool }>
  private lastPrimary?: string
  private readonly changeList: PrimaryChange[] = []
  private closed = false

  constructor (private readonly opts: PgPrimaryOptions) {
    if (opts.hosts.length === 0) throw new LedgerMeshError('bad_config', 'no database host given')
  }

  /** The primary in use, undefined while none is known. */
  get primary (): PgHost | undefined { return this.current?.host }
  /** The failovers this store rode through, oldest first (the last 20). */
  get changes (): readonly PrimaryChange[] { return this.changeList }

  /** The current primary's pool, searching the hosts first when none is known. */
  async pool (): Promise<pg.Pool> {
    if (this.closed) throw new LedgerMeshError('store_unavailable', 'the PostgreSQL store is closed')
    if (this.current !== undefined) return this.current.pool
    this.finding ??= this.find().finally(() => { this.finding = undefined })
    return (await this.finding).pool
  }

  /**
   * Called with every failure of a statement on the primary's pool: when the failure says the
   * primary is gone or read-only, its pool is dropped (ended in the background) so the next
   * call searches again. Answers whether it did.
   */
  lost (err: unknown, pool?: pg.Pool): boolean {
    if (!isPrimaryLoss(err)) return false
    const current = this.current
    if (current === undefined || (pool !== undefined && pool !== current.pool)) return true
    this.current = undefined
    void current.pool.end().catch(() => {})
    return true
  }

  async end (): Promise<void> {
    this.closed = true
    await this.finding?.catch(() => {})
    const current = this.current
    this.current = undefined
    await current?.pool.end()
  }

  /** Passes over the hosts in order until one is the primary; jittered pauses between passes. */
  private async find (): Promise<{ host: PgHost, pool: pg.Pool }> {
    const { hosts } = this.opts
    const deadline = performance.now() + FIND_PRIMARY_BUDGET_MS
    let pause = RETRY_MIN_MS
    for (let pass = 1; ; pass++) {
      const reasons: string[] = []
      let failure: unknown
      for (const host of hosts) {
        const found = await this.tryHost(host, reasons).catch((err: unknown) => { failure = err })
        if (found !== undefined) return this.adopt(host, found)
      }
      // one host: its own error at once, as a single server always failed (callers retry)
      if (hosts.length === 1 && failure !== undefined) throw failure
      const wait = Math.random() * pause
      if (hosts.length === 1 || this.closed || performance.now() + wait >= deadline) {
        const what = hosts.length === 1 ? '' : ` after ${pass} pass${pass === 1 ? '' : 'es'} over ${hosts.length} hosts`
        throw new LedgerMeshError('store_unavailable', `no PostgreSQL primary (read-write) found${what}: ${reasons.join('; ')}`, { hosts: hosts.map(pgHostText) })
      }
      await sleep(wait)
      pause = Math.min(RETRY_MAX_MS, pause * 2)
    }
  }

  /**
   * The host's pool when its server takes writes; otherwise its reason goes into `reasons`
   * and the answer is undefined (a standby) or the connection's error is thrown.
   */
  private async tryHost (host: PgHost, reasons: string[]): Promise<pg.Pool | undefined> {
    const pool = this.opts.newPool(host, this.opts.database)
    try {
      const role = await this.roleOf(host, pool)
      if (role === 'primary') return pool
      reasons.push(`${pgHostText(host)} is ${role === 'standby' ? 'a standby (in recovery)' : 'read-only (default_transaction_read_only is on)'}`)
    } catch (err) {
      reasons.push(`${pgHostText(host)}: ${describePgCause(err)}`)
      await pool.end().catch(() => {})
      throw err
    }
    await pool.end().catch(() => {})
    return undefined
  }

  /** The server's role; asked through database `postgres` when the store's database does not exist yet. */
  private async roleOf (host: PgHost, pool: pg.Pool): Promise<Role> {
    const sql = "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS read_only"
    let row: { recovery: boolean, read_only: string } | undefined
    try {
      row = (await pool.query<{ recovery: boolean, read_only: string }>(sql)).rows[0]
    } catch (err) {
      if (!databaseMissing(err, this.opts.database)) throw err
      const admin = this.opts.newPool(host, 'postgres')
      try {
        row = (await admin.query<{ recovery: boolean, read_only: string }>(sql)).rows[0]
      } finally {
        await admin.end().catch(() => {})
      }
    }
    if (row?.recovery === true) return 'standby'
    return row?.read_only === 'on' ? 'read-only' : 'primary'
  }

  private adopt (host: PgHost, pool: pg.Pool): { host: PgHost, pool: pg.Pool } {
    const text = pgHostText(host)
    if (this.lastPrimary !== undefined && this.lastPrimary !== text) {
      this.changeList.push({ at: new Date().toISOString(), from: this.lastPrimary, to: text })
      if (this.changeList.length > CHANGES_KEPT) this.changeList.shift()
    }
    this.lastPrimary = text
    if (this.closed) {
      void pool.end().catch(() => {})
      throw new LedgerMeshError('store_unavailable', 'the PostgreSQL store is closed')
    }
    this.current = { host, pool }
    return this.current
  }
}

/** pg's connection errors are sometimes AggregateErrors with an empty message (IPv4 + IPv6). */
export function describePgCause (err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    return err.errors.map(errorMessage).join('; ')
  }
  const code = sqlState(err)
  const message = errorMessage(err)
  return code === undefined || message.includes(code) ? message : `${message} (${code})`
}
