import pg from 'pg'
import { LedgerMeshError } from '../base/errors.js'
import { type JsonValue, policyBody, policyType } from '../policies/policy.js'
import { type Entry, GENESIS_HASH } from './entry.js'

/**
 * The PostgreSQL store's tables and rows: creating the database and tables (safely when
 * several masters open one database at once), checking a table left by something else, and
 * how an entry becomes a row of AnyLog's `ledger` table.
 */

/** The store's tables: the ledger, its one-row head, key/value meta, the writer lease (one row) and the masters' keys. */
export interface PgTables { ledger: string, head: string, meta: string, lease: string, masters: string }

/** SQLSTATE codes this store reacts to. */
export const PG = {
  uniqueViolation: '23505',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  invalidDatabase: '3D000',
  duplicateDatabase: '42P04',
  duplicateSchema: '42P06',
  duplicateTable: '42P07',
  duplicateObject: '42710',
  /** a write on a standby, or under default_transaction_read_only */
  readOnlyTransaction: '25006',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03'
} as const

/** Errors two processes can get when they create the same database or tables at once. */
export const CREATE_RACE_CODES: ReadonlySet<string> = new Set([PG.uniqueViolation, PG.duplicateDatabase, PG.duplicateSchema, PG.duplicateTable, PG.duplicateObject])

/** Rows per INSERT statement: bounds the size of one statement's text in a large batch. */
export const INSERT_CHUNK = 1000

/** The columns of `ledger`: AnyLog's, then the chain's. `open()` checks an existing table has them. */
export const LEDGER_COLUMNS = [
  'policy_type', 'policy_id', 'company', 'date', 'host', 'status', 'policy',
  'seq', 'op', 'prev_hash', 'hash', 'policy_text'
] as const

const BIGINT_OID = 20

/** A connection to one of a cluster's hosts gives up after this long, so the search moves on to the next. */
const CLUSTER_CONNECT_TIMEOUT_MS = 3000

/**
 * A pool on one server. Every wait is bounded: the row lock (lock_timeout), each statement on
 * the server (statement_timeout), a transaction left open (idle_in_transaction), all three set
 * by the store's SET LOCAL in each message, an answer that never comes (query_timeout, client
 * side) and a connection (connectionTimeoutMillis). No startup parameters, no session state and
 * no named prepared statements: the same code runs through PgBouncer's transaction pooling.
 */
export function newPgPool (opts: { host: string, port: number, user: string, password?: string, database: string, queryTimeoutMs: number, clustered: boolean }): pg.Pool {
  const { host, port, user, password, database, clustered } = opts
  const pool = new pg.Pool({
    host,
    port,
    user,
    password,
    database,
    max: 10,
    types: poolTypes,
    // a cluster's hosts are searched: a hung one must not hold up the search for long
    connectionTimeoutMillis: clustered ? CLUSTER_CONNECT_TIMEOUT_MS : 10_000,
    // a cluster's connections stay open while idle: a server that goes away then fails one of
    // them, which drops the primary's pool (PgPrimary.adopt), instead of a new connection
    // reaching that server started again as an old primary
    ...(clustered ? { idleTimeoutMillis: 0 } : {}),
    query_timeout: opts.queryTimeoutMs
  })
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would
  // crash the process. The next query reports the outage as store_unavailable instead.
  pool.on('error', () => {})
  return pool
}

/**
 * BIGINT (seq) as a JS number, for this pool only: pg's default is a string, and changing
 * the global parser would change it for every other pg user in the process.
 */
export const poolTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === BIGINT_OID) return parseSafeInteger
    return pg.types.getTypeParser(oid, format)
  }) as pg.CustomTypesConfig['getTypeParser']
}

function parseSafeInteger (text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} is beyond JavaScript's safe integers`)
  return value
}

export function sqlState (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * A policy field for AnyLog's informational text columns (company, host, date). PostgreSQL
 * text cannot hold NUL, and these columns are only a view: NULs are dropped there, while the
 * exact policy stays in policy_text.
 */
function textColumn (value: JsonValue | undefined): string | null {
  if (typeof value === 'string') return value.replaceAll('\u0000', '')
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return null
}

/**
 * jsonb cannot hold a NUL character (\u0000) or a lone UTF-16 surrogate, both valid in JSON
 * text. Such a policy keeps `policy` NULL; `policy_text` always holds it exactly. (Validation
 * refuses NUL in new policies; this keeps older ledgers and lone surrogates readable.)
 */
const JSONB_UNSUPPORTED_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

/** True when the JSON text (as JSON.stringify writes it) has something jsonb rejects. */
function jsonbCannotHold (json: string): boolean {
  // JSON.stringify escapes NUL as \u0000 and writes paired surrogates as raw characters, lone
  // ones as \udXXX: so an unescaped-backslash \u0000 or \ud800-\udfff escape is exactly the case.
  return JSONB_UNSUPPORTED_ESCAPE.test(json)
}

/**
 * True when the server said the database does not exist: PostgreSQL's 3D000, or the same
 * message under PgBouncer's own code (08P01), which it sends when its server login fails.
 */
export function databaseMissing (err: unknown, database: string): boolean {
  if (sqlState(err) === PG.invalidDatabase) return true
  return (err as { message?: unknown } | null)?.message === `database ${JSON.stringify(database)} does not exist`
}

/**
 * Connects; when the database does not exist, creates it (as `connect dbms blockchain` does),
 * through database `postgres`, directly or through PgBouncer. PgBouncer waits its
 * server_login_retry (15 s by default) before it tries a database again after a failed login:
 * past the store's query timeout, so behind a PgBouncer with that default, create the database
 * first (or lower server_login_retry), or the first open fails and a second one succeeds.
 */
export async function connectCreatingDatabase (pool: pg.Pool, database: string, adminPool: () => pg.Pool): Promise<void> {
  try {
    await pool.query('SELECT 1')
    return
  } catch (err) {
    if (!databaseMissing(err, database)) throw err
  }
  const admin = adminPool()
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
  } catch (err) {
    // Another store (or process) may have created it a moment ago.
    if (!CREATE_RACE_CODES.has(sqlState(err) ?? '')) throw err
  } finally {
    await admin.end().catch(() => {})
  }
  await pool.query('SELECT 1')
}

