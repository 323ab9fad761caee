import { access, mkdir } from 'node:fs/promises'
import { LedgerMeshError } from '../../base/errors.js'
import { asText, type ExecContext, type Executor } from '../executor.js'
import type { LogEntry } from '../command-log.js'
import { type CommandOutput, EMPTY_OUTPUT, jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { formatTable } from '../table.js'
import { WhereArgs, formatJson } from '../where.js'
import type { CommandStatement } from '../ast.js'
import { NOT_SUPPORTED_COMMANDS } from '../catalog.js'
import { dataLayerError } from '../data-layer.js'

/** The most a script may `wait`: longer pauses are a mistake, not a deployment step. */
const MAX_WAIT_SECONDS = 600
/** `rest get` gives up after this long unless `timeout` says otherwise. */
const REST_GET_TIMEOUT_SECONDS = 10
const TRACE_LEVELS: Record<string, string> = { 0: 'info', 1: 'debug', 2: 'trace', 3: 'trace' }

/**
 * Commands AnyLog's deployment scripts and REST clients call on any node: the node's name,
 * its dictionary, its logs, settings that have no effect here but must not fail a script,
 * and the small value commands scripts compute with (`file test`, `json`, `rest get`).
 */
export function registerAnyLogCommands (executor: Executor, node: NodePort): void {
  for (const name of NOT_SUPPORTED_COMMANDS) {
    executor.register(name, () => {
      throw dataLayerError(name)
    })
  }

  // AnyLog answers name@ip:port (the p2p address)
  executor.register('get node name', (_cmd, ctx) => {
    const [name, address] = node.status().assigned_name.split('@')
    return textOutput(`${asText(ctx.vars.get('node_name') ?? name)}${address !== undefined ? `@${address}` : ''}`)
  })
  executor.register('set node name', (cmd, ctx) => {
    const name = valueText(cmd, ctx)
    if (name === '') throw new LedgerMeshError('bad_command', 'set node name: expected a name')
    ctx.executor.vars.set('node_name', name)
    return textOutput(`Node name set to ${name}`, { node_name: name })
  })

  executor.register('get dictionary', (cmd, ctx) => {
    const entries = ctx.executor.shownVariables(ctx.vars)
    if (formatJson(new WhereArgs(cmd, ctx))) return jsonOutput(Object.fromEntries(entries))
    return textOutput(formatTable(['Key', 'Value'], entries.map(([k, v]) => [k, asText(v).slice(0, 200)])), Object.fromEntries(entries))
  })

  const showLog = (entries: LogEntry[], cmd: CommandStatement, ctx: ExecContext): CommandOutput => {
    if (formatJson(new WhereArgs(cmd, ctx))) return jsonOutput(entries)
    return textOutput(formatTable(['Time', 'Where', 'Text'], entries.map(e => [e.time, e.where, e.text])), entries)
  }
  executor.register('get event log', (cmd, ctx) => showLog(ctx.executor.eventLog.list(), cmd, ctx))
  executor.register('get error log', (cmd, ctx) => showLog(ctx.executor.errorLog.list(), cmd, ctx))
  executor.register('reset error log', (_cmd, ctx) => { ctx.executor.errorLog.clear(); return textOutput('Error log reset') })
  executor.register('reset event log', (_cmd, ctx) => { ctx.executor.eventLog.clear(); return textOutput('Event log reset') })

  executor.register('get scheduler', () => {
    const row = node.processes().find(r => r.name === 'Scheduler')
    return textOutput(formatTable(['Scheduler', 'Status', 'Details'], [['1', row?.status ?? 'Not declared', row?.details ?? '']]), row ?? null)
  })

  const databases = (): Array<{ dbms: string, type: string, location: string }> => {
    if (!node.hasLedger) return []
    const { store } = node.ledger
    return [{ dbms: 'blockchain', type: store.kind, location: store.location }]
  }
  executor.register('get databases', (cmd, ctx) => {
    const rows = databases()
    if (formatJson(new WhereArgs(cmd, ctx))) return jsonOutput(rows)
    return textOutput(rows.length === 0 ? 'No DBMS connected' : formatTable(['DBMS', 'Type', 'Location'], rows.map(r => [r.dbms, r.type, r.location])), rows)
  })
  executor.register('get tables', (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const dbms = where.text('dbms') ?? '*'
    const rows = databases().filter(d => dbms === '*' || d.dbms === dbms.toLowerCase()).map(d => ({ dbms: d.dbms, table: 'ledger' }))
    if (formatJson(where)) return jsonOutput(rows)
    return textOutput(rows.length === 0 ? `No tables in ${dbms}` : formatTable(['DBMS', 'Table'], rows.map(r => [r.dbms, r.table])), rows)
  })
  executor.register('info table', (cmd) => {
    const words = (cmd.raw ?? '').split(/\s+/)
    if (words.length !== 3 || words[2].toLowerCase() !== 'exists') throw new LedgerMeshError('bad_command', `info table: expected 'info table <dbms> <table> exists', found 'info table ${cmd.raw ?? ''}'`)
    const exists = node.hasLedger && words[0].toLowerCase() === 'blockchain' && words[1].toLowerCase() === 'ledger'
    return textOutput(exists ? 'true' : 'false', exists)
  })

  executor.register('get license', () => textOutput('ledgermesh is open source (MIT): no license key is needed', { license: 'MIT' }))

  executor.register('blockchain seed from', async (cmd, ctx) => {
    const from = valueText(cmd, ctx)
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(from)) throw new LedgerMeshError('bad_command', `blockchain seed from: expected ip:port, found '${from}'`)
    const { seq, pulled } = await node.seedLedger()
    return textOutput(pulled ? `Ledger synced from the master: head seq ${seq}` : `This node orders the ledger: head seq ${seq}`, { seq, pulled })
  })
  executor.register('blockchain reload metadata', () => {
    const seq = node.hasLedger ? node.ledger.head.seq : 0
    return textOutput(`Ledger is current: head seq ${seq}`, { seq })
  })

  executor.register('create work directories', async () => {
    await mkdir(node.home, { recursive: true, mode: 0o700 })
    return textOutput(`Work directories ready in ${node.home}`, { home: node.home })
  })
  executor.register('set anylog home', (cmd, ctx) => {
    const path = valueText(cmd, ctx)
    ctx.executor.vars.set('anylog_home', path)
    return textOutput(`AnyLog home recorded as ${path}; this node keeps its files in ${node.home}`, { anylog_home: path, home: node.home })
  })

  executor.register('trace level', (cmd) => {
    const match = /^=\s*(\d)\b/.exec(cmd.raw ?? '')
    const level = match === null ? undefined : TRACE_LEVELS[match[1]]
    if (level === undefined) throw new LedgerMeshError('bad_command', `trace level: expected 'trace level = <0-3>', found 'trace level ${cmd.raw ?? ''}'`)
    node.setLogLevel(level)
    return textOutput(`Log level ${level}`, { level })
  })

  for (const name of ['set echo queue', 'set cli', 'set exception traceback'] as const) {
    executor.register(name, (cmd, ctx) => {
      const value = valueText(cmd, ctx).toLowerCase()
      if (value !== 'on' && value !== 'off') throw new LedgerMeshError('bad_command', `${name}: expected on or off, found '${value}'`)
      ctx.executor.vars.set(name.replace(/ /g, '_'), value)
      return EMPTY_OUTPUT
    })
  }

  executor.register('wait', async (cmd, ctx) => {
    const seconds = Number(valueText(cmd, ctx))
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_SECONDS) throw new LedgerMeshError('bad_command', `wait: expected seconds from 0 to ${MAX_WAIT_SECONDS}`)
    await new Promise(resolve => setTimeout(resolve, seconds * 1000))
    return EMPTY_OUTPUT
  })

  executor.register('file test', async (cmd, ctx) => {
    const exists = await access(valueText(cmd, ctx)).then(() => true, () => false)
    return textOutput(exists ? 'true' : 'false', exists)
  })

  executor.register('json', (cmd, ctx) => {
    const value = jsonOf(ctx.executor.resolve(cmd.value!, ctx.vars), 'json')
    if (value === null || typeof value !== 'object') throw new LedgerMeshError('bad_command', 'json: the value is not a JSON object or list')
    return jsonOutput(value)
  })

  executor.register('rest get', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const url = where.requireText('url')
    if (!/^https?:\/\//i.test(url)) throw where.error(`'url' must be an http or https URL, found '${url}'`)
    const timeout = where.int('timeout', { min: 1, max: 120 }) ?? REST_GET_TIMEOUT_SECONDS
    let response: Response
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(timeout * 1000) })
    } catch (err) {
      throw new LedgerMeshError('unreachable', `rest get: ${url} did not answer: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`)
    }
    const text = await response.text()
    if (!response.ok) throw new LedgerMeshError('unreachable', `rest get: ${url} answered HTTP ${response.status}`)
    try {
      return jsonOutput(JSON.parse(text))
    } catch {
      return textOutput(text)
    }
  })
}

/** A value as JSON: text is parsed (an error names the command), anything else is JSON already. */
export function jsonOf (value: unknown, command: string): unknown {
  if (typeof value !== 'string') return value
  try {
    return JSON.parse(value)
  } catch {
    throw new LedgerMeshError('bad_command', `${command}: the value is not JSON: ${value.slice(0, 80)}`)
  }
}

function valueText (cmd: CommandStatement, ctx: ExecContext): string {
  return asText(ctx.executor.resolve(cmd.value!, ctx.vars)).trim()
}
