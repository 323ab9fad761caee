import pg from 'pg'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { type Entry, type LedgerOp, GENESIS_HASH } from './entry.js'
import type { Head, SignedHead } from './head.js'
import type { LedgerStore } from './store.js'
import { INSERT_CHUNK, LEDGER_COLUMNS, PG, type PgTables, connectCreatingDatabase, createTables, ledgerRow, poolTypes, sqlState } from './pg-schema.js'
import { chainAndSign, checkAppendable, decodeJson, opIds, tombstoneTarget, toEntry, uniqueIds } from './store-codec.js'

export interface PgStoreConfig {
  host: string
  port: number
  user: string
  password?: string
  database: string
  /** PostgreSQL schema for the tables; the connection's search_path (public) when absent */
  schema?: string
  /** how long a writer waits for the ledger's row lock before its commit fails with `timeout` */
  lockTimeoutMs?: number
  /** how long any one statement may run before PostgreSQL cancels it */
  statementTimeoutMs?: number
}

/**
 * Defaults for the two timeouts. An insert's client waits 10 s for its answer: the master's
 * commit gives up well before, so the client hears `timeout` (and a durable outbox keeps the
 * insert) instead of a silence. A commit normally holds the lock for milliseconds.
 */
export const DEFAULT_LOCK_TIMEOUT_MS = 3000
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5000
/** A statement the server never answers (a half-open connection) fails this long after its own timeout. */
const CLIENT_TIMEOUT_MARGIN_MS = 2000

type Queryable = Pick<pg.PoolClient, 'query'>

/**
 * The master's store when DB_TYPE=psql, keeping AnyLog's `ledger` table. Ordering comes from a
 * row lock on the one-row `ledger_head` table, so several masters (processes or machines) can
 * share one database.
 *
 * The policy is stored twice: `policy_text` holds the exact JSON that range() returns (so hashes
 * recompute byte for byte), `policy` is the same as jsonb for SQL queries.
 */
export class PgStore implements LedgerStore {
  readonly kind = 'psql' as const
  readonly location: string
  private readonly config: PgStoreConfig
  private readonly table: PgTables
  private pool?: pg.Pool

  constructor (config: PgStoreConfig) {
    this.config = config
    const schemaSuffix = config.schema === undefined ? '' : `?schema=${encodeURIComponent(config.schema)}`
    this.location = `postgres://${config.user}@${config.host}:${config.port}/${config.database}${schemaSuffix}`
    const prefix = config.schema === undefined ? '' : `${pg.escapeIdentifier(config.schema)}.`
    this.table = { ledger: `${prefix}ledger`, head: `${prefix}ledger_head`, meta: `${prefix}ledger_meta` }
  }

  async open (): Promise<void> {
    if (this.pool !== undefined) return
    const pool = this.newPool(this.config.database)
    try {
      await connectCreatingDatabase(pool, this.config.database, () => this.newPool('postgres'))
      await createTables(pool, this.table, this.config.schema, this.location)
    } catch (err) {
      await pool.end().catch(() => {})
      throw this.unavailable('open', err)
    }
    this.pool = pool
  }

  async close (): Promise<void> {
    const pool = this.pool
    if (pool === undefined) return
    this.pool = undefined
    await pool.end()
  }

  async head (): Promise<Head> {
    const { rows } = await this.query<{ seq: number, hash: string }>('read the head', `SELECT seq, hash FROM ${this.table.head} WHERE id = 1`)
    return rows[0] ?? { seq: 0, hash: GENESIS_HASH }
  }

  async signedHead (): Promise<SignedHead | undefined> {
    const { rows } = await this.query<{ signed_head: SignedHead | null }>('read the signed head', `SELECT signed_head FROM ${this.table.head} WHERE id = 1`)
    return rows[0]?.signed_head ?? undefined
  }

  async commit (ops: LedgerOp[], signHead: (head: Head) => SignedHead): Promise<Entry[]> {
    if (ops.length === 0) return []
    const ids = uniqueIds(ops)
    return await this.transaction('commit', async (client) => {
      const head = await this.lockHead(client)
      const { rows } = await client.query<{ policy_id: string }>(
        `SELECT policy_id FROM ${this.table.ledger} WHERE policy_id = ANY($1::text[])`, [ids])
      if (rows.length > 0) {
        const duplicates = rows.map(row => row.policy_id)
        throw new LedgerMeshError('duplicate_id', `policy ${duplicates[0]} is already in the ledger`, { id: duplicates[0], ids: duplicates })
      }
      const { entries, signed } = chainAndSign(head, ops, signHead)
      await this.writeEntries(client, entries, signed)
      return entries
    })
  }

  async append (entries: Entry[], head: SignedHead): Promise<void> {
    await this.transaction('append', async (client) => {
      checkAppendable(await this.lockHead(client), entries, head, this.location)
      await this.writeEntries(client, entries, head)
    })
  }

