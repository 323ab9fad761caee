import { LedgerMeshError } from '../base/errors.js'
import type { OnErrorStatement, Statement } from './ast.js'
import { isDataLayerError } from './data-layer.js'
import { invalidStatements } from './parser.js'

/** What a statement asks of the script around it once it has run. */
export type Flow =
  | { kind: 'next' }
  | { kind: 'jump', label: string, call: boolean }
  | { kind: 'return' }
  | { kind: 'end script' }
  | { kind: 'exit scripts' }

export const NEXT: Flow = { kind: 'next' }

/**
 * The state one running script keeps between its lines: the last `if`'s result (which
 * `do` and `else` lines read) and what a failing line does (`on error`). A script run by
 * `process` gets its own, starting from its caller's `if` result, as in AnyLog.
 */
export interface ScriptState {
  ifResult: boolean
  onError: { mode: OnErrorStatement['mode'] | 'stop', label?: string }
}

export function newScriptState (ifResult = false): ScriptState {
  return { ifResult, onError: { mode: 'stop' } }
}

/** Thrown by `exit scripts` through every `process` up to the outermost script, which ends quietly. */
export class ExitScripts<R = unknown> extends Error {
  constructor (readonly results: R[]) {
    super('exit scripts')
  }
}

/** What a script needs of the executor: run one statement, note a failed one. */
export interface StatementRunner<C, R> {
  execStatement: (statement: Statement, ctx: C, results: R[]) => Promise<Flow>
  recordError: (err: unknown, statement: Statement, ctx: C) => void
}

/** A script may jump at most this often: a `goto` loop ends with an error instead of spinning forever. */
export const MAX_JUMPS = 100_000

/**
 * Runs a script's top-level statements with a program counter: labels, `goto`, `call` /
 * `return`, `end script`, `exit scripts`, and `on error` deciding what a failing line does.
 * Without `on error` a failing line stops the script with its error. Under `on error goto`
 * or `call`, a line whose structure does not parse still stops the script (only `on error
 * ignore` passes over those), as AnyLog does; an unknown command is an ordinary failure.
 * A line of AnyLog's data layer is noted and passed over, whatever `on error` says.
 */
export class ScriptRun<C extends { source?: string, script: ScriptState }, R> {
  private readonly labels = new Map<string, number>()

  constructor (private readonly executor: StatementRunner<C, R>, private readonly statements: readonly Statement[], private readonly ctx: C) {
    for (const [i, s] of statements.entries()) {
      if (s.kind !== 'label') continue
      const seen = this.labels.get(s.name)
      if (seen !== undefined) {
        throw new LedgerMeshError('bad_command', `label ':${s.name}:' is defined twice (lines ${statements[seen].pos.line} and ${s.pos.line})${ctx.source !== undefined ? ` in ${ctx.source}` : ''}`, { line: s.pos.line, source: ctx.source })
      }
      this.labels.set(s.name, i)
    }
  }

  async run (): Promise<R[]> {
    const results: R[] = []
    const returns: number[] = []
    const state = this.ctx.script
    let lastJump: string | undefined
    let jumps = 0
    for (let pc = 0; pc < this.statements.length;) {
      const statement = this.statements[pc]
      let flow: Flow
      try {
        flow = await this.executor.execStatement(statement, this.ctx, results)
      } catch (err) {
        if (err instanceof ExitScripts) throw new ExitScripts<R>([...results, ...(err.results as R[])])
        this.executor.recordError(err, statement, this.ctx)
        // AnyLog's data layer is not here: a script file's lines of it are passed over (see
        // data-layer.ts); a command sent alone (REPL, REST) gets its not_supported answer
        if (this.ctx.source !== undefined && isDataLayerError(err)) { pc++; continue }
        const { mode, label } = state.onError
        // a line that does not parse stops the script unless errors are ignored; an unknown
        // command is an ordinary failure (AnyLog answers it like any failing command)
        const unrunnable = err instanceof LedgerMeshError && err.code !== 'unknown_command' && invalidStatements([statement]).some(s => s.error === err)
        if (mode === 'ignore') { pc++; continue }
        if (unrunnable || mode === 'stop' || mode === 'end script' || label === lastJump) throw err
        flow = { kind: 'jump', label: label!, call: mode === 'call' }
      }
      switch (flow.kind) {
        case 'next':
          pc++
          break
        case 'jump': {
          const target = this.labels.get(flow.label)
          if (target === undefined) {
            throw new LedgerMeshError('bad_command', `${flow.call ? 'call' : 'goto'} ${flow.label}: no label ':${flow.label}:' in ${this.ctx.source ?? 'this script'} (line ${statement.pos.line})`, { line: statement.pos.line, source: this.ctx.source })
          }
          if (++jumps > MAX_JUMPS) {
            throw new LedgerMeshError('bad_command', `${this.ctx.source ?? 'the script'} jumped more than ${MAX_JUMPS} times (a goto loop?); stopped at line ${statement.pos.line}`, { line: statement.pos.line, source: this.ctx.source })
          }
          if (flow.call) returns.push(pc)
          lastJump = flow.label
          pc = target + 1
          break
        }
        case 'return': {
          const from = returns.pop()
          if (from === undefined) return results
          pc = from + 1
          break
        }
        case 'end script':
          return results
        case 'exit scripts':
          throw new ExitScripts<R>(results)
      }
    }
    return results
  }
}
