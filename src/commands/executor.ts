import { LedgerMeshError } from '../base/errors.js'
import { MASK, SecretMask, allowedProcessEnv, isSecretName } from '../base/secrets.js'
import type { CommandStatement, IfCondition, Statement, ValueNode, Cast } from './ast.js'
import { commandSpec } from './catalog.js'
import { isDataLayerError } from './data-layer.js'
import { type CommandOutput, EMPTY_OUTPUT, jsonOutput, textOutput } from './output.js'
import { parseScript, parseScriptLines } from './parser.js'
import { CommandLog } from './command-log.js'
import { ExitScripts, type Flow, NEXT, ScriptRun, type ScriptState, newScriptState } from './script-run.js'
import { Variables } from './variables.js'

/** Where a command came from: REST refuses writes sent by GET; the REPL prints values. */
export type Via = 'repl' | 'rest' | 'script' | 'test'

export interface ExecContext {
  vars: Variables
  via: Via
  /** the script file being run, for error messages */
  source?: string
  executor: Executor
  /** the running script's `if` result and `on error` (one per script; created when absent) */
  script?: ScriptState
  /** true inside a script run by `process`: `exit scripts` ends its callers too */
  nested?: boolean
}

export type CommandHandler = (cmd: CommandStatement, ctx: ExecContext) => Promise<CommandOutput> | CommandOutput

/** A statement's result; assignments yield none, so a script's outputs are its commands'. */
export interface StatementResult {
  statement: Statement
  output?: CommandOutput
}

/**
 * The one command executor: the REPL, REST, start-up scripts and tests all parse text with
 * `parseScript` and run it here, so a command behaves the same whichever way it came in.
 *
 * Secrets (src/secrets.ts): commands get the real values; what a statement shows (its
 * output, its error) is masked here, the one place every statement passes, and references
 * made through a scope that hides secrets (REST reads, a bare `!x`, `echo`) resolve to `***`.
 */
export class Executor {
  private readonly handlers = new Map<string, CommandHandler>()
  readonly vars: Variables
  /** the secret values known so far: masked in every output and error */
  readonly secrets: SecretMask
  /** `$NAME` lookups: the node's effective config first, then an allow-list of the process environment. */
  private readonly env: (name: string) => string | undefined

  /** told of every error noted in the error log (the node writes it to its own log, which `reset error log` leaves alone) */
  private readonly onError?: (where: string, text: string) => void

  constructor (opts: { vars?: Variables, env?: (name: string) => string | undefined, secrets?: SecretMask, onError?: (where: string, text: string) => void } = {}) {
    this.vars = opts.vars ?? new Variables()
    this.env = opts.env ?? allowedProcessEnv
    this.secrets = opts.secrets ?? new SecretMask()
    this.onError = opts.onError
  }

  register (name: string, handler: CommandHandler): void {
    if (commandSpec(name) === undefined) throw new Error(`no catalog entry for command '${name}'`)
    this.handlers.set(name, handler)
  }

  /** the last commands run and errors met (`get event log`, `get error log`) */
  readonly eventLog = new CommandLog()
  readonly errorLog = new CommandLog()

  /**
   * Parses and runs text. A script (`via: 'script'`) runs line by line, as AnyLog runs it:
   * a bad line fails when reached and `on error` decides; from the REPL and REST, text with
   * any bad line is refused before anything runs.
   */
  async run (text: string, opts: { via: Via, vars?: Variables, source?: string }): Promise<StatementResult[]> {
    const statements = opts.via === 'script' ? parseScriptLines(text, { source: opts.source }) : parseScript(text, { source: opts.source })
    const ctx: ExecContext = { vars: opts.vars ?? this.vars, via: opts.via, source: opts.source, executor: this }
    return await this.runStatements(statements, ctx)
  }

  /** Runs text and returns only what its commands printed (the REPL's and REST's view). */
  async runForOutput (text: string, opts: { via: Via, vars?: Variables, source?: string }): Promise<CommandOutput[]> {
    const results = await this.run(text, opts)
    return results.flatMap(r => r.output === undefined ? [] : [r.output])
  }

