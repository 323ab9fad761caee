import { type ChildProcess, spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import pg from 'pg'
import type { PgStoreConfig } from '../../src/ledger/pg-store.js'
import { freePort } from './net.js'
import { testServer } from './pg.js'
import type { Teardown } from './tmp.js'

/**
 * A private PgBouncer in transaction pooling mode in front of the test server (helpers/pg.ts),
 * the way masters may reach a shared PostgreSQL: each transaction (or each statement outside
 * one) may run on another server connection, so session state, named prepared statements and
 * startup parameters other than PgBouncer's own do not survive or are refused.
 *
 * It serves every database of the server (a `*` entry), so a store may create its database
 * through it. Its `server_login_retry` is lowered from PgBouncer's 15 s so that a database just
 * created answers at once (see connectCreatingDatabase in src/ledger/pg-schema.ts).
 */
export interface PgBouncer {
  host: string
  port: number
  /** `database` (a config from createTestDatabase) reached through this PgBouncer */
  through: (database: PgStoreConfig) => PgStoreConfig
  /** the env-file keys of a node whose store is `database` through this PgBouncer */
  nodeEnv: (database: PgStoreConfig) => Record<string, string | number>
  /** what PgBouncer printed so far (its log goes to stderr) */
  logs: () => string
  /** stops it (teardown does too) */
  stop: () => Promise<void>
}

export interface PgBouncerOptions {
  /** server connections per database and user (PgBouncer's default_pool_size); default 20 */
  poolSize?: number
  /** seconds PgBouncer waits before retrying a server login that failed; default 0.5 */
  serverLoginRetrySeconds?: number
}

const START_TIMEOUT_MS = 10_000
const STOP_GRACE_MS = 3000

/** Where the pgbouncer binary is: $PGBOUNCER, else PATH and the sbin directories Debian uses. */
async function findPgBouncer (): Promise<string> {
  if (process.env.PGBOUNCER !== undefined && process.env.PGBOUNCER !== '') return process.env.PGBOUNCER
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/usr/bin']
  for (const dir of dirs) {
    const candidate = join(dir, 'pgbouncer')
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  throw new Error('pgbouncer is not installed (not on PATH nor in /usr/sbin): `.ci/run` installs it ' +
    '(DEBIAN_FRONTEND=noninteractive apt-get install -y pgbouncer), or set PGBOUNCER to its path')
}

/** pgbouncer.ini and userlist.txt quote with double quotes, doubled inside. */
const quoted = (value: string): string => `"${value.replaceAll('"', '""')}"`

function iniText (dir: string, port: number, opts: PgBouncerOptions): string {
  const server = testServer()
  return [
    '[databases]',
    `* = host=${server.host} port=${server.port}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'pool_mode = transaction',
    // PostgreSQL trusts the test user; PgBouncer still wants the user in its auth_file
    'auth_type = trust',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    'max_client_conn = 500',
    `default_pool_size = ${opts.poolSize ?? 20}`,
    `server_login_retry = ${opts.serverLoginRetrySeconds ?? 0.5}`,
    // no ignore_startup_parameters: the store must send none that PgBouncer does not know
    ''
  ].join('\n')
}

async function answers (host: string, port: number, user: string): Promise<boolean> {
  const client = new pg.Client({ host, port, user, database: 'postgres', connectionTimeoutMillis: 1000, query_timeout: 2000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  child.kill('SIGTERM') // PgBouncer's immediate shutdown
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/**
 * Starts a PgBouncer of its own (transaction pooling, 127.0.0.1, a free port) in a fresh
 * temporary directory holding its ini and userlist, waits until it answers, and stops it and
 * removes the directory at teardown. As root it runs as `postgres` (PgBouncer refuses root).
 * Throws, so the test fails saying why, when pgbouncer is not installed or does not start.
 */
export async function startPgBouncer (t: Teardown, opts: PgBouncerOptions = {}): Promise<PgBouncer> {
  const binary = await findPgBouncer()
  const server = testServer()
  const dir = await mkdtemp(join(tmpdir(), 'ledgermesh-pgbouncer-'))
  let child: ChildProcess | undefined
  const output: string[] = []
  const stop = async (): Promise<void> => {
    if (child !== undefined) await stopProcess(child)
    await rm(dir, { recursive: true, force: true })
  }
  t.teardown(stop)
  // readable by the user PgBouncer drops to
  await chmod(dir, 0o755)
  await writeFile(join(dir, 'userlist.txt'), `${quoted(server.user)} ${quoted(server.password ?? '')}\n`, { mode: 0o644 })
  const asUser = process.getuid?.() === 0 ? ['-u', 'postgres'] : []

  let lastFailure = ''
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    const ini = join(dir, 'pgbouncer.ini')
    await writeFile(ini, iniText(dir, port, opts), { mode: 0o644 })
    const proc = spawn(binary, [...asUser, ini], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    const start = output.length
    proc.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    proc.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    let exited = false
    proc.once('exit', () => { exited = true })
    proc.once('error', (err) => { exited = true; output.push(String(err)) })
    const deadline = Date.now() + START_TIMEOUT_MS
    while (!exited && Date.now() < deadline) {
      if (await answers('127.0.0.1', port, server.user)) {
        const bouncer: PgBouncer = {
          host: '127.0.0.1',
          port,
          through: (database) => ({ ...database, host: '127.0.0.1', port }),
          nodeEnv: (database) => ({
            DB_TYPE: 'psql',
            DB_IP: '127.0.0.1',
            DB_PORT: port,
            DB_USER: database.user,
            DB_NAME: database.database,
            ...(database.password === undefined ? {} : { DB_PASSWD: database.password })
          }),
          logs: () => output.join(''),
          stop
        }
        return bouncer
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    lastFailure = output.slice(start).join('')
    await stopProcess(proc)
    // a port taken between freePort and PgBouncer's bind: draw another
    if (!/bind|address already in use/i.test(lastFailure)) break
  }
  throw new Error(`pgbouncer (${binary}) did not answer on 127.0.0.1 within ${START_TIMEOUT_MS} ms ` +
    `(PostgreSQL behind it: ${server.host}:${server.port}). Its output:\n${lastFailure || '(none)'}`)
}
