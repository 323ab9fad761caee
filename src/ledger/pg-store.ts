import pg from 'pg'
import { LedgerMeshError } from '../base/errors.js'
import { type Entry, type LedgerOp, GENESIS_HASH } from './entry.js'
import type { Head, SignedHead } from './head.js'
import type { LedgerStore } from './store.js'
import { type PgTables, connectCreatingDatabase, createTables, newPgPool } from './pg-schema.js'
import { type PgHost, pgHostText } from './pg-hosts.js'
import { PgPrimary, type PrimaryChange } from './pg-primary.js'
import { translatePgError } from './pg-errors.js'
import { REPLICATION_SQL, SYNC_CHECK_SQL, type ReplicationState, replicationState } from './pg-replication.js'
import { setLocalTimeouts, sqlLiteral, withLiterals, writeStatements } from './pg-write.js'
import { type SignCommit, chainAndSign, checkExpectedHead, checkAppendable, decodeJson, tombstoneTarget, toEntry, uniqueIds } from './store-codec.js'

export interface PgStoreConfig {
  host: string
  port: number
  /** a cluster's servers, tried in order for the primary (libpq's multi-host form); `host`/`port` when absent */
  hosts?: PgHost[]
  /** LEDGER_REQUIRE_SYNC: refuse a commit while no synchronous standby would confirm it */
  requireSync?: boolean
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

/** The writer lease a master holds: its key and the epoch it acquired the lease at. */
export interface WriterFence {
  holder: string
  epoch: number
}

/** A master's key as registered in the database. */
export interface RegisteredMaster { key: string, name: string, address: string, registered: Date, seen: Date }

/** The writer lease's row, as any master reads it. */
export interface WriterLease {
  holder: string | null
  address: string | null
  epoch: number
  expires: Date | null
  renewed: Date | null
  /** true while the lease has not expired (by the database's clock) */
  live: boolean
}

/**
 * The master's store when DB_TYPE=psql, keeping AnyLog's `ledger` table. Ordering comes from a
 * row lock on the one-row `ledger_head` table, so several masters (processes or machines) can
 * share one database.
 *
 * A commit is two round trips: BEGIN with the lock, then the rows, the head and COMMIT in one
 * message (the duplicate check inside it, see writeStatements).
 *
 * The policy is stored twice: `policy_text` holds the exact JSON that range() returns (so hashes
 * recompute byte for byte), `policy` is the same as jsonb for SQL queries.
 */
export class PgStore implements LedgerStore {
  readonly kind = 'psql' as const
  readonly location: string
  private readonly config: PgStoreConfig
  private readonly table: PgTables
  private readonly hosts: PgHost[]
  private primary?: PgPrimary
  /** when set, a commit first checks (under the ledger lock) that this lease is still held */
  private fence?: WriterFence
  /** the timeouts as SET LOCAL statements, opening every message that starts a transaction */
  private readonly setLocal: string

  constructor (config: PgStoreConfig) {
    this.config = config
    this.hosts = config.hosts ?? [{ host: config.host, port: config.port }]
    const schemaSuffix = config.schema === undefined ? '' : `?schema=${encodeURIComponent(config.schema)}`
    this.location = `postgres://${config.user}@${this.hosts.map(pgHostText).join(',')}/${config.database}${schemaSuffix}`
    const prefix = config.schema === undefined ? '' : `${pg.escapeIdentifier(config.schema)}.`
    this.table = { ledger: `${prefix}ledger`, head: `${prefix}ledger_head`, meta: `${prefix}ledger_meta`, lease: `${prefix}ledger_master_lease`, masters: `${prefix}ledger_masters` }
    const statementMs = config.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS
    this.setLocal = setLocalTimeouts({ statementMs, lockMs: config.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, idleInTransactionMs: statementMs + CLIENT_TIMEOUT_MARGIN_MS })
  }