  async range (fromSeq: number, limit: number): Promise<Entry[]> {
    if (!(limit > 0)) return []
    const { rows } = await this.query<{ seq: number, op: string, policy_text: string, prev_hash: string, hash: string }>(
      'read entries',
      `SELECT seq, op, policy_text, prev_hash, hash FROM ${this.table.ledger} WHERE seq >= $1 ORDER BY seq LIMIT $2`,
      [Math.max(0, Math.ceil(fromSeq)), Number.isFinite(limit) ? Math.floor(limit) : null])
    return rows.map((row) => {
      const what = `entry ${row.seq} in ${this.location}`
      const policy = decodeJson<unknown>(row.policy_text, what)
      return toEntry({ seq: row.seq, op: row.op, policy, prevHash: row.prev_hash, hash: row.hash }, what)
    })
  }

  async truncate (seq: number): Promise<void> {
    await this.transaction('truncate', async (client) => {
      const current = await this.lockHead(client)
      let newHead = current
      if (seq < current.seq) {
        newHead = seq <= 0 ? { seq: 0, hash: GENESIS_HASH } : await this.entryHead(client, seq)
        const removed = await client.query<{ op: string, policy_text: string }>(
          `DELETE FROM ${this.table.ledger} WHERE seq > $1 RETURNING op, policy_text`, [seq])
        await this.undeleteTargetsOf(client, removed.rows)
      }
      await client.query(`UPDATE ${this.table.head} SET seq = $1, hash = $2, signed_head = NULL WHERE id = 1`, [newHead.seq, newHead.hash])
    })
  }

  async getMeta (key: string): Promise<string | undefined> {
    const { rows } = await this.query<{ value: string }>(`read meta ${key}`, `SELECT value FROM ${this.table.meta} WHERE key = $1`, [key])
    return rows[0]?.value
  }

