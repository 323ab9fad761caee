import { LedgerMeshError } from '../../base/errors.js'
import { policyBody, policyType } from '../../policies/policy.js'
import type { BringItem, GetQuery } from '../ast.js'
import { asText, type ExecContext, type Executor } from '../executor.js'
import { readRef } from '../lexer.js'
import { type CommandOutput, EMPTY_OUTPUT, jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { evalPython } from '../python-expr.js'
import { WhereArgs } from '../where.js'
import { jsonOf } from './anylog.js'

/**
 * The commands AnyLog scripts compute values with: `python <expr>`, `from <json> bring ...`,
 * `set policy <var> [k]... = <value>` (how its scripts build policies), and `config from
 * policy` (a config policy's script runs on this node).
 */
export function registerScriptValueCommands (executor: Executor, node: NodePort): void {
  executor.register('python', (cmd, ctx) => {
    const value = evalPython(cmd.raw ?? '', ref => refValue(ref, ctx))
    return typeof value === 'string' ? textOutput(value) : jsonOutput(value)
  })

  executor.register('from', (cmd, ctx) => bringFrom(jsonOf(ctx.executor.resolve(cmd.value!, ctx.vars), 'from'), cmd.query!.bring!))

  executor.register('set policy', (cmd, ctx) => {
    const { name, keys, value } = parseSetPolicy(cmd.raw ?? '', ctx)
    let policy = ctx.vars.get(name)
    if (typeof policy === 'string' && policy.trim() !== '') {
      try { policy = JSON.parse(policy) } catch { throw new LedgerMeshError('bad_command', `set policy: !${name} holds text that is not JSON`) }
    }
    const root: Record<string, unknown> = policy !== null && typeof policy === 'object' && !Array.isArray(policy) ? structuredClone(policy as Record<string, unknown>) : {}
    let at = root
    for (const key of keys.slice(0, -1)) {
      const next = at[key]
      if (next === null || typeof next !== 'object' || Array.isArray(next)) at[key] = {}
      at = at[key] as Record<string, unknown>
    }
    at[keys[keys.length - 1]] = value
    ctx.vars.set(name, root)
    return EMPTY_OUTPUT
  })

  executor.register('config from policy', async (cmd, ctx) => {
    const id = new WhereArgs(cmd, ctx).requireText('id')
    const policy = node.ledger.state.get(id)
    if (policy === undefined) throw new LedgerMeshError('not_found', `config from policy: no policy with id ${id} on this node's ledger`, { id })
    if (policyType(policy) !== 'config') throw new LedgerMeshError('bad_command', `config from policy: policy ${id} is a '${policyType(policy)}' policy, not a 'config' one`, { id })
    const body = policyBody(policy)
    // AnyLog (re)starts its servers on the policy's addresses; this node's servers run from
    // its env file, so the policy's are compared with them and a difference is reported.
    const differences: string[] = []
    for (const [field, running] of [['port', ctx.vars.get('tcp_port')], ['rest_port', ctx.vars.get('rest_port')]] as const) {
      const wanted = typeof body[field] === 'string' ? resolveTemplate(body[field], ctx) : body[field]
      if (wanted !== undefined && running !== undefined && String(wanted) !== String(running)) differences.push(`${field} ${String(wanted)} (this node listens on ${String(running)}; set it in the env file)`)
    }
    const script = Array.isArray(body.script) ? body.script.map(line => asText(line)) : []
    const printed = await ctx.executor.runNested(script.join('\n'), ctx, `config policy ${id}`)
    const head = `Config policy ${id} applied: ${script.length} script lines run${differences.length > 0 ? `; not applied: ${differences.join(', ')}` : ''}`
    return textOutput([head, ...printed].join('\n'), { id, script: script.length, not_applied: differences })
  })
}

/** The value of `!x` (a variable, with its cast) or `$X` (the env, then the variables). */
function refValue (text: string, ctx: ExecContext): unknown {
  const ref = readRef(text, 0)
  if (ref === undefined || ref.end !== text.length) return undefined
  return ctx.executor.resolveLenient({ ...ref.ref, pos: { offset: 0, line: 0, column: 0 } }, ctx.vars)
}

/**
 * A config policy's value as the node applying it reads it: a whole reference such as
 * `!anylog_server_port.int` takes the variable's value (and type); other text has its
 * references replaced; an undefined reference leaves the field unset.
 */
function resolveTemplate (raw: string, ctx: ExecContext): unknown {
  if (readRef(raw, 0)?.end === raw.length) return refValue(raw, ctx)
  let undefinedRef = false
  const text = raw.replace(/[!$][A-Za-z_][A-Za-z0-9_.]*/g, match => {
    const value = refValue(match.replace(/\.+$/, ''), ctx)
    if (value === undefined) { undefinedRef = true; return match }
    return asText(value) + match.slice(match.replace(/\.+$/, '').length)
  })
  return undefinedRef && text === raw ? raw : text
}

/**
 * `set policy <var> [key][key]... = <value>`. Keys may be references (`[!node_type]`). The
 * value: `{}` or other JSON as written; quoted text as written (AnyLog's config policies keep
 * `'!external_ip'` for the node that applies them to resolve); a bare reference its value.
 */
function parseSetPolicy (raw: string, ctx: ExecContext): { name: string, keys: string[], value: unknown } {
  const usage = 'set policy <var> [key][key]... = <value>'
  const head = /^([A-Za-z_][A-Za-z0-9_]*)\s*((?:\[[^\]]*\]\s*)+)/.exec(raw)
  if (head === null) throw new LedgerMeshError('bad_command', `set policy: expected '${usage}', found 'set policy ${raw.slice(0, 60)}'`)
  const keys = [...head[2].matchAll(/\[([^\]]*)\]/g)].map(m => {
    const key = m[1].trim()
    if (key === '') throw new LedgerMeshError('bad_command', 'set policy: an empty [key]')
    if (!/^[!$]/.test(key)) return key
    const value = refValue(key, ctx)
    if (value === undefined) throw new LedgerMeshError('bad_command', `set policy: ${key} is not defined`)
    return asText(value)
  })
  const rest = raw.slice(head[0].length).trim()
  if (!rest.startsWith('=')) throw new LedgerMeshError('bad_command', `set policy: expected '= <value>' after the keys in '${usage}'`)
  const text = rest.slice(1).trim()
  let value: unknown
  if (/^['"]/.test(text) && text.endsWith(text[0]) && text.length >= 2) value = text.slice(1, -1)
  else if (/^[[{]/.test(text)) {
    try { value = JSON.parse(text) } catch (err) { throw new LedgerMeshError('bad_command', `set policy: the value is not JSON: ${(err as Error).message}`) }
  } else if (/^[!$]/.test(text) && readRef(text, 0)?.end === text.length) {
    value = refValue(text, ctx) ?? '' // AnyLog: an undefined reference is empty text
  } else value = text
  return { name: head[1], keys, value }
}

/**
 * `bring` over a JSON value: a policy, a list of policies, or any object (`[loc]` picks a
 * top-level key). `[*]` alone is the policy's type; `[*][field]` a field of its body.
 */
export function bringFrom (value: unknown, bring: NonNullable<GetQuery['bring']>): CommandOutput {
  let items = Array.isArray(value) ? value : [value]
  if (bring.format === 'first') items = items.slice(0, 1)
  if (bring.format === 'count') return textOutput(String(items.length), items.length)
  if (bring.format === 'json') return jsonOutput(items)
  const values = items.flatMap(item => {
    const text = bring.items.map(i => pick(item, i)).join('')
    return text === '' && bring.items.length > 0 ? [] : [text]
  })
  const shown = bring.format === 'unique' ? [...new Set(values)] : values
  return textOutput(shown.join(bring.separator ?? '\n'), shown.length === 1 ? shown[0] : shown)
}

function pick (item: unknown, path: BringItem): string {
  if (path.kind === 'literal') return path.text
  if (item === null || typeof item !== 'object') return ''
  const object = item as Record<string, unknown>
  let keys = [path.type, ...(path.field === '' ? [] : [path.field])]
  let at: unknown = object
  if (keys[0] === '*') {
    const type = Object.keys(object)[0]
    if (keys.length === 1) return type ?? ''
    at = type === undefined ? undefined : object[type]
    keys = keys.slice(1)
  }
  for (const key of keys) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined
  return at === undefined ? '' : asText(at)
}
