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
  /**
   * The sync barrier: one statement, a transaction of its own that writes (a little WAL) and
   * commits. PostgreSQL answers such a COMMIT only once the synchronous standbys that
   * synchronous_standby_names asks for hold the WAL up to it, and WAL is one sequence: so once
   * it answers, everything the server shows (commits included that it made before a crash and
   * never sent, which their clients saw fail) is on those standbys too, and survives a failover
   * to them. An old primary that no standby follows any more (started again after its standby
   * was promoted) never answers it, and the search passes over it instead of reading its data as
   * the ledger's. Without synchronous replication it answers at once (what that risks is the
   * replication watch's warning, or LEDGER_REQUIRE_SYNC's refusal). Absent: no barrier.
   */
  barrierSql?: string
}

/** How long one search for the primary may take over several hosts, passes included. */
export const FIND_PRIMARY_BUDGET_MS = 4000
/**
 * How long a server found read-write may take to show that what it holds is on its synchronous
 * standbys (the sync barrier, below) before the search passes over it.
 */
export const SYNC_BARRIER_MS = 3000
/** How long superseded() waits for each other host's answer, and then leaves a silent one unasked. */
export const SUPERSEDED_CHECK_MS = 500
const SILENT_HOST_MS = 5000
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

/**
 * A server's role, and for one that is out of recovery (a primary, or a standby promoted and
 * still read-only) the timeline it writes WAL on: a promotion starts a new one, so of two
 * servers out of recovery the one on the lower timeline is the old primary, back from a crash
 * or a hang after its standby was promoted.
 */
interface HostRole { role: Role, timeline: number | null }

/**
 * The role check, in one statement. pg_walfile_name's first 8 hex digits are the timeline the
 * server writes WAL on; it is asked only out of recovery (it refuses to answer in recovery).
 */
const ROLE_SQL = `SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS read_only,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline`

/** SQLSTATEs of a barrier on a server that holds no ledger yet (no database, schema or table): nothing to confirm. */
const NOTHING_STORED: ReadonlySet<string> = new Set(['3D000', '3F000', '42P01'])

/** What within() answers for a promise that did not settle in time. */
const LATE = Symbol('late')