  /** Runs statements as one script (see ScriptRun); the outermost one ends quietly at `exit scripts`. */
  async runStatements (statements: readonly Statement[], ctx: ExecContext): Promise<StatementResult[]> {
    const scriptCtx = { ...ctx, script: ctx.script ?? newScriptState() }
    try {
      return await new ScriptRun(this, statements, scriptCtx).run()
    } catch (err) {
      if (err instanceof ExitScripts && ctx.nested !== true) return err.results as StatementResult[]
      throw err
    }
  }

  /**
   * Runs a script inside the running one (`process`, a config policy's script): it gets its
   * own `on error` and starts from the caller's `if` result, and the caller's is left as it
   * was (AnyLog restores it). Answers what its commands printed.
   */
  async runNested (text: string, ctx: ExecContext, source: string): Promise<string[]> {
    const statements = parseScriptLines(text, { source })
    const results = await this.runStatements(statements, { ...ctx, source, nested: true, script: newScriptState(ctx.script?.ifResult) })
    return results.flatMap(r => r.output === undefined || r.output.text === '' ? [] : [r.output.text])
  }

  /** The variables as shown: a secret-named one as `***`, the others with secret values masked. */
  shownVariables (vars: Variables): Array<[string, unknown]> {
    return vars.entries().map(([k, v]): [string, unknown] => [k, isSecretName(k) ? MASK : this.secrets.value(v)])
  }

  /** Runs one statement, adding what it shows to `results` (masked: no secret value shows). */
  async execStatement (statement: Statement, ctx: ExecContext & { script: ScriptState }, results: StatementResult[]): Promise<Flow> {
    const shown: StatementResult[] = []
    try {
      return await this.execUnmasked(statement, ctx, shown)
    } catch (err) {
      throw this.maskError(err)
    } finally {
      for (const r of shown) results.push(r.output === undefined ? r : { ...r, output: this.maskOutput(r.output) })
    }
  }

  /** Notes a failed statement in the error log (masked). */
  recordError (err: unknown, statement: Statement, ctx: ExecContext): void {
    this.noteError(err, `${ctx.source ?? ctx.via}:${statement.pos.line}`, isDataLayerError(err) ? ' (passed over: the script goes on)' : '')
  }

  /** Notes an error in the error log once (a script's failure passes up through its callers). */
  noteError (err: unknown, where: string, suffix = ''): void {
    if (err !== null && typeof err === 'object') {
      if (this.noted.has(err)) return
      this.noted.add(err)
    }
    const text = this.secrets.text(err instanceof Error ? err.message : String(err)) + suffix
    this.errorLog.add(where, 0, text)
    this.onError?.(where, text)
  }

  private readonly noted = new WeakSet<object>()

