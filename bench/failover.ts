import { startNode, type NodeProcess } from '../test/helpers/node-process.js'
import { createTestDatabase, pgQuery } from '../test/helpers/pg.js'
import { activeMaster } from '../test/helpers/masters.js'
import { type Cleanup, envInt, percentile, round, withCleanup } from './lib/harness.js'

/**
 * failover: two masters (`ledgermesh start`, DB_TYPE=psql, default MASTER_LEASE_TTL) over one
 * PostgreSQL database and a member whose LEDGER_CONN lists both; BENCH_FAILOVER_CLIENTS
 * (default 8) clients insert through the member's JSON API without pause. Each of
 * BENCH_FAILOVER_ROUNDS (default 10) rounds kills the active master with SIGKILL and measures
 * the write gap: from the kill to the first insert acknowledged among those sent after it
 * (so ordered by the other master). The killed master then restarts as a standby. At the end,
 * every acknowledged insert is looked up in the database: `lost` counts the missing ones.
 */
export interface FailoverRow {
  bench: 'failover'
  rounds: number
  clients: number
  master_lease_ttl: string
  gap_p50_ms: number
  gap_p99_ms: number
  gap_max_ms: number
  acknowledged: number
  lost: number
  goal: string
}

const GOAL_P99_MS = 3500

export async function failover (opts: { rounds?: number, clients?: number } = {}): Promise<FailoverRow[]> {
  const rounds = opts.rounds ?? envInt('BENCH_FAILOVER_ROUNDS', 10)
  const clients = opts.clients ?? envInt('BENCH_FAILOVER_CLIENTS', 8)
  return await withCleanup(async t => [await measure(t, rounds, clients)])
}

async function measure (t: Cleanup, rounds: number, clientCount: number): Promise<FailoverRow> {
  const db = await createTestDatabase(t)
  const env = { DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database }
  const masters = [await startNode(t, { type: 'master', name: 'master-a', env }), await startNode(t, { type: 'master', name: 'master-b', env })]
  const member = await startNode(t, { type: 'member', name: 'member-1', master: masters[0], env: { LEDGER_CONN: masters.map(m => m.ledgerConn).join(',') } })

  const acks: Array<{ name: string, sentAt: number, ackAt: number }> = []
  let running = true
  const loops = Array.from({ length: clientCount }, async (_v, client) => {
    for (let n = 0; running && n < 1_000_000; n++) {
      const name = `c${client}-${n}`
      const sentAt = performance.now()
      const response = await fetch(`${member.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ note: { name } }), signal: AbortSignal.timeout(30_000) }).catch(() => undefined)
      if (response?.status === 201) acks.push({ name, sentAt, ackAt: performance.now() })
      else await new Promise(resolve => setTimeout(resolve, 50))
      await response?.body?.cancel().catch(() => {})
    }
  })

  const gaps: number[] = []
  try {
    for (let r = 0; r < rounds; r++) {
      const active = await activeMaster(masters, 30_000)
      await untilAcks(acks, performance.now(), 20)
      const killedAt = performance.now()
      await active.kill()
      const first = await untilAcks(acks, killedAt, 1)
      gaps.push(first - killedAt)
      const index = masters.indexOf(active)
      masters[index] = await restart(t, active, env)
    }
  } finally {
    running = false
    await Promise.all(loops)
  }
  const names = new Set((await pgQuery<{ name: string }>(db, "SELECT policy->'note'->>'name' AS name FROM ledger WHERE policy_type = 'note'")).map(r => r.name))
  const lost = acks.filter(a => !names.has(a.name)).length
  const p99 = percentile(gaps, 99)
  return {
    bench: 'failover',
    rounds,
    clients: clientCount,
    master_lease_ttl: '2 seconds (default)',
    gap_p50_ms: round(percentile(gaps, 50), 0),
    gap_p99_ms: round(p99, 0),
    gap_max_ms: round(Math.max(...gaps), 0),
    acknowledged: acks.length,
    lost,
    goal: `p99 < ${GOAL_P99_MS} ms, 0 lost: ${p99 < GOAL_P99_MS && lost === 0 ? 'met' : 'missed'}`
  }
}

/** Resolves with the ack time of the `count`th insert sent at or after `since`. */
async function untilAcks (acks: Array<{ sentAt: number, ackAt: number }>, since: number, count: number): Promise<number> {
  const deadline = performance.now() + 60_000
  while (performance.now() < deadline) {
    const after = acks.filter(a => a.sentAt >= since).map(a => a.ackAt).sort((x, y) => x - y)
    if (after.length >= count) return after[count - 1]
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`no ${count} inserts acknowledged within 60 s`)
}

async function restart (t: Cleanup, node: NodeProcess, env: Record<string, string | number>): Promise<NodeProcess> {
  return await startNode(t, { type: 'master', name: node.name, home: node.home, tcpPort: node.tcpPort, restPort: node.restPort, env })
}