  async open (): Promise<void> {
    if (this.primary !== undefined) return
    // the sync barrier (PgPrimary): one meta row written, in a transaction of its own
    const barrierSql = `${this.setLocal}; INSERT INTO ${this.table.meta} (key, value) VALUES ('sync_barrier', now()::text) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`
    const primary = new PgPrimary({ hosts: this.hosts, database: this.config.database, newPool: (host, database) => this.newPool(host, database), barrierSql })
    try {
      const pool = await primary.pool()
      await connectCreatingDatabase(pool, this.config.database, () => this.newPool(primary.primary ?? this.hosts[0], 'postgres'))
      await createTables(pool, `BEGIN; ${this.setLocal}`, this.table, this.config.schema, this.location)
    } catch (err) {
      await primary.end().catch(() => {})
      throw this.translate('open', err, true)
    }
    this.primary = primary
  }

  async close (): Promise<void> {
    const primary = this.primary
    if (primary === undefined) return
    this.primary = undefined
    await primary.end()
  }

  /** The cluster as this store sees it: its hosts, the primary it writes to, the failovers it rode through. */
  cluster (): { hosts: string[], primary: string | null, failovers: readonly PrimaryChange[], require_sync: boolean } {
    const primary = this.primary?.primary
    return { hosts: this.hosts.map(pgHostText), primary: primary === undefined ? null : pgHostText(primary), failovers: this.primary?.changes ?? [], require_sync: this.config.requireSync === true }
  }

  /** What the primary says of its replication now (pg-replication.ts). */
  async replication (): Promise<ReplicationState> {
    const { rows } = await this.query<Parameters<typeof replicationState>[0]>('read the replication state', REPLICATION_SQL)
    return replicationState(rows[0])
  }

  async head (): Promise<Head> {
    const { rows } = await this.query<{ seq: number, hash: string }>('read the head', `SELECT seq, hash FROM ${this.table.head} WHERE id = 1`)
    return rows[0] ?? { seq: 0, hash: GENESIS_HASH }
  }

  async signedHead (): Promise<SignedHead | undefined> {
    const { rows } = await this.query<{ signed_head: SignedHead | null }>('read the signed head', `SELECT signed_head FROM ${this.table.head} WHERE id = 1`)
    return rows[0]?.signed_head ?? undefined
  }

  async commit (ops: LedgerOp[], signHead: SignCommit, expected?: Head): Promise<Entry[]> {
    if (ops.length === 0) return []
    const ids = uniqueIds(ops)
    const { entries, found } = await this.transaction('commit', async (client, head) => {
      checkExpectedHead(head, expected, this.location)
      const { entries, signed } = chainAndSign(head, ops, signHead)
      return { entries, found: new Set(await this.writeEntries(client, head, entries, signed, true)) }
    }, this.fence)
    if (found.size > 0) {
      const present = ids.filter((id) => found.has(id))
      throw new LedgerMeshError('duplicate_id', `policy ${present[0]} is already in the ledger`, { id: present[0], ids: present })
    }
    return entries
  }