  private async execUnmasked (statement: Statement, ctx: ExecContext & { script: ScriptState }, results: StatementResult[]): Promise<Flow> {
    switch (statement.kind) {
      case 'assign': {
        const value = statement.value.kind === 'command'
          ? assignedValue(await this.runCommand(statement.value, ctx))
          : statement.value.kind === 'if'
            ? String(this.evalCondition(statement.value.condition, ctx.vars))
            : this.resolveLenient(statement.value, ctx.vars)
        // AnyLog: assigning nothing (`x = ""`, an undefined `!y`) removes the variable
        if (value === undefined || value === '') {
          ctx.vars.delete(statement.name)
          results.push({ statement })
          return NEXT
        }
        // A secret-named variable's value is a secret wherever it goes next (unless it was
        // set through a scope that hides secrets: then it is not one, and a REST read must
        // not be able to make arbitrary text masked).
        if (isSecretName(statement.name) && !ctx.vars.hidesSecrets) this.secrets.add(value)
        ctx.vars.set(statement.name, value)
        results.push({ statement })
        return NEXT
      }
      case 'command':
        results.push({ statement, output: await this.runCommand(statement, ctx) })
        return NEXT
      case 'value': {
        // A bare `!x` or `$X` shows the value: what it shows hides secrets.
        const value = this.resolve(statement.value, ctx.vars.hidingSecrets())
        results.push({ statement, output: showValue(value) })
        return NEXT
      }
      case 'if': {
        const result = this.evalCondition(statement.condition, ctx.vars)
        let flow = NEXT
        if (statement.showsResult === true) results.push({ statement, output: textOutput(result ? 'true' : 'false', result) })
        for (const branch of result ? statement.then : (statement.else ?? [])) {
          flow = await this.execUnmasked(branch, ctx, results)
          if (flow.kind !== 'next') break
        }
        // set after the branch ran, as AnyLog does: `do` and `else` lines read this result
        ctx.script.ifResult = result
        return flow
      }
      case 'do':
      case 'else':
        if (ctx.script.ifResult !== (statement.kind === 'do')) return NEXT
        return await this.execUnmasked(statement.body, ctx, results)
      case 'label':
        return NEXT
      case 'jump':
        return statement.op === 'goto' || statement.op === 'call' ? { kind: 'jump', label: statement.label!, call: statement.op === 'call' } : { kind: statement.op }
      case 'on error':
        ctx.script.onError = { mode: statement.mode, ...(statement.label !== undefined ? { label: statement.label } : {}) }
        return NEXT
      case 'invalid':
        throw statement.error
    }
  }

  async runCommand (cmd: CommandStatement, ctx: ExecContext): Promise<CommandOutput> {
    const handler = this.handlers.get(cmd.name)
    if (handler === undefined) {
      throw new LedgerMeshError('unknown_command', `'${cmd.name}' is not available on this node`, { command: cmd.name })
    }
    this.eventLog.add(ctx.source ?? ctx.via, cmd.pos.line, this.secrets.text(cmd.text))
    try {
      return await handler(cmd, ctx)
    } catch (err) {
      if (err instanceof LedgerMeshError && err.details.command === undefined) {
        err.details.command = cmd.name
        err.details.line ??= cmd.pos.line
        if (ctx.source !== undefined) err.details.source ??= ctx.source
      }
      throw err
    }
  }

  /** An output with every secret value in its text and value replaced by `***`. */
  maskOutput (output: CommandOutput): CommandOutput {
    if (this.secrets.size === 0) return output
    const text = this.secrets.text(output.text)
    if (text === output.text && output.contentType === 'json') return output
    const value = output.value === output.text ? text : this.secrets.value(output.value)
    return text === output.text && value === output.value ? output : { ...output, text, value }
  }

  /** The error, its message (and its details' texts) masked. */
  maskError (err: unknown): unknown {
    if (this.secrets.size === 0 || !(err instanceof Error)) return err
    try {
      err.message = this.secrets.text(err.message)
      if (err instanceof LedgerMeshError) {
        for (const [key, value] of Object.entries(err.details)) err.details[key] = this.secrets.value(value)
      }
    } catch {
      // a frozen error: answer with a masked copy instead
      return new LedgerMeshError(err instanceof LedgerMeshError ? err.code : 'internal', this.secrets.text(err.message))
    }
    return err
  }

  /** The HTTP method a statement needs over REST: POST if it runs any write command. */
  static methodOf (statement: Statement): 'GET' | 'POST' {
    switch (statement.kind) {
      case 'command': return commandSpec(statement.name)?.method ?? 'POST'
      case 'assign': return statement.value.kind === 'command' ? Executor.methodOf(statement.value) : 'GET'
      case 'value': return 'GET'
      case 'if': return [...statement.then, ...(statement.else ?? [])].some(s => Executor.methodOf(s) === 'POST') ? 'POST' : 'GET'
      case 'do': case 'else': return Executor.methodOf(statement.body)
      case 'label': case 'jump': case 'on error': case 'invalid': return 'GET'
    }
  }

