import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'
import type { Teardown } from './tmp.js'

/**
 * Per-test PostgreSQL databases on the server the machines run (127.0.0.1:5432, trust auth,
 * user postgres; PGHOST, PGPORT, PGUSER and PGPASSWORD override). Each test gets its own
 * database, dropped when the test ends, so parallel runs never collide.
 */
export function testServer (): Omit<PgStoreConfig, 'database' | 'schema'> {
  return {
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
    ...(process.env.PGPASSWORD === undefined ? {} : { password: process.env.PGPASSWORD })
  }
}

/** Runs one statement on a database (tests use it to look at tables directly). */
export async function pgQuery<R extends pg.QueryResultRow = pg.QueryResultRow> (config: PgStoreConfig, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

/**
 * A uniquely named database for this test, dropped (WITH FORCE) at teardown. With
 * `create: false` only the name is reserved, for tests of a store creating its database.
 * When PostgreSQL does not answer, this throws, so the test fails saying why; it never skips.
 */
export async function createTestDatabase (t: Teardown, opts: { create?: boolean } = {}): Promise<PgStoreConfig> {
  const server = testServer()
  const database = `lm_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = { ...server, database: 'postgres' }
  const client = new pg.Client({ ...admin, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw new Error(`PostgreSQL does not answer at ${server.host}:${server.port} as user ${server.user} ` +
      `(${err instanceof Error ? err.message || String(err) : String(err)}). Start it with ` +
      '`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set PGHOST/PGPORT/PGUSER.')
  }
  t.teardown(async () => {
    await pgQuery(admin, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`)
  })
  try {
    if (opts.create !== false) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
  } finally {
    await client.end()
  }
  return { ...server, database }
}
