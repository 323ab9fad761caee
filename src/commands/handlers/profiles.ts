import { LedgerMeshError } from '../../base/errors.js'
import type { LedgerMeshNode } from '../../node/node.js'
import { policyBody } from '../../policies/policy.js'
import type { Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import { formatTable } from '../table.js'
import { WhereArgs, formatJson } from '../where.js'


/** `get profiles` as each role sees profiles: the master's placement, the slave's reports, the worker's processes. */
export function profilesView (node: LedgerMeshNode): { text: string, json: unknown } {
  if (node.operator !== undefined) {
    const profiles = node.operator.profiles()
    const rows = profiles.map(p => [p.name, p.kind, p.state, String(p.pid ?? ''), String(p.restarts), p.uptime_seconds === null ? '' : `${p.uptime_seconds} s`, p.problem ?? p.last_exit ?? ''])
    const lease = node.operator.leaseSummary()
    const head = `Worker ${node.name}: ${profiles.length} profile${profiles.length === 1 ? '' : 's'}, lease ${lease.valid ? 'valid' : 'not valid'}${lease.draining ? ', draining' : ''}${lease.waiting !== null ? ` (${lease.waiting})` : ''}`
    return { text: `${head}\n${formatTable(['Profile', 'Kind', 'State', 'PID', 'Restarts', 'Uptime', 'Last exit'], rows)}`, json: { worker: node.name, lease, profiles } }
  }
  if (node.allocator !== undefined) {
    const summary = node.allocator.summary()
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
  if (node.role === 'slave') {
    const reports = node.profileReports.list()
    const rows = reports.map(r => [String(r.profile_name ?? r.profile_id.slice(0, 12)), String(r.kind ?? ''), r.worker, String(r.pid), r.last_seen, String(r.runs.length)])
    return { text: formatTable(['Profile', 'Kind', 'Worker', 'PID', 'Last heartbeat', 'Runs'], rows), json: { slave: node.name, profiles: reports } }
  }
  throw new LedgerMeshError('bad_command', `get profiles: a ${node.role} has no profiles (workers run them, slaves record them, the master assigns them)`)
}

/** The workers-and-allocation commands: run allocator/operator, get profiles, drain. */
export function registerProfileCommands (executor: Executor, node: LedgerMeshNode): void {
  executor.register('run allocator', async () => {
    const allocator = await node.startAllocator()
    return textOutput(`Allocator running (${allocator.status().details ?? ''})`)
  })

  executor.register('run operator', async () => {
    await node.startOperator()
    return textOutput(`Operator running for worker ${node.name} (kinds: ${node.config.profileKinds.join(', ') || 'none'})`)
  })

  executor.register('get profiles', (cmd, ctx) => {
    const view = profilesView(node)
    return formatJson(new WhereArgs(cmd, ctx)) ? jsonOutput(view.json) : textOutput(view.text, view.json)
  })

  const operatorOf = (command: string) => {
    if (node.operator === undefined) throw new LedgerMeshError('bad_command', `${command}: this node runs no operator (only workers drain)`)
    return node.operator
  }
  executor.register('worker drain', async () => {
    const operator = operatorOf('worker drain')
    await operator.setDraining(true)
    return textOutput(`Worker ${node.name} draining: its profiles move to other workers (see get profiles)`)
  })
  executor.register('worker resume', async () => {
    const operator = operatorOf('worker resume')
    await operator.setDraining(false)
    return textOutput(`Worker ${node.name} takes profiles again`)
  })
}
