import { LedgerMeshError } from '../base/errors.js'
import type { Statement } from './ast.js'
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
 * not parse and labels defined twice (errors), and `goto`/`call`/`on error` naming no label
 * of the script (warnings).
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
  const labels = new Map<string, number>()
  const targets: Array<{ label: string, line: number, column: number, what: string }> = []
  let count = 0
  forEachStatement(statements, s => {
    // a `do`/`else` line counts once, as the statement it carries
    if (s.kind !== 'label' && s.kind !== 'do' && s.kind !== 'else') count++
    switch (s.kind) {
      case 'invalid':
        problems.push({ line: s.pos.line, column: Number(s.error.details.column ?? s.pos.column), message: withoutPosition(s.error.message) })
        break
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
    }
  })
  const warnings: ScriptProblem[] = []
  for (const target of targets) {
    if (!labels.has(target.label)) warnings.push({ line: target.line, column: target.column, message: `${target.what} ${target.label}: no label ':${target.label}:' in this script` })
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column)
  return { statements: count, problems, warnings }
}

/** Error messages carry "at line L, column C of FILE"; the report prints the position itself. */
function withoutPosition (message: string): string {
  return message.replace(/ at line \d+, column \d+( of .*)?$/, '')
}
