import { type Policy, policyBody, policyType } from '../policies/policy.js'
import { type LedgerState, indexKey } from './state.js'

/** A comparison of a policy field: `=`, `!=` (case-insensitive, as the indexes key values) or an order. */
export type PredicateOp = '=' | '!=' | '<' | '<=' | '>' | '>='

/**
 * Which policies a selection keeps: comparisons of a field (a dotted path into the policy's
 * body) with a value, combined by `and` / `or`. The command language's `where` and the REST
 * API's filters both translate to it.
 */
export type Predicate =
  | { kind: 'cmp', field: string, op: PredicateOp, value: unknown }
  | { kind: 'and' | 'or', terms: Predicate[] }

/** What to select: policy types (`*` for all) and an optional predicate. */
export interface Selection {
  types: string[]
  where?: Predicate
}

/** The value at a dotted path of a policy's body, or undefined. */
export function fieldValue (policy: Policy, path: string): unknown {
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

function matches (policy: Policy, cond: Predicate): boolean {
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
function candidates (state: LedgerState, type: string, cond: Predicate | undefined): Iterable<Policy> {
  const plan = indexPlan(state, type, cond)
  return plan ?? state.policiesOfType(type)
}

function indexPlan (state: LedgerState, type: string, cond: Predicate | undefined): Policy[] | undefined {
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
export function selectPolicies (state: LedgerState, selection: Selection): Policy[] {
  const cond = selection.where
  const types = selection.types.includes('*') ? state.types() : [...new Set(selection.types)]
  const result: Policy[] = []
  for (const type of types) {
    const found = [...candidates(state, type, cond)].filter(p => policyType(p) === type && (cond === undefined || matches(p, cond)))
    const order = (p: Policy) => state.seqOf(String(policyBody(p).id)) ?? Number.MAX_SAFE_INTEGER
    found.sort((a, b) => order(a) - order(b))
    result.push(...found)
  }
  return result
}
