import { LedgerMeshError } from '../base/errors.js'
import type { BringItem, Condition, GetQuery, ValueNode } from '../commands/ast.js'
import type { CommandOutput } from '../commands/output.js'
import { formatTable } from '../commands/table.js'
import { type Policy, policyBody, policyType } from '../policies/policy.js'
import { type LedgerState, indexKey } from './state.js'

type Resolve = (v: ValueNode) => unknown
type ResolvedCondition =
  | { kind: 'cmp', field: string, op: string, value: unknown }
  | { kind: 'and' | 'or', terms: ResolvedCondition[] }

function resolveCondition (cond: Condition, resolve: Resolve): ResolvedCondition {
  if (cond.kind === 'cmp') return { kind: 'cmp', field: cond.field, op: cond.op, value: resolve(cond.value) }
  return { kind: cond.kind, terms: cond.terms.map(t => resolveCondition(t, resolve)) }
}

function fieldValue (policy: Policy, path: string): unknown {
  let value: unknown = policyBody(policy)
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  return value
}

function asNumber (value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value)
  return undefined
}

function matches (policy: Policy, cond: ResolvedCondition): boolean {
  if (cond.kind !== 'cmp') return cond.kind === 'and' ? cond.terms.every(t => matches(policy, t)) : cond.terms.some(t => matches(policy, t))
  const actual = fieldValue(policy, cond.field)
  if (actual === undefined) return cond.op === '!='
  if (cond.op === '=' || cond.op === '!=') {
    const equal = indexKey(actual) !== undefined && indexKey(actual) === indexKey(cond.value)
    return cond.op === '=' ? equal : !equal
  }
  const a = asNumber(actual)
  const b = asNumber(cond.value)
  const order = a !== undefined && b !== undefined
    ? Math.sign(a - b)
    : String(actual).toLowerCase().localeCompare(String(cond.value).toLowerCase())
  switch (cond.op) {
    case '<': return order < 0
    case '<=': return order <= 0
    case '>': return order > 0
    default: return order >= 0
  }
}

/**
 * Candidate policies of one type for a condition, from indexes where the condition allows:
 * an equality (or an `and` holding one) looks up that field's index; an `or` of indexable
 * terms is the union of their lookups; anything else scans the type.
 */
function candidates (state: LedgerState, type: string, cond: ResolvedCondition | undefined): Iterable<Policy> {
  const plan = indexPlan(state, type, cond)
  return plan ?? state.policiesOfType(type)
}

function indexPlan (state: LedgerState, type: string, cond: ResolvedCondition | undefined): Policy[] | undefined {
  if (cond === undefined) return undefined
  if (cond.kind === 'cmp') {
    if (cond.op !== '=' || cond.field.includes('.') || indexKey(cond.value) === undefined) return undefined
    return [...state.lookup(type, cond.field, cond.value)]
  }
  if (cond.kind === 'and') {
    for (const term of cond.terms) {
      const plan = indexPlan(state, type, term)
      if (plan !== undefined) return plan
    }
    return undefined
  }
  const union = new Map<string, Policy>()
  for (const term of cond.terms) {
    const plan = indexPlan(state, type, term)
    if (plan === undefined) return undefined
    for (const p of plan) union.set(String(policyBody(p).id), p)
  }
  return [...union.values()]
}

/** The matching policies, in the order of the asked types, then ledger order (local last). */
export function selectPolicies (state: LedgerState, query: GetQuery, resolve: Resolve): Policy[] {
  const cond = query.where === undefined ? undefined : resolveCondition(query.where, resolve)
  const types = query.types.includes('*') ? state.types() : [...new Set(query.types)]
  const result: Policy[] = []
  for (const type of types) {
    const found = [...candidates(state, type, cond)].filter(p => policyType(p) === type && (cond === undefined || matches(p, cond)))
    const order = (p: Policy) => state.seqOf(String(policyBody(p).id)) ?? Number.MAX_SAFE_INTEGER
    found.sort((a, b) => order(a) - order(b))
    result.push(...found)
  }
  return result
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
    const value = item.field === '*' ? policyBody(policy) : fieldValue(policy, item.field)
    if (value === undefined) continue
    found = true
    text += asText(value)
  }
  return found ? text : undefined
}

function ipPort (policy: Policy): string | undefined {
  const body = policyBody(policy)
  const ip = body.ip ?? body.external_ip ?? body.internal_ip
  return ip === undefined || body.port === undefined ? undefined : `${String(ip)}:${String(body.port)}`
}

function textResult (values: string[], separator: string): CommandOutput {
  return { value: values, text: values.join(separator), contentType: 'text' }
}

/** `blockchain get`: select, then shape the result as `bring` asks. */
export function runQuery (state: LedgerState, query: GetQuery, resolve: Resolve): CommandOutput {
  let policies = selectPolicies(state, query, resolve)
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
  for (const path of paths) {
    if (path.field === '') throw new LedgerMeshError('bad_command', `bring [${path.type}] needs a field: [${path.type}][<field>]`)
  }

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
      const columns = paths.length > 0
        ? paths.map(p => p.field)
        : [...new Set(policies.flatMap(p => Object.keys(policyBody(p)).filter(k => k !== 'signature' && k !== 'public_key')))]
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
