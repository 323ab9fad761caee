import { join } from 'node:path'
import { type NodeProcess, ROOT, startNode } from './node-process.js'
import { httpJson, httpRequest } from './http.js'
import { waitFor } from './net.js'

/**
 * A small fleet on loopback for the workers-and-allocation tests: a master with short leases,
 * slaves, and workers that run scripts/demo-runner.mjs for every kind.
 */
type T = Parameters<typeof startNode>[0]

export const LEASE = { ttlMs: 3000, graceMs: 2000 }
export const RUNNER = `${process.execPath} ${join(ROOT, 'scripts', 'demo-runner.mjs')}`
/** the demo runner reports to its slave this often: the resolution of the overlap checks */
export const HEARTBEAT_MS = 150

/** `lease`: the master's LEASE_TTL and LEASE_GRACE (short by default, so lapses move things soon) */
export async function startMaster (t: T, name = 'master-1', lease = LEASE): Promise<NodeProcess> {
  return await startNode(t, { type: 'master', name, env: { LEASE_TTL: `${lease.ttlMs} ms`, LEASE_GRACE: `${lease.graceMs} ms` } })
}

/** `processes`: SUBACCOUNT_PROCESSES kinds, each run by `command` (SUBACCOUNT_RUNNER_<KIND>) */
export async function startSlave (t: T, master: NodeProcess, name: string, slots: number, processes?: { kinds: string[], command: string }, processEnv?: Record<string, string>): Promise<NodeProcess> {
  const runners = processes === undefined ? {} : Object.fromEntries(processes.kinds.map(kind => [`SUBACCOUNT_RUNNER_${kind.toUpperCase().replace(/-/g, '_')}`, processes.command]))
  return await startNode(t, {
    type: 'slave',
    name,
    processEnv,
    env: { LEDGER_CONN: master.ledgerConn, SLOTS: slots, PROFILE_STOP_GRACE: '1 second', ...(processes === undefined ? {} : { SUBACCOUNT_PROCESSES: processes.kinds.join(','), ...runners }) }
  })
}

/** `runner`: the command for every kind (default RUNNER, the demo runner). */
/** `env`: more env keys (LEDGER_MODE=light, ...) */
export async function startWorker (t: T, master: NodeProcess, spec: { name: string, slave: string, slots: number, kinds: string[], ledgerConn?: string, restartOf?: NodeProcess, nodeArgs?: string[], runner?: string, env?: Record<string, string> }): Promise<NodeProcess> {
  const runners = Object.fromEntries(spec.kinds.map(kind => [`PROFILE_RUNNER_${kind.toUpperCase().replace(/-/g, '_')}`, spec.runner ?? RUNNER]))
  const previous = spec.restartOf
  return await startNode(t, {
    type: 'worker',
    name: spec.name,
    // a restart: the same home (identity, replica) and ports
    ...(previous === undefined ? {} : { home: previous.home, tcpPort: previous.tcpPort, restPort: previous.restPort }),
    nodeArgs: spec.nodeArgs,
    master,
    env: {
      LEDGER_CONN: spec.ledgerConn ?? master.ledgerConn,
      // a worker pointed at a proxy (a partition test) must reach the master through it only
      ...(spec.ledgerConn !== undefined ? { MASTERS_FROM_LEDGER: 'false' } : {}),
      BLOCKCHAIN_SOURCE: 'master',
      SLAVE_NAME: spec.slave,
      SLOTS: spec.slots,
      PROFILE_KINDS: spec.kinds.join(','),
      PROFILE_STOP_GRACE: '1 second',
      ...runners,
      ...spec.env
    }
  })
}

/** Inserts a policy through the node's JSON API; resolves with its id and seq. */
export async function insert (node: NodeProcess, policy: object): Promise<{ id: string, seq: number }> {
  const reply = await httpRequest(`${node.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json', ...node.headers }, body: JSON.stringify(policy), timeoutMs: 15_000 })
  const body = JSON.parse(reply.text) as { id: string, seq: number }
  if (reply.status !== 201) throw new Error(`insert answered ${reply.status}: ${JSON.stringify(body)}`)
  return body
}

export async function profile (node: NodeProcess, name: string, kind: string, subaccount: string, settings: object = {}): Promise<{ id: string, seq: number }> {
  return await insert(node, { profile: { name, kind, subaccount, settings: { heartbeat_ms: HEARTBEAT_MS, ...settings } } })
}

export interface WorkerProcessRow { assignment: string, profile_id: string, name: string, kind: string, state: string, pid: number | null, restarts: number, last_exit: string | null }

export async function getJson (node: NodeProcess, path: string): Promise<any> {
  return await httpJson(`${node.url}${path}`).catch((err: Error) => { throw new Error(`${node.name} ${path}: ${err.message}`) })
}

/** A worker's profile processes (GET /v1/profiles). */
export async function processesOf (worker: NodeProcess): Promise<WorkerProcessRow[]> {
  return (await getJson(worker, '/v1/profiles')).profiles as WorkerProcessRow[]
}

/** Waits until the worker runs exactly `names`, every one RUNNING. */
export async function waitRunning (worker: NodeProcess, names: string[], timeoutMs = 30_000): Promise<WorkerProcessRow[]> {
  const want = [...names].sort().join(',')
  return await waitFor(`${worker.name} to run exactly [${want}]`, async () => {
    const rows = await processesOf(worker)
    const running = rows.filter(r => r.state === 'RUNNING').map(r => r.name).sort().join(',')
    return rows.length === names.length && running === want ? rows : undefined
  }, { timeoutMs, everyMs: 200 })
}

/** The master's placement (`get profiles` on the master). */
export async function placement (master: NodeProcess): Promise<Map<string, { worker: string | null, status: string }>> {
  const body = await getJson(master, '/v1/profiles')
  return new Map((body.profiles as Array<{ name: string, worker: string | null, status: string }>).map(p => [p.name, p]))
}

export function pidAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

export interface Run { worker: string, pid: number, first_seen_ms: number, last_seen_ms: number }

/**
 * The slave's records, per profile name: a list of runs. `overlaps` lists every pair of runs
 * of one profile on two different workers whose heartbeat windows intersect.
 */
export async function slaveRuns (slave: NodeProcess): Promise<{ runs: Map<string, Run[]>, overlaps: string[] }> {
  const body = await getJson(slave, '/v1/profiles/reports')
  const runs = new Map<string, Run[]>()
  const overlaps: string[] = []
  for (const report of body.profiles as Array<{ profile_name: string, runs: Run[] }>) {
    const sorted = [...report.runs].sort((a, b) => a.first_seen_ms - b.first_seen_ms)
    runs.set(report.profile_name, sorted)
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const [a, b] = [sorted[i], sorted[j]]
        if (a.worker !== b.worker && b.first_seen_ms <= a.last_seen_ms) {
          overlaps.push(`${report.profile_name}: ${a.worker} (pid ${a.pid}) until ${a.last_seen_ms} and ${b.worker} (pid ${b.pid}) from ${b.first_seen_ms}`)
        }
      }
    }
  }
  return { runs, overlaps }
}