  /** The value a node stands for now. Undefined variables are an error that names them. */
  resolve (node: ValueNode, vars: Variables): unknown {
    const value = this.resolveLenient(node, vars)
    if (value === undefined) {
      // name the reference that is missing, inside a word such as `!path/file` too
      const missing = node.kind === 'concat' ? node.parts.find(p => this.resolveLenient(p, vars) === undefined) ?? node : node
      const shown = missing.kind === 'var' ? `!${missing.name}` : missing.kind === 'env' ? `$${missing.name}` : 'value'
      throw new LedgerMeshError('bad_command', `${shown} is not defined (line ${node.pos.line}, column ${node.pos.column})`, { line: node.pos.line, column: node.pos.column })
    }
    return value
  }

  /** Like resolve, but undefined stays undefined (conditions test for it). */
  resolveLenient (node: ValueNode, vars: Variables): unknown {
    switch (node.kind) {
      case 'literal': return node.text
      case 'var': {
        const value = vars.get(node.name)
        return value === undefined ? undefined : applyCast(this.reveal(node.name, value, vars), node.cast, `!${node.name}`)
      }
      case 'env': {
        const value = this.env(node.name) ?? vars.get(node.name)
        return value === undefined ? undefined : applyCast(this.reveal(node.name, value, vars), node.cast, `$${node.name}`)
      }
      case 'concat': {
        const parts = node.parts.map(p => this.resolveLenient(p, vars))
        return parts.includes(undefined) ? undefined : parts.map(asText).join('')
      }
      case 'plus':
        return node.parts.map(p => asText(this.resolveLenient(p, vars))).join('')
      case 'json': return this.resolveJson(node, vars)
    }
  }

  /**
   * What a reference to `name` stands for: its value, which is registered as a secret when
   * the name is a secret's; through a scope that hides secrets, `***` for a secret-named
   * reference and the value masked otherwise (a copy of a secret under another name).
   */
  private reveal (name: string, value: unknown, vars: Variables): unknown {
    if (!vars.hidesSecrets) {
      if (isSecretName(name)) this.secrets.add(value)
      return value
    }
    return isSecretName(name) ? MASK : this.secrets.value(value)
  }

  /** Substitutes the references of a JSON template, then parses it. */
  private resolveJson (node: Extract<ValueNode, { kind: 'json' }>, vars: Variables): unknown {
    let text = ''
    let at = 0
    for (const ref of node.refs) {
      text += node.source.slice(at, ref.start)
      const value = this.resolve({ ...ref.ref, pos: node.pos }, vars)
      text += ref.inString ? JSON.stringify(asText(value)).slice(1, -1) : JSON.stringify(value)
      at = ref.end
    }
    text += node.source.slice(at)
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new LedgerMeshError('bad_command', `the JSON value at line ${node.pos.line}, column ${node.pos.column} is not valid: ${(err as Error).message}`, { line: node.pos.line, column: node.pos.column })
    }
  }

  evalCondition (cond: IfCondition, vars: Variables): boolean {
    switch (cond.kind) {
      case 'truthy': return isTruthy(this.conditionValue(cond.value, vars))
      case 'not': return !this.evalCondition(cond.term, vars)
      case 'and': return cond.terms.every(t => this.evalCondition(t, vars))
      case 'or': return cond.terms.some(t => this.evalCondition(t, vars))
      case 'cmp': {
        const left = this.conditionValue(cond.left, vars)
        const right = this.conditionValue(cond.right, vars)
        return compareForIf(left, cond.op, right)
      }
    }
  }

  /** A value in a condition: as AnyLog, a cast that fails (`!x.int` of "abc") gives empty text. */
  private conditionValue (node: ValueNode, vars: Variables): unknown {
    try {
      return this.resolveLenient(node, vars)
    } catch (err) {
      if (err instanceof LedgerMeshError && err.code === 'bad_command') return ''
      throw err
    }
  }
}