  async append (entries: Entry[], head: SignedHead): Promise<void> {
    await this.transaction('append', async (client, stored) => {
      checkAppendable(stored, entries, head, this.location)
      await this.writeEntries(client, stored, entries, head, false)
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

  async entriesAt (seqs: readonly number[]): Promise<Entry[]> {
    if (seqs.length === 0) return []
    // whole numbers written into the statement: the query helper binds scalars only
    if (!seqs.every(seq => Number.isSafeInteger(seq) && seq >= 1)) throw new LedgerMeshError('bad_command', 'entry seqs must be whole numbers from 1')
    const { rows } = await this.query<{ seq: number, op: string, policy_text: string, prev_hash: string, hash: string }>(
      'read entries',
      `SELECT seq, op, policy_text, prev_hash, hash FROM ${this.table.ledger} WHERE seq IN (${seqs.join(',')})`,
      [])
    const bySeq = new Map(rows.map(row => [Number(row.seq), row]))
    return seqs.map(seq => {
      const row = bySeq.get(seq)
      if (row === undefined) throw new LedgerMeshError('not_found', `PostgreSQL store ${this.location} holds no entry ${seq}`, { seq })
      const what = `entry ${row.seq} in ${this.location}`
      return toEntry({ seq: Number(row.seq), op: row.op, policy: decodeJson<unknown>(row.policy_text, what), prevHash: row.prev_hash, hash: row.hash }, what)
    })
  }

  /** A master's store keeps its whole log: it never begins at a snapshot, nor is it compacted. */
  async base (): Promise<undefined> { return undefined }
  async leafHashes (): Promise<Buffer> { return Buffer.alloc(0) }
  async installBase (): Promise<void> { throw new LedgerMeshError('not_supported', `PostgreSQL store ${this.location} is a master's: it holds the whole log`) }
  async compact (): Promise<void> { throw new LedgerMeshError('not_supported', `PostgreSQL store ${this.location} is a master's: its log is kept whole`) }

  async truncate (seq: number): Promise<void> {
    await this.transaction('truncate', async (client, current) => {
      let newHead = current
      if (seq < current.seq) {
        newHead = seq <= 0 ? { seq: 0, hash: GENESIS_HASH } : await this.entryHead(client, seq)
        const removed = await client.query<{ op: string, policy_text: string }>(
          `DELETE FROM ${this.table.ledger} WHERE seq > $1 RETURNING op, policy_text`, [seq])
        await this.undeleteTargetsOf(client, removed.rows)
      }
      await client.query(`UPDATE ${this.table.head} SET seq = $1, hash = $2, signed_head = NULL WHERE id = 1`, [newHead.seq, newHead.hash])
      await this.commitTransaction(client, 'COMMIT')
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

  /**
   * Takes the writer lease for `holder`, or renews it: one conditional UPDATE that succeeds
   * when the lease is free, expired or already `holder`'s, judged by the database's clock. A
   * lease taken rather than renewed gets a new epoch, so whatever an earlier holder still has
   * in flight is fenced off. Answers the lease as it stands after the attempt.
   */
  async acquireLease (holder: string, address: string, ttlMs: number): Promise<WriterLease> {
    const { rows } = await this.query<LeaseRow>('take the writer lease',
      `UPDATE ${this.table.lease} SET
         epoch = CASE WHEN holder = $1 AND expires > now() THEN epoch ELSE epoch + 1 END,
         holder = $1, address = $2, expires = now() + make_interval(secs => $3::double precision / 1000), renewed = now()
       WHERE id = 1 AND (holder IS NULL OR holder = $1 OR expires IS NULL OR expires <= now())
       RETURNING ${LEASE_COLUMNS}`, [holder, address, ttlMs])
    return rows[0] !== undefined ? leaseOf(rows[0]) : await this.readLease()
  }

  /** Ends `holder`'s lease now (a clean stop), so another master need not wait for it to expire. */
  async releaseLease (holder: string): Promise<void> {
    await this.query('release the writer lease', `UPDATE ${this.table.lease} SET expires = now() WHERE id = 1 AND holder = $1 AND expires > now()`, [holder])
  }

  async readLease (): Promise<WriterLease> {
    const { rows } = await this.query<LeaseRow>('read the writer lease', `SELECT ${LEASE_COLUMNS} FROM ${this.table.lease} WHERE id = 1`)
    if (rows[0] === undefined) throw new LedgerMeshError('store_unavailable', `postgres store ${this.location}: table ledger_master_lease has no row`)
    return leaseOf(rows[0])
  }

  /** Registers (or refreshes) a master's key: access to this database is what makes a master. */
  async registerMaster (master: { key: string, name: string, address: string }): Promise<void> {
    await this.query('register the master key',
      `INSERT INTO ${this.table.masters} (key, name, address) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address, seen = now()`, [master.key, master.name, master.address])
  }

  /** The masters registered in this database, oldest first. */
  async registeredMasters (): Promise<RegisteredMaster[]> {
    const { rows } = await this.query<RegisteredMaster>('read the registered masters', `SELECT key, name, address, registered, seen FROM ${this.table.masters} ORDER BY registered, key`)
    return rows
  }

  /** From now on every commit checks this lease under the ledger lock (undefined: no check). */
  setFence (fence: WriterFence | undefined): void {
    this.fence = fence
  }

  private newPool (host: PgHost, database: string): pg.Pool {
    const { user, password } = this.config
    const queryTimeoutMs = (this.config.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS) + CLIENT_TIMEOUT_MARGIN_MS
    return newPgPool({ ...host, user, password, database, queryTimeoutMs, clustered: this.hosts.length > 1 })
  }

  private async entryHead (client: Queryable, seq: number): Promise<Head> {
    const { rows } = await client.query<{ seq: number, hash: string }>(`SELECT seq, hash FROM ${this.table.ledger} WHERE seq = $1`, [seq])
    if (rows.length === 0) throw new LedgerMeshError('chain_broken', `postgres store ${this.location} has no entry ${seq} to truncate to`, { seq })
    return rows[0]
  }

  /**
   * Inserts entries, marks the targets of their tombstones deleted, moves the head, and
   * commits: the last statement goes with COMMIT in one message. With `checkIds` it returns
   * the batch's ids the ledger already holds, having written nothing and ended the transaction.
   */
  private async writeEntries (client: Queryable, locked: Head, entries: Entry[], signed: SignedHead, checkIds: boolean): Promise<string[]> {
    const last = entries[entries.length - 1]
    const head: Head = last === undefined ? locked : { seq: last.seq, hash: last.hash }
    const statements = writeStatements(this.table, entries, head, signed, checkIds)
    for (const [index, statement] of statements.entries()) {
      const final = index === statements.length - 1
      const results = final ? await this.commitTransaction(client, `${statement}; COMMIT`) : resultsOf(await client.query(statement))
      if (index === 0 && checkIds) {
        const present = (results[0]?.rows as Array<{ policy_id: string }> | undefined ?? []).map((row) => row.policy_id)
        if (present.length > 0) {
          if (!final) await client.query('ROLLBACK')
          return present
        }
      }
    }
    return []
  }

  /** Runs `text`, which ends with COMMIT, and makes sure the server committed (not rolled back). */
  private async commitTransaction (client: Queryable, text: string): Promise<pg.QueryResult[]> {
    const results = resultsOf(await client.query(text))
    const tag = results[results.length - 1]?.command
    if (tag !== 'COMMIT') throw new LedgerMeshError('store_unavailable', `postgres store ${this.location}: the transaction ended with ${tag ?? 'nothing'}, not COMMIT`, { location: this.location })
    return results
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

  /**
   * A transaction on one pooled connection, holding the row lock that orders every writer:
   * BEGIN and the locking SELECT go in one message, and `fn` gets the head read under the
   * lock. `fn` ends the transaction (its last statement carries COMMIT); the write is durable
   * when this resolves. If `fn` throws, the transaction is rolled back.
   */
  private async transaction<T> (what: string, fn: (client: pg.PoolClient, head: Head) => Promise<T>, fence?: WriterFence): Promise<T> {
    const { client, pool } = await this.connect(what)
    let broken: unknown
    try {
      // The lease is checked after the lock is held: a master that waited for the lock behind
      // a takeover sees the new epoch and writes nothing. FOR SHARE holds the lease row until
      // this commit ends, so a takeover (an UPDATE of that row) waits for a commit that passed
      // its fence instead of racing it.
      const check = fence === undefined
        ? ''
        : `; SELECT holder, epoch FROM ${this.table.lease} WHERE id = 1 AND holder = ${sqlLiteral(fence.holder)} AND epoch = ${sqlLiteral(fence.epoch)} AND expires > now() FOR SHARE`
      // the sync check: in every commit of a cluster, refusing only with LEDGER_REQUIRE_SYNC
      const requireSync = fence !== undefined && this.config.requireSync === true
      const syncChecked = requireSync || (fence !== undefined && this.hosts.length > 1)
      const results = resultsOf(await client.query(`BEGIN; ${this.setLocal}; SELECT seq, hash FROM ${this.table.head} WHERE id = 1 FOR UPDATE${check}${syncChecked ? `; ${SYNC_CHECK_SQL}` : ''}`))
      const synced = syncChecked && results.pop()?.rows[0]?.sync === true // the sync check answers last
      if (requireSync && !synced) {
        throw new LedgerMeshError('store_unavailable', `LEDGER_REQUIRE_SYNC=true: ${this.location} has no synchronous standby streaming now, so this commit could be lost with the primary; nothing was written`, { location: this.location })
      }
      const locked = results.slice(results.length - (fence === undefined ? 1 : 2))
      const head = locked[0]?.rows[0] as Head | undefined
      if (head === undefined) throw new LedgerMeshError('store_unavailable', `postgres store ${this.location}: table ledger_head has no row`)
      if (fence !== undefined && locked[1]?.rows.length !== 1) {
        throw new LedgerMeshError('not_active', `this master no longer holds the writer lease of ${this.location} (its epoch was ${fence.epoch}): another master writes now`, { epoch: fence.epoch })
      }
      const result = await fn(client, head)
      // committed on the primary alone: not acknowledged if that server is an old primary
      const superseded = syncChecked && !synced ? await this.primary?.superseded(pool) : undefined
      if (superseded !== undefined) {
        throw new LedgerMeshError('store_unavailable', `postgres store ${this.location}: could not ${what}: ${superseded}, and this commit, made with no synchronous standby, is on the old one alone, to be lost with its rewind; it is not acknowledged`, { location: this.location })
      }
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => { broken = rollbackErr })
      this.primary?.lost(err, pool)
      throw this.translate(what, err)
    } finally {
      // A connection that failed to roll back is destroyed rather than reused.
      client.off('error', ignoreClientError)
      client.release(broken as Error | undefined)
    }
  }

  private async connect (what: string): Promise<{ client: pg.PoolClient, pool: pg.Pool }> {
    const pool = await this.primaryPool(what)
    let client: pg.PoolClient
    try {
      client = await pool.connect()
    } catch (err) {
      this.primary?.lost(err, pool)
      throw this.translate(what, err, true)
    }
    // A checked-out client has no pool listener; if the server drops it between queries, the
    // next query fails (and is reported) instead of an unhandled 'error' crashing the process.
    client.on('error', ignoreClientError)
    return { client, pool }
  }

  /** One statement, in one message after the timeouts (its implicit transaction bounds them). */
  private async query<R extends pg.QueryResultRow> (what: string, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    const pool = await this.primaryPool(what)
    try {
      const results = resultsOf(await pool.query(`${this.setLocal}; ${withLiterals(text, values)}`))
      return results[results.length - 1] as pg.QueryResult<R>
    } catch (err) {
      this.primary?.lost(err, pool)
      throw this.translate(what, err)
    }
  }

  /** The primary's pool, found first when the store lost it (a failover, a restart). */
  private async primaryPool (what: string): Promise<pg.Pool> {
    if (this.primary === undefined) {
      throw new LedgerMeshError('store_unavailable', `postgres store ${this.location} is not open (tried to ${what})`, { location: this.location })
    }
    try {
      return await this.primary.pool()
    } catch (err) {
      throw this.translate(what, err, true)
    }
  }

  /** A store error with what was tried; `outage`: any failure is store_unavailable (connecting, opening). */
  private translate (what: string, err: unknown, outage = false): LedgerMeshError {
    const { lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS, statementTimeoutMs = DEFAULT_STATEMENT_TIMEOUT_MS } = this.config
    return translatePgError(what, err, { location: this.location, server: `${this.hosts.map(pgHostText).join(',')}/${this.config.database}`, lockTimeoutMs, statementTimeoutMs, outage })
  }
}

function ignoreClientError (): void {}

/** A simple-protocol query of several statements answers with one result per statement. */
function resultsOf (result: pg.QueryResult | pg.QueryResult[]): pg.QueryResult[] {
  return Array.isArray(result) ? result : [result]
}

interface LeaseRow { holder: string | null, address: string | null, epoch: number, expires: Date | null, renewed: Date | null, live: boolean }

const LEASE_COLUMNS = 'holder, address, epoch, expires, renewed, coalesce(expires > now(), false) AS live'

function leaseOf (row: LeaseRow): WriterLease {
  return { holder: row.holder, address: row.address, epoch: row.epoch, expires: row.expires, renewed: row.renewed, live: row.live }
}