  async setMeta (key: string, value: string): Promise<void> {
    await this.query(`write meta ${key}`,
      `INSERT INTO ${this.table.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value])
  }

  private newPool (database: string): pg.Pool {
    const { host, port, user, password } = this.config
    const lockTimeout = this.config.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS
    const statementTimeout = this.config.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS
    // Every wait is bounded: the row lock (lock_timeout), each statement on the server
    // (statement_timeout), an answer that never comes (query_timeout, client side), a
    // connection (connectionTimeoutMillis) and a transaction left open (idle_in_transaction).
    const pool = new pg.Pool({
      host,
      port,
      user,
      password,
      database,
      max: 10,
      types: poolTypes,
      connectionTimeoutMillis: 10_000,
      lock_timeout: lockTimeout,
      statement_timeout: statementTimeout,
      query_timeout: statementTimeout + CLIENT_TIMEOUT_MARGIN_MS,
      idle_in_transaction_session_timeout: statementTimeout + CLIENT_TIMEOUT_MARGIN_MS
    })
    // An idle client whose server went away emits 'error' on the pool; unhandled, that would
    // crash the process. The next query reports the outage as store_unavailable instead.
    pool.on('error', () => {})
    return pool
  }

  /** Takes the row lock that orders every writer, and returns the head under it. */
  private async lockHead (client: Queryable): Promise<Head> {
    const { rows } = await client.query<{ seq: number, hash: string }>(`SELECT seq, hash FROM ${this.table.head} WHERE id = 1 FOR UPDATE`)
    if (rows.length === 0) throw new LedgerMeshError('store_unavailable', `postgres store ${this.location}: table ledger_head has no row`)
    return rows[0]
  }

  private async entryHead (client: Queryable, seq: number): Promise<Head> {
    const { rows } = await client.query<{ seq: number, hash: string }>(`SELECT seq, hash FROM ${this.table.ledger} WHERE seq = $1`, [seq])
    if (rows.length === 0) throw new LedgerMeshError('chain_broken', `postgres store ${this.location} has no entry ${seq} to truncate to`, { seq })
    return rows[0]
  }

  /** Inserts entries, marks the targets of their tombstones deleted, and moves the head. */
  private async writeEntries (client: Queryable, entries: Entry[], signed: SignedHead): Promise<void> {
    const ids = opIds(entries)
    for (let start = 0; start < entries.length; start += INSERT_CHUNK) {
      const chunk = entries.slice(start, start + INSERT_CHUNK)
      const values: unknown[] = []
      const rowsSql = chunk.map((entry, i) => {
        values.push(...ledgerRow(entry, ids[start + i]))
        const base = i * LEDGER_COLUMNS.length
        return `(${LEDGER_COLUMNS.map((_, column) => `$${base + column + 1}`).join(', ')})`
      })
      await client.query(`INSERT INTO ${this.table.ledger} (${LEDGER_COLUMNS.join(', ')}) VALUES ${rowsSql.join(', ')}`, values)
    }
    const targets = entries.filter((entry) => entry.op === 'delete').map((entry) => tombstoneTarget(entry.policy)).filter((id) => id !== undefined)
    if (targets.length > 0) {
      await client.query(`UPDATE ${this.table.ledger} SET status = 'deleted' WHERE policy_id = ANY($1::text[])`, [targets])
    }
    const last = entries[entries.length - 1]
    const head: Head = last === undefined ? await this.lockHead(client) : { seq: last.seq, hash: last.hash }
    await client.query(`UPDATE ${this.table.head} SET seq = $1, hash = $2, signed_head = $3 WHERE id = 1`,
      [head.seq, head.hash, JSON.stringify(signed)])
  }

  /** After a truncate, policies whose tombstones were removed are live again. */
  private async undeleteTargetsOf (client: Queryable, removed: Array<{ op: string, policy_text: string }>): Promise<void> {
    const targets: string[] = []
    for (const row of removed) {
      if (row.op !== 'delete') continue
      const target = tombstoneTarget(decodeJson(row.policy_text, `a removed tombstone in ${this.location}`))
      if (target !== undefined) targets.push(target)
    }
    if (targets.length === 0) return
    const { ledger } = this.table
    await client.query(
      `UPDATE ${ledger} SET status = 'active'
        WHERE policy_id = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM ${ledger} t, jsonb_each(t.policy) b
                           WHERE t.op = 'delete' AND b.value->>'policy_id' = ${ledger}.policy_id)`,
      [targets])
  }

  /** BEGIN … COMMIT on one pooled connection; the write is durable when this resolves. */
  private async transaction<T> (what: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect(what)
    let broken: unknown
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => { broken = rollbackErr })
      throw this.translate(what, err)
    } finally {
      // A connection that failed to roll back is destroyed rather than reused.
      client.off('error', ignoreClientError)
      client.release(broken as Error | undefined)
    }
  }

  private async connect (what: string): Promise<pg.PoolClient> {
    const pool = this.requirePool(what)
    let client: pg.PoolClient
    try {
      client = await pool.connect()
    } catch (err) {
      throw this.unavailable(what, err)
    }
    // A checked-out client has no pool listener; if the server drops it between queries, the
    // next query fails (and is reported) instead of an unhandled 'error' crashing the process.
    client.on('error', ignoreClientError)
    return client
  }

  private async query<R extends pg.QueryResultRow> (what: string, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    const pool = this.requirePool(what)
    try {
      return await pool.query<R>(text, values)
    } catch (err) {
      throw this.translate(what, err)
    }
  }

  private requirePool (what: string): pg.Pool {
    if (this.pool === undefined) {
      throw new LedgerMeshError('store_unavailable', `postgres store ${this.location} is not open (tried to ${what})`, { location: this.location })
    }
    return this.pool
  }

  /** A duplicate policy_id is the caller's problem; a timeout says so; anything else is an outage. */
  private translate (what: string, err: unknown): LedgerMeshError {
    if (err instanceof LedgerMeshError) return err
    const state = sqlState(err)
    if (state === PG.lockNotAvailable || state === PG.queryCanceled || /query read timeout/i.test(errorMessage(err))) {
      const waited = state === PG.lockNotAvailable
        ? `waited more than ${this.config.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS} ms for the ledger lock (another transaction holds it)`
        : `took more than ${this.config.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS} ms`
      return new LedgerMeshError('timeout', `postgres store ${this.location}: could not ${what}: it ${waited}`, { location: this.location, ...(state === undefined ? {} : { causeCode: state }) })
    }
    if (sqlState(err) === PG.uniqueViolation) {
      const constraint = (err as { constraint?: string }).constraint ?? ''
      const detail = (err as { detail?: string }).detail ?? ''
      const id = /\(policy_id\)=\((.*)\)/.exec(detail)?.[1]
      if (constraint.includes('policy_id') || id !== undefined) {
        return new LedgerMeshError('duplicate_id', `policy ${id ?? '(unknown id)'} is already in the ledger`, { id })
      }
      return new LedgerMeshError('conflict', `postgres store ${this.location}: ${what} collided with another writer: ${errorMessage(err)}`)
    }
    return this.unavailable(what, err)
  }

  private unavailable (what: string, err: unknown): LedgerMeshError {
    if (err instanceof LedgerMeshError) return err
    const code = sqlState(err)
    return new LedgerMeshError(
      'store_unavailable',
      `postgres store ${this.config.host}:${this.config.port}/${this.config.database}: could not ${what}: ${describeCause(err)}`,
      { location: this.location, cause: errorMessage(err), ...(code === undefined ? {} : { causeCode: code }) }
    )
  }
}

function ignoreClientError (): void {}

/** pg's connection errors are sometimes AggregateErrors with an empty message (IPv4 + IPv6). */
function describeCause (err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    return err.errors.map(errorMessage).join('; ')
  }
  const code = sqlState(err)
  const message = errorMessage(err)
  return code === undefined || message.includes(code) ? message : `${message} (${code})`
}