/**
 * Idempotent, and safe when several stores open the same empty database at once. `begin`
 * opens the transaction (BEGIN and the store's SET LOCAL timeouts), which also checks the
 * columns of a `ledger` table found there.
 */
export async function createTables (pool: pg.Pool, begin: string, tables: PgTables, schema: string | undefined, location: string): Promise<void> {
  const { ledger, head, meta } = tables
  const statements: Array<[sql: string, values?: unknown[]]> = [
    ...(schema === undefined ? [] : [[`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`] as [string]]),
    [`CREATE TABLE IF NOT EXISTS ${ledger} (
      policy_type text NOT NULL,
      policy_id   text NOT NULL UNIQUE,
      company     text,
      date        text,
      host        text,
      status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
      policy      jsonb,
      seq         bigint PRIMARY KEY,
      op          text NOT NULL CHECK (op IN ('put', 'delete')),
      prev_hash   text NOT NULL,
      hash        text NOT NULL,
      policy_text text NOT NULL
    )`],
    [`CREATE TABLE IF NOT EXISTS ${head} (
      id          integer PRIMARY KEY CHECK (id = 1),
      seq         bigint NOT NULL,
      hash        text NOT NULL,
      signed_head jsonb
    )`],
    [`INSERT INTO ${head} (id, seq, hash) VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING`, [GENESIS_HASH]],
    [`CREATE TABLE IF NOT EXISTS ${meta} (key text PRIMARY KEY, value text NOT NULL)`],
    // which master may write: holder (its public key), a fencing epoch that every takeover
    // raises, and an expiry by the database's clock (see pg-lease.ts)
    [`CREATE TABLE IF NOT EXISTS ${tables.lease} (
      id       integer PRIMARY KEY CHECK (id = 1),
      holder   text,
      address  text,
      epoch    bigint NOT NULL DEFAULT 0,
      expires  timestamptz,
      renewed  timestamptz
    )`],
    [`INSERT INTO ${tables.lease} (id) VALUES (1) ON CONFLICT (id) DO NOTHING`],
    // every master that opened this database registers its key here; the active master
    // declares them on the ledger (master_key policies) so replicas trust their heads
    [`CREATE TABLE IF NOT EXISTS ${tables.masters} (
      key        text PRIMARY KEY,
      name       text NOT NULL,
      address    text NOT NULL,
      registered timestamptz NOT NULL DEFAULT now(),
      seen       timestamptz NOT NULL DEFAULT now()
    )`]
  ]
  // Concurrent CREATE ... IF NOT EXISTS can collide in PostgreSQL's catalog (23505 on
  // pg_type): one transaction at a time creates, under a transaction-scoped advisory lock.
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect()
    try {
      await client.query(begin)
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['ledgermesh:create-tables'])
      for (const [sql, values] of statements) await client.query(sql, values)
      await checkLedgerColumns(client, schema, location)
      await client.query('COMMIT')
      break
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      // the database itself may still be settling after a concurrent CREATE DATABASE
      if (attempt >= 3 || !CREATE_RACE_CODES.has(sqlState(err) ?? '')) throw err
    } finally {
      client.release()
    }
  }
}

/** A `ledger` table left by something else (e.g. AnyLog itself) must have our columns. */
async function checkLedgerColumns (client: pg.PoolClient, schema: string | undefined, location: string): Promise<void> {
  const { rows } = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
      WHERE table_name = 'ledger' AND table_schema = COALESCE($1, current_schema())`, [schema ?? null])
  const present = new Set(rows.map((row) => row.column_name))
  const missing = LEDGER_COLUMNS.filter((column) => !present.has(column))
  if (missing.length > 0) {
    throw new LedgerMeshError('store_unavailable', `postgres store ${location}: table ledger exists but lacks columns ${missing.join(', ')}`, { missing })
  }
}

/** Column values in LEDGER_COLUMNS order, for pg-write.ts to write as escaped literals (sqlLiteral). */
export function ledgerRow (entry: Entry, id: string): unknown[] {
  if (id.includes('\u0000')) throw new LedgerMeshError('bad_policy', 'a policy id cannot contain a NUL character', { seq: entry.seq })
  const body = policyBody(entry.policy)
  const text = JSON.stringify(entry.policy)
  return [
    textColumn(policyType(entry.policy)),
    id,
    textColumn(body.company),
    textColumn(body.date),
    textColumn(body.ip ?? body.hostname),
    'active',
    jsonbCannotHold(text) ? null : text,
    entry.seq,
    entry.op,
    entry.prevHash,
    entry.hash,
    text
  ]
}
