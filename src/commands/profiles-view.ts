import { LedgerMeshError } from '../base/errors.js'
import { policyBody } from '../policies/policy.js'
import type { LeaseView, NodePort, WorkerProfileView } from './port.js'
import { formatTable } from './table.js'

/** A worker's (slave's) processes as table rows: state, pid, restarts, uptime, last exit or why not started. */
const processRows = (rows: WorkerProfileView[]): string[][] =>
  rows.map(p => [p.name, p.kind, p.state, String(p.pid ?? ''), String(p.restarts), p.uptime_seconds === null ? '' : `${p.uptime_seconds} s`, p.problem ?? p.last_exit ?? ''])
const PROCESS_COLUMNS = ['Kind', 'State', 'PID', 'Restarts', 'Uptime', 'Last exit']

/** A supervisor's heading: whose, how many processes, and its lease. */
function heading (who: string, count: number, noun: string, lease: LeaseView): string {
  const plural = count === 1 ? '' : noun.endsWith('s') ? 'es' : 's'
  return `${who}: ${count} ${noun}${plural}, lease ${lease.valid ? 'valid' : 'not valid'}${lease.draining ? ', draining' : ''}${lease.waiting !== null ? ` (${lease.waiting})` : ''}`
}

/** `get profiles` as each role sees profiles: the master's placement, the slave's reports and processes, the worker's processes. */
export function profilesView (node: NodePort): { text: string, json: unknown } {
  const data = node.profiles()
  if (data?.role === 'worker') {
    const { profiles, lease, slave } = data
    const text = `${heading(`Worker ${node.name}`, profiles.length, 'profile', lease)}\n${formatTable(['Profile', ...PROCESS_COLUMNS], processRows(profiles))}`
    if (slave === undefined) return { text, json: { worker: node.name, lease, profiles } }
    // a stand-alone node: its slave role's sub-account processes too
    const slaveText = `${heading(`Slave ${node.name}`, slave.processes.length, 'sub-account process', slave.lease)}\n${formatTable(['Sub-account', ...PROCESS_COLUMNS], processRows(slave.processes))}`
    return { text: `${text}\n${slaveText}`, json: { worker: node.name, lease, profiles, slave: { lease: slave.lease, processes: slave.processes } } }
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
        status: assignment !== undefined ? 'assigned' : `unassigned: ${unplaced.get(String(body.name)) ?? 'not placed yet'}`,
        // its process, as its worker's last lease renewal reported it
        process: summary.running_on[String(body.id)] === undefined ? (assignment !== undefined ? 'not reported running' : null) : `running on ${summary.running_on[String(body.id)]}`
      }
    }).sort((a, b) => a.name < b.name ? -1 : 1)
    const rows = profiles.map(p => [p.name, p.kind, p.subaccount, String(p.slave ?? ''), String(p.worker ?? ''), p.status])
    const subaccounts = summary.subaccounts
    const subRows = subaccounts.map(s => [s.name, s.slave ?? '', s.lease === null ? '' : `${s.lease}${s.draining ? ', draining' : ''}`, s.status])
    const text = `${formatTable(['Sub-account', 'Slave', 'Slave lease', 'Status'], subRows)}\n${formatTable(['Profile', 'Kind', 'Sub-account', 'Slave', 'Worker', 'Status'], rows)}`
    return { text, json: { profiles, subaccounts, leases: summary.leases, slave_leases: summary.slave_leases, unassigned: summary.unplaced } }
  }
  if (data?.role === 'slave') {
    const reports = data.reports
    const rows = reports.map(r => [String(r.profile_name ?? r.profile_id.slice(0, 12)), String(r.kind ?? ''), r.worker, String(r.pid), r.last_seen, String(r.runs.length)])
    const { lease, processes } = data
    const reportsText = formatTable(['Profile', 'Kind', 'Worker', 'PID', 'Last heartbeat', 'Runs'], rows)
    if (lease === undefined) return { text: reportsText, json: { slave: node.name, profiles: reports, processes } }
    // the slave's own processes, per sub-account, below the profiles' reports
    const text = `${reportsText}\n${heading(`Slave ${node.name}`, processes.length, 'sub-account process', lease)}\n${formatTable(['Sub-account', ...PROCESS_COLUMNS], processRows(processes))}`
    return { text, json: { slave: node.name, profiles: reports, lease, processes } }
  }
  throw new LedgerMeshError('bad_command', `get profiles: a ${node.role} has no profiles (workers run them, slaves record them, the master assigns them)`)
}
