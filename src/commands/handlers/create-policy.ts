import { randomInt } from 'node:crypto'
import { LedgerMeshError } from '../../base/errors.js'
import type { LedgerState } from '../../ledger/state.js'
import { policyBody } from '../../policies/policy.js'
import { asText, type ExecContext, type Executor } from '../executor.js'
import { jsonOutput } from '../output.js'
import type { NodePort } from '../port.js'

/**
 * AnyLog's defaults for `create policy <type> with defaults`: the node's addresses (from its
 * `external_ip` and `ip` variables) and the type's usual ports, each added only when the
 * where pairs leave it out.
 */
const NODE_DEFAULTS: Record<string, { port: number, rest_port: number }> = {
  master: { port: 32048, rest_port: 32049 },
  operator: { port: 32148, rest_port: 32149 },
  query: { port: 32348, rest_port: 32349 },
  publisher: { port: 32248, rest_port: 32249 }
}

/** An operator's member number within its cluster: 1 to 255, as AnyLog draws it. */
const MAX_MEMBER = 255

/**
 * `create policy <type> [with defaults] [where k = v and ...]`: the policy `{"<type>": {...}}`
 * made of the where pairs, for a script to publish (`new_policy = create policy cluster
 * with defaults where company=!company_name and name=!cluster_name`). Nothing is written.
 * With defaults, AnyLog's checks against the ledger this node holds run as well, so a
 * cluster whose name is taken or an operator of no cluster fails here, naming why.
 */
export function registerCreatePolicy (executor: Executor, node: NodePort): void {
  executor.register('create policy', (cmd, ctx) => {
    const type = asText(ctx.executor.resolve(cmd.value!, ctx.vars))
    const body: Record<string, unknown> = {}
    for (const pair of cmd.where) body[pair.key] = ctx.executor.resolve(pair.value, ctx.vars)
    if (cmd.withDefaults === true) {
      addDefaults(type, body, ctx)
      if (node.hasLedger) checkAgainstLedger(type, body, node.ledger.state)
    }
    return jsonOutput({ [type]: body })
  })
}

function addDefaults (type: string, body: Record<string, unknown>, ctx: ExecContext): void {
  const ports = NODE_DEFAULTS[type]
  if (ports === undefined) return
  for (const [key, variable] of [['ip', 'external_ip'], ['internal_ip', 'ip']] as const) {
    const value = ctx.vars.get(variable)
    if (!(key in body) && value !== undefined) body[key] = asText(value).toLowerCase()
  }
  body.port ??= ports.port
  body.rest_port ??= ports.rest_port
}

const refuse = (type: string, message: string, code: 'bad_policy' | 'conflict' = 'bad_policy'): LedgerMeshError =>
  new LedgerMeshError(code, `create policy ${type}: ${message}`, { type })

function find (state: LedgerState, type: string, match: Record<string, unknown>): boolean {
  const [first, ...rest] = Object.entries(match)
  for (const policy of state.lookup(type, first[0], first[1])) {
    const body = policyBody(policy)
    if (rest.every(([k, v]) => String(body[k]).toLowerCase() === String(v).toLowerCase())) return true
  }
  return false
}

function requireKeys (type: string, body: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of keys) {
    if (body[key] === undefined || body[key] === '') throw refuse(type, `the policy needs a value for '${key}'`)
  }
}

/** AnyLog's checks for a new cluster or operator (other types have none). */
function checkAgainstLedger (type: string, body: Record<string, unknown>, state: LedgerState): void {
  if (type === 'cluster') {
    requireKeys(type, body, ['name', 'company'])
    body.status ??= 'active'
    const taken = find(state, 'cluster', { name: body.name })
    if ('parent' in body && !taken) throw refuse(type, `no cluster named '${asText(body.name)}' for this policy to extend`)
    if (!('parent' in body) && taken) throw refuse(type, `a cluster named '${asText(body.name)}' is on the ledger already (a new cluster needs a new name)`, 'conflict')
  } else if (type === 'operator') {
    if (body.cluster === undefined) throw refuse(type, "an operator belongs to a cluster: the policy needs 'cluster = <cluster policy id>'")
    const cluster = asText(body.cluster)
    if (state.get(cluster) === undefined || Object.keys(state.get(cluster)!)[0] !== 'cluster') throw refuse(type, `no cluster policy with id ${cluster} on this node's ledger`)
    requireKeys(type, body, ['company', 'name', 'ip', 'port'])
    if (find(state, 'operator', { ip: body.ip, port: body.port })) throw refuse(type, `an operator at ${asText(body.ip)}:${asText(body.port)} is on the ledger already`, 'conflict')
    if (find(state, 'operator', { name: body.name })) throw refuse(type, `an operator named '${asText(body.name)}' is on the ledger already`, 'conflict')
    if (body.member === undefined) body.member = unusedMember(state, cluster)
    else if (find(state, 'operator', { cluster, member: body.member })) throw refuse(type, `member ${asText(body.member)} of cluster ${cluster} is taken`, 'conflict')
  }
}

function unusedMember (state: LedgerState, cluster: string): number {
  const used = new Set<number>()
  for (const policy of state.lookup('operator', 'cluster', cluster)) used.add(Number(policyBody(policy).member))
  const free = Array.from({ length: MAX_MEMBER }, (_, i) => i + 1).filter(m => !used.has(m))
  if (free.length === 0) throw refuse('operator', `cluster ${cluster} has ${MAX_MEMBER} members: no member number is free`, 'conflict')
  return free[randomInt(free.length)]
}
