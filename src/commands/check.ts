import { LedgerMeshError } from '../base/errors.js'
import type { CommandStatement, Statement } from './ast.js'
import { NOT_SUPPORTED_COMMANDS } from './catalog.js'
import { LEDGER_DATABASE, LEDGER_TABLE } from './data-layer.js'
import { forEachStatement, parseScriptLines } from './parser.js'

/** One problem `ledgermesh check` found, where it stands. */
export interface ScriptProblem {
  line: number
  column: number
  message: string
}

export interface ScriptCheck {
  /** statements that would run (labels and blank lines not counted; nested ones counted) */
  statements: number
  problems: ScriptProblem[]
  /**
   * Lines that parse but name a label the script lacks: they fail only if they run (AnyLog's
   * own scripts have a few on error paths that are never taken), so they warn.
   */
  warnings: ScriptProblem[]
}

/**
 * What `ledgermesh check` reports for one script, without running it: every line that does
 * not parse and labels defined twice (errors); and as warnings, each line that would not run
 * here (a command AnyLog has and ledgermesh does not, one of AnyLog's data layer) and
 * `goto`/`call`/`on error` naming no label of the script. No warning means it runs here.
 */
export function checkScript (text: string, source?: string): ScriptCheck {
  let statements: Statement[]
  try {
    statements = parseScriptLines(text, { source })
  } catch (err) {
    if (!(err instanceof LedgerMeshError)) throw err
    return { statements: 0, warnings: [], problems: [{ line: Number(err.details.line ?? 1), column: Number(err.details.column ?? 1), message: withoutPosition(err.message) }] }
  }
  const problems: ScriptProblem[] = []
  const warnings: ScriptProblem[] = []
  const labels = new Map<string, number>()
  const targets: Array<{ label: string, line: number, column: number, what: string }> = []
  let count = 0
  forEachStatement(statements, s => {
    // a `do`/`else` line counts once, as the statement it carries
    if (s.kind !== 'label' && s.kind !== 'do' && s.kind !== 'else') count++
    switch (s.kind) {
      case 'invalid': {
        const problem = { line: s.pos.line, column: Number(s.error.details.column ?? s.pos.column), message: withoutPosition(s.error.message) }
        // AnyLog has the command and ledgermesh does not: it fails when it runs, on error decides
        if (s.error.details.anylog_command !== undefined) warnings.push(problem)
        else problems.push(problem)
        break
      }
      case 'label': {
        const first = labels.get(s.name)
        if (first !== undefined) problems.push({ line: s.pos.line, column: s.pos.column, message: `label ':${s.name}:' is defined twice (first at line ${first})` })
        else labels.set(s.name, s.pos.line)
        break
      }
      case 'jump':
        if (s.label !== undefined) targets.push({ label: s.label, line: s.pos.line, column: s.pos.column, what: s.op })
        break
      case 'on error':
        if (s.label !== undefined) targets.push({ label: s.label, line: s.pos.line, column: s.pos.column, what: `on error ${s.mode}` })
        break
      case 'assign':
        if (s.value.kind === 'command') checkCommand(s.value, text, problems, warnings)
        break
      case 'command':
        checkCommand(s, text, problems, warnings)
        break
    }
  })
  for (const target of targets) {
    if (!labels.has(target.label)) warnings.push({ line: target.line, column: target.column, message: `${target.what} ${target.label}: no label ':${target.label}:' in this script` })
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column)
  warnings.sort((a, b) => a.line - b.line || a.column - b.column)
  return { statements: count, problems, warnings }
}

/**
 * A command that parses but that ledgermesh answers `not_supported` (AnyLog's data layer:
 * a script notes it and goes on) warns; so does each such line of a config policy's
 * `script` list written with `set policy ... [script] = [...]`, which runs when the policy
 * is applied, and a line of that list that does not parse is an error.
 */
function checkCommand (cmd: CommandStatement, text: string, problems: ScriptProblem[], warnings: ScriptProblem[]): void {
  const at = { line: cmd.pos.line, column: cmd.pos.column }
  const dataLayer = dataLayerCommand(cmd)
  if (dataLayer !== undefined) warnings.push({ ...at, message: `'${dataLayer}' is AnyLog's data layer or host tooling: answered not_supported (a script notes the line and goes on)` })
  if (cmd.name !== 'set policy' || cmd.raw === undefined) return
  const list = /\[script\]\s*=\s*(\[[\s\S]*\])\s*$/.exec(cmd.raw)?.[1]
  let lines: unknown
  try { lines = list === undefined ? undefined : JSON.parse(list) } catch { return }
  if (!Array.isArray(lines)) return
  for (const line of lines) {
    if (typeof line !== 'string') continue
    const found = text.indexOf(line, cmd.pos.offset)
    const lineNo = found < 0 ? cmd.pos.line : text.slice(0, found).split('\n').length
    const inner = checkScript(line)
    const where = (message: string): ScriptProblem => ({ line: lineNo, column: 1, message: `in the config policy's script, '${line.slice(0, 60)}': ${message}` })
    for (const p of inner.problems) problems.push(where(p.message))
    for (const w of inner.warnings) warnings.push(where(w.message))
  }
}

/** The command as a data-layer line names it, when ledgermesh would answer it not_supported. */
function dataLayerCommand (cmd: CommandStatement): string | undefined {
  if (NOT_SUPPORTED_COMMANDS.includes(cmd.name)) return cmd.name
  if (cmd.name === 'run operator' && cmd.where.length > 0) return 'run operator where ...'
  const value = cmd.value?.kind === 'literal' ? cmd.value.text.toLowerCase() : undefined
  if (cmd.name === 'create table' && value !== undefined && value !== LEDGER_TABLE) return `create table ${value}`
  if (cmd.name === 'connect dbms' && value !== undefined && value !== LEDGER_DATABASE) return `connect dbms ${value}`
  return undefined
}

/** Error messages carry "at line L, column C of FILE"; the report prints the position itself. */
function withoutPosition (message: string): string {
  return message.replace(/ at line \d+, column \d+( of .*)?$/, '')
}