/** The promise's value, or LATE when it has not settled within `ms` (it is left running). */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<typeof LATE>(resolve => { timer = setTimeout(() => { resolve(LATE) }, ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

export class PgPrimary {
  private current?: { host: PgHost, pool: pg.Pool }
  /** hosts superseded() found silent, until when it leaves them unasked */
  private readonly silentUntil = new Map<PgHost, number>()
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

  /**
   * Whether another of the cluster's hosts was promoted past the one `pool` writes to: asked
   * after a commit made while the primary had no synchronous standby. A primary that comes back
   * from a crash as its standby is promoted can be left taking writes alone for seconds
   * (pg_auto_failover 2.0 leaves it in wait_primary, synchronous replication off), and what it
   * takes then goes with its rewind. Each other host is asked its role and timeline, within
   * SUPERSEDED_CHECK_MS (one that does not answer in time tells nothing, and is not asked again
   * for SILENT_HOST_MS: a standby that is down must not slow every commit). When one out of
   * recovery is on a newer timeline, the pool is dropped (the next statement searches again)
   * and the answer says why; else undefined.
   */
  async superseded (pool: pg.Pool): Promise<string | undefined> {
    const current = this.current
    if (current === undefined || current.pool !== pool || this.opts.hosts.length < 2) return undefined
    const ours = (await this.roleOf(current.host, pool)).timeline
    if (ours === null) return undefined
    const now = performance.now()
    const others = await Promise.all(this.opts.hosts.filter(host => host !== current.host && (this.silentUntil.get(host) ?? 0) <= now).map(async host => {
      const asked = this.tryHost(host).then(answer => { void answer.pool?.end().catch(() => {}); return answer }, () => undefined)
      const answer = await within(asked, SUPERSEDED_CHECK_MS)
      // a host that does not answer (down, its address unreachable) is not asked again for a while
      if (answer === LATE) this.silentUntil.set(host, performance.now() + SILENT_HOST_MS)
      return answer === LATE ? undefined : answer
    }))
    const newer = others.find(a => a !== undefined && a.role.role !== 'standby' && a.role.timeline !== null && a.role.timeline > ours)
    if (newer === undefined) return undefined
    if (this.current === current) this.current = undefined
    void pool.end().catch(() => {})
    return `${pgHostText(current.host)} is an old primary (timeline ${ours}): ${pgHostText(newer.host)} was promoted (timeline ${newer.role.timeline})`
  }

  async end (): Promise<void> {
    this.closed = true
    await this.finding?.catch(() => {})
    const current = this.current
    this.current = undefined
    await current?.pool.end()
  }

  /**
   * Passes over the hosts until one is the primary; jittered pauses between passes. Each pass
   * asks every host at once, and takes the first, in the order given, that is read-write, on
   * the highest timeline of those out of recovery, and passes the sync barrier.
   */
  private async find (): Promise<{ host: PgHost, pool: pg.Pool }> {
    const { hosts } = this.opts
    const deadline = performance.now() + FIND_PRIMARY_BUDGET_MS
    let pause = RETRY_MIN_MS
    for (let pass = 1; ; pass++) {
      const reasons: string[] = []
      let failure: unknown
      const answers = await Promise.all(hosts.map(async host => await this.tryHost(host).catch((err: unknown) => { failure ??= err; return { host, error: err } })))
      const timelines = answers.flatMap(a => 'role' in a && a.role.timeline !== null ? [a.role.timeline] : [])
      const newest = timelines.length === 0 ? null : Math.max(...timelines)
      let found: { host: PgHost, pool: pg.Pool } | undefined
      for (const answer of answers) {
        const text = pgHostText(answer.host)
        if (!('role' in answer)) { reasons.push(`${text}: ${describePgCause(answer.error)}`); continue }
        const { role, pool } = answer
        if (found !== undefined) { void pool?.end().catch(() => {}); continue }
        if (role.role !== 'primary') {
          reasons.push(`${text} is ${role.role === 'standby' ? 'a standby (in recovery)' : 'read-only (default_transaction_read_only is on)'}`)
          continue
        }
        if (newest !== null && role.timeline !== null && role.timeline < newest) {
          // an old primary back after a failover: what it holds past the promotion is not the cluster's
          reasons.push(`${text} is an old primary (timeline ${role.timeline}; a promoted server is on timeline ${newest})`)
          void pool?.end().catch(() => {})
          continue
        }
        const barrier = await this.syncBarrier(pool!)
        if (barrier !== undefined) {
          reasons.push(`${text} is read-write but ${barrier}`)
          continue
        }
        found = { host: answer.host, pool: pool! }
      }
      if (found !== undefined) return this.adopt(found.host, found.pool)
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
   * The host's role; with a pool on the store's database when it is the primary (the caller
   * ends it unless it adopts it). A connection's error is thrown.
   */
  private async tryHost (host: PgHost): Promise<{ host: PgHost, role: HostRole, pool?: pg.Pool }> {
    const pool = this.opts.newPool(host, this.opts.database)
    try {
      const role = await this.roleOf(host, pool)
      if (role.role === 'primary') return { host, role, pool }
      await pool.end().catch(() => {})
      return { host, role }
    } catch (err) {
      await pool.end().catch(() => {})
      throw err
    }
  }

  /**
   * Runs the sync barrier (PgPrimaryOptions.barrierSql) on the server. Answers undefined once it
   * committed (or the server holds no ledger yet), or why not; on a failure the pool is ended.
   */
  private async syncBarrier (pool: pg.Pool): Promise<string | undefined> {
    const sql = this.opts.barrierSql
    if (sql === undefined) return undefined
    let client: pg.PoolClient | undefined
    try {
      client = await pool.connect()
      const committed = client.query(sql)
      committed.catch(() => {})
      if (await within(committed, SYNC_BARRIER_MS) === LATE) {
        throw new Error(`no synchronous standby confirmed its WAL within ${SYNC_BARRIER_MS} ms (an old primary that no standby follows, or its standby is away)`)
      }
      client.release()
      return undefined
    } catch (err) {
      const state = sqlState(err)
      if (state !== undefined && (NOTHING_STORED.has(state) || databaseMissing(err, this.opts.database))) {
        client?.release()
        return undefined
      }
      // a connection whose commit still waits is closed, not reused
      client?.release(true)
      await pool.end().catch(() => {})
      return describePgCause(err)
    }
  }

  /** The server's role; asked through database `postgres` when the store's database does not exist yet. */
  private async roleOf (host: PgHost, pool: pg.Pool): Promise<HostRole> {
    type Row = { recovery: boolean, read_only: string, timeline: number | null }
    let row: Row | undefined
    try {
      row = (await pool.query<Row>(ROLE_SQL)).rows[0]
    } catch (err) {
      if (!databaseMissing(err, this.opts.database)) throw err
      const admin = this.opts.newPool(host, 'postgres')
      try {
        row = (await admin.query<Row>(ROLE_SQL)).rows[0]
      } finally {
        await admin.end().catch(() => {})
      }
    }
    const timeline = row?.timeline === null || row?.timeline === undefined ? null : Number(row.timeline)
    if (row?.recovery === true) return { role: 'standby', timeline }
    return { role: row?.read_only === 'on' ? 'read-only' : 'primary', timeline }
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
    // an idle connection that the server drops (a crash, a restart, a shutdown) is a loss too:
    // else the pool's next connection could reach that server started again, read-write but
    // no longer the cluster's primary, without the search and its sync barrier
    pool.on('error', (err: Error) => { this.lost(err, pool) })
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
