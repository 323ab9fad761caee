import { LedgerMeshError } from '../base/errors.js'
import { type Predicate, fieldValue, selectPolicies } from '../ledger/select.js'
import type { LedgerState } from '../ledger/state.js'
import { type Policy, policyBody, policyType } from '../policies/policy.js'
import type { BringItem, Condition, GetQuery, ValueNode } from './ast.js'
import type { CommandOutput } from './output.js'
import { formatTable } from './table.js'

type Resolve = (v: ValueNode) => unknown

/** A `where` condition of the command language as the ledger's predicate, its values resolved. */
export function predicateOf (cond: Condition, resolve: Resolve): Predicate {
  if (cond.kind === 'cmp') return { kind: 'cmp', field: cond.field, op: cond.op, value: resolve(cond.value) }
  return { kind: cond.kind, terms: cond.terms.map(t => predicateOf(t, resolve)) }
}

/** The policies a `blockchain get` selects, in the order of the asked types, then ledger order. */
export function selectForQuery (state: LedgerState, query: GetQuery, resolve: Resolve): Policy[] {
  const types = query.typeValues?.map((value, i) => {
    const type = asText(resolve(value)).trim()
    if (type === '') throw new LedgerMeshError('bad_command', `blockchain get: the policy type ${query.types[i]} is empty (line ${value.pos.line})`)
    return type
  }) ?? query.types
  return selectPolicies(state, { types, where: query.where === undefined ? undefined : predicateOf(query.where, resolve) })
}

function asText (value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** The text `bring` builds for one policy, or undefined when none of its paths apply. */
function bringText (policy: Policy, items: BringItem[]): string | undefined {
  const type = policyType(policy)
  let text = ''
  let found = false
  for (const item of items) {
    if (item.kind === 'literal') { text += item.text; continue }
    if (item.type !== '*' && item.type.toLowerCase() !== type.toLowerCase()) continue
    const value = pathValue(policy, item)
    if (value === undefined) continue
    found = true
    text += asText(value)
  }
  return found ? text : undefined
}

/** A `[type][field]` path's value; `[*]` alone is the policy's type (AnyLog), `[type]` alone its body. */
function pathValue (policy: Policy, path: Extract<BringItem, { kind: 'path' }>): unknown {
  if (path.field === '') return path.type === '*' ? policyType(policy) : policyBody(policy)
  return path.field === '*' ? policyBody(policy) : fieldValue(policy, path.field)
}

function ipPort (policy: Policy): string | undefined {
  const body = policyBody(policy)
  // local_ip: AnyLog's name for the address on the node's own network (older ledgers: internal_ip)
  const ip = body.ip ?? body.external_ip ?? body.local_ip ?? body.internal_ip
  return ip === undefined || body.port === undefined ? undefined : `${String(ip)}:${String(body.port)}`
}

function textResult (values: string[], separator: string): CommandOutput {
  return { value: values, text: values.join(separator), contentType: 'text' }
}

/** `blockchain get`: select, then shape the result as `bring` asks. */
export function runQuery (state: LedgerState, query: GetQuery, resolve: Resolve): CommandOutput {
  let policies = selectForQuery(state, query, resolve)
  const bring = query.bring
  if (bring === undefined) {
    const value = policies.map(p => state.view(p))
    return { value, text: JSON.stringify(value), contentType: 'json' }
  }
  if (bring.format === 'first') policies = policies.slice(0, 1)
  if (bring.format === 'recent') {
    const seq = (p: Policy) => state.seqOf(String(policyBody(p).id)) ?? Number.MAX_SAFE_INTEGER
    policies = policies.length === 0 ? [] : [policies.reduce((a, b) => seq(b) > seq(a) ? b : a)]
  }
  const separator = bring.separator ?? '\n'
  const items = bring.items
  const paths = items.filter((i): i is Extract<BringItem, { kind: 'path' }> => i.kind === 'path')

  switch (bring.format) {
    case 'count': {
      const n = items.length === 0 ? policies.length : policies.filter(p => bringText(p, items) !== undefined).length
      return { value: n, text: String(n), contentType: 'text' }
    }
    case 'ip_port':
      return textResult(policies.flatMap(p => ipPort(p) ?? []), separator)
    case 'json': {
      const value = policies.map(p => {
        const type = policyType(p)
        if (paths.length === 0) return state.view(p)
        const body: Record<string, unknown> = {}
        for (const path of paths) {
          if (path.type !== '*' && path.type.toLowerCase() !== type.toLowerCase()) continue
          const v = fieldValue(p, path.field)
          if (v !== undefined) body[path.field] = v
        }
        return { [type]: body }
      })
      return { value, text: JSON.stringify(value), contentType: 'json' }
    }
    case 'table': {
      if (paths.length > 0) {
        // `bring.table [*] [*][name]`: a `[*]` column shows the policy's type, titled Policy
        const titles = paths.map(p => p.field === '' ? 'Policy' : p.field)
        const cells = policies.map(p => paths.map(path => { const v = path.type === '*' || path.type.toLowerCase() === policyType(p).toLowerCase() ? pathValue(p, path) : undefined; return v === undefined ? '' : asText(v) }))
        return { value: { columns: titles, rows: cells }, text: formatTable(titles, cells), contentType: 'text' }
      }
      const columns = [...new Set(policies.flatMap(p => Object.keys(policyBody(p)).filter(k => k !== 'signature' && k !== 'public_key')))]
      const rows = policies.map(p => columns.map(c => { const v = fieldValue(p, c); return v === undefined ? '' : asText(v) }))
      return { value: { columns, rows }, text: formatTable(columns, rows), contentType: 'text' }
    }
    default: {
      if (items.length === 0) {
        const value = policies.map(p => state.view(p))
        return { value, text: JSON.stringify(value), contentType: 'json' }
      }
      let values = policies.flatMap(p => bringText(p, items) ?? [])
      if (bring.format === 'unique') values = [...new Set(values)]
      return textResult(values, separator)
    }
  }
}