function applyCast (value: unknown, cast: Cast | undefined, name: string): unknown {
  if (cast === undefined) return value
  const text = asText(value).trim()
  const fail = (expected: string): never => {
    throw new LedgerMeshError('bad_command', `${name}.${cast}: ${JSON.stringify(text)} is not ${expected}`)
  }
  switch (cast) {
    case 'int': return /^-?\d+$/.test(text) ? Number(text) : fail('an integer')
    case 'float': return text !== '' && Number.isFinite(Number(text)) ? Number(text) : fail('a number')
    case 'str': return text
    case 'name': return text.replace(/ /g, '_').toLowerCase()
    case 'len': return Array.isArray(value) ? value.length : value !== null && typeof value === 'object' ? Object.keys(value).length : asText(value).length
    case 'bool': return text === 'true' ? true : text === 'false' ? false : fail('true or false')
    case 'list':
      // "a, b,c" → ["a", "b", "c"]: comma-separated env values (PROFILE_KINDS) as JSON arrays
      if (Array.isArray(value)) return value
      return text === '' ? [] : text.split(',').map(item => item.trim()).filter(item => item !== '')
    case 'json':
      if (typeof value !== 'string') return value
      try { return JSON.parse(value) } catch { return fail('JSON') }
  }
}

/** How a value reads as text: strings as they are, everything else as JSON. */
export function asText (value: unknown): string {
  if (typeof value === 'string') return value
  if (value === undefined) return ''
  return JSON.stringify(value)
}

export function isTruthy (value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0) return false
  if (typeof value === 'string') {
    const text = value.trim().toLowerCase()
    return text !== '' && text !== 'false' && text !== '0' && text !== '[]' && text !== '{}'
  }
  if (Array.isArray(value)) return value.length > 0
  if (typeof value === 'object') return Object.keys(value).length > 0
  return true
}

function isEmpty (value: unknown): boolean {
  return value === undefined || value === null || asText(value).trim() === '' || (Array.isArray(value) && value.length === 0)
}

function compareForIf (left: unknown, op: IfCondition & { kind: 'cmp' } extends { op: infer O } ? O : never, right: unknown): boolean {
  if (op === 'is' || op === 'is not') {
    const word = asText(right).trim().toLowerCase()
    let result: boolean
    if (word === 'empty' || word === 'null') result = isEmpty(left)
    else if (word === 'true') result = isTruthy(left)
    else if (word === 'false') result = !isTruthy(left)
    else if (word === 'defined') result = left !== undefined
    else result = asText(left) === asText(right)
    return op === 'is' ? result : !result
  }
  if (op === 'contains' || op === 'startswith' || op === 'endswith') {
    // case-insensitive substring tests (AnyLog)
    const [text, part] = [asText(left).toLowerCase(), asText(right).toLowerCase()]
    return op === 'contains' ? text.includes(part) : op === 'startswith' ? text.startsWith(part) : text.endsWith(part)
  }
  if (left === undefined || right === undefined) return op === '!='
  // text compares without regard to case, as AnyLog compares (`$NODE_TYPE == Master`)
  const a = asText(left).trim().toLowerCase()
  const b = asText(right).trim().toLowerCase()
  const numeric = a !== '' && b !== '' && Number.isFinite(Number(a)) && Number.isFinite(Number(b))
  const order = numeric ? Math.sign(Number(a) - Number(b)) : (a < b ? -1 : a > b ? 1 : 0)
  switch (op) {
    case '=': case '==': return order === 0
    case '!=': return order !== 0
    case '<': return order < 0
    case '<=': return order <= 0
    case '>': return order > 0
    case '>=': return order >= 0
  }
}

/** What `x = <command>` keeps: a JSON answer as data (for `from !x bring ...`), a text answer as the text AnyLog stores. */
function assignedValue (output: CommandOutput): unknown {
  return output.contentType === 'json' ? output.value : output.text
}

/** A bare `!x` in the REPL shows the value. */
function showValue (value: unknown): CommandOutput {
  return typeof value === 'string' ? textOutput(value) : value === undefined ? EMPTY_OUTPUT : jsonOutput(value)
}
