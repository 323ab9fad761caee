import type { PgStoreConfig } from '../../src/ledger/pg-store.js'
import { httpJson } from './http.js'
import { type NodeProcess, startNode } from './node-process.js'
import { waitFor } from './net.js'
import type { Teardown } from './tmp.js'

/**
 * Several masters over one PostgreSQL database, as real node processes: the helpers the
 * failover tests and the failover benchmark share.
 */

/** The writer lease the tests run with: short, so a takeover comes within a second or two. */
export const MASTER_LEASE_TTL = '1500 ms'

export function masterEnv (db: PgStoreConfig, extra: Record<string, string | number> = {}): Record<string, string | number> {
  return { DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database, MASTER_LEASE_TTL: MASTER_LEASE_TTL, ...extra }
}

/** Masters named `names` (default master-a, master-b, ...): the first begins the ledger, the others join it. */
export async function startMasters (t: Teardown, db: PgStoreConfig, count: number, extra: Record<string, string | number> = {}, names?: string[]): Promise<NodeProcess[]> {
  const masters: NodeProcess[] = []
  for (let i = 0; i < count; i++) masters.push(await startNode(t, { type: 'master', name: names?.[i] ?? `master-${String.fromCharCode(97 + i)}`, env: masterEnv(db, extra) }))
  return masters
}

/** The node's `get status` master_role, as /v1/status shows it. */
export async function masterRole (node: NodeProcess): Promise<{ role: string, epoch: number, active_master: string | null, since: string, masters: Array<{ name: string, trusted: boolean }> }> {
  const status = await httpJson(`${node.url}/v1/status`, 5000) as { master_role?: any }
  if (status.master_role === undefined) throw new Error(`${node.name} shows no master_role`)
  return status.master_role
}

/** Waits until exactly one of the live masters is active and answers it. */
export async function activeMaster (masters: NodeProcess[], timeoutMs = 20_000): Promise<NodeProcess> {
  return await waitFor('one active master', async () => {
    const live = masters.filter(m => m.exitCode === undefined)
    const roles = await Promise.all(live.map(async m => await masterRole(m).then(r => r.role).catch(() => 'unknown')))
    const active = live.filter((_m, i) => roles[i] === 'active')
    return active.length === 1 ? active[0] : undefined
  }, { timeoutMs, everyMs: 100 })
}

/**
 * Runs `write` at the active master, and at the next active one if the writer lease moved
 * before it landed: on a loaded machine a renewal can come late and the other master take over
 * with no kill at all. Only `not_active` is retried; that answer means nothing was written.
 */
export async function atActiveMaster<T> (masters: NodeProcess[], write: (master: NodeProcess) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const master = await activeMaster(masters)
    try {
      return await write(master)
    } catch (err) {
      if (attempt >= attempts || !(err instanceof Error) || !err.message.includes('not_active')) throw err
    }
  }
}
