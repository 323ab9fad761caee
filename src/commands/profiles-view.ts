import { LedgerMeshError } from '../base/errors.js'
import { policyBody } from '../policies/policy.js'
import type { NodePort } from './port.js'
import { formatTable } from './table.js'

/** `get profiles` as each role sees profiles: the master's placement, the slave's reports, the worker's processes. */
export function profilesView (node: NodePort): { text: string, json: unknown } {
  const data = node.profiles()
  if (data?.role === 'worker') {
    const { profiles, lease } = data
    const rows = profiles.map(p => [p.name, p.kind, p.state, String(p.pid ?? ''), String(p.restarts), p.uptime_seconds === null ? '' : `${p.uptime_seconds} s`, p.problem ?? p.last_exit ?? ''])
    const head = `Worker ${node.name}: ${profiles.length} profile${profiles.length === 1 ? '' : 's'}, lease ${lease.valid ? 'valid' : 'not valid'}${lease.draining ? ', draining' : ''}${lease.waiting !== null ? ` (${lease.waiting})` : ''}`
    return { text: `${head}\n${formatTable(['Profile', 'Kind', 'State', 'PID', 'Restarts', 'Uptime', 'Last exit'], rows)}`, json: { worker: node.name, lease, profiles } }
  }
  if (data?.role === 'master') {
    const summary = data.allocation
    const unplaced = new Map(summary.unplaced.filter(u => u.type === 'profile').map(u => [u.name, u.reason]))
    const assignments = new Map<string, Record<string, unknown>>()
    for (const a of node.ledger.state.policiesOfType('assignment')) {
      const body = policyBody(a)
      if (typeof body.profile === 'string') assignments.set(body.profile, body)
    }
    const profiles = [...node.ledger.state.policiesOfType('profile')].map(p => {
      const body = policyBody(p)
      const assignment = assignments.get(String(body.name))
      return {
        name: String(body.name),
        kind: String(body.kind),
        subaccount: String(body.subaccount),
        slave: assignment?.slave ?? null,
        worker: assignment?.worker ?? null,
        status: assignment !== undefined ? 'assigned' : `unassigned: ${unplaced.get(String(body.name)) ?? 'not placed yet'}`
      }
    }).sort((a, b) => a.name < b.name ? -1 : 1)
    const rows = profiles.map(p => [p.name, p.kind, p.subaccount, String(p.slave ?? ''), String(p.worker ?? ''), p.status])
    return { text: formatTable(['Profile', 'Kind', 'Sub-account', 'Slave', 'Worker', 'Status'], rows), json: { profiles, leases: summary.leases, unassigned: summary.unplaced } }
  }
  if (data?.role === 'slave') {
    const reports = data.reports
    const rows = reports.map(r => [String(r.profile_name ?? r.profile_id.slice(0, 12)), String(r.kind ?? ''), r.worker, String(r.pid), r.last_seen, String(r.runs.length)])
    return { text: formatTable(['Profile', 'Kind', 'Worker', 'PID', 'Last heartbeat', 'Runs'], rows), json: { slave: node.name, profiles: reports } }
  }
  throw new LedgerMeshError('bad_command', `get profiles: a ${node.role} has no profiles (workers run them, slaves record them, the master assigns them)`)
}
