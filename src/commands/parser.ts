import type { AssignStatement, CommandStatement, IfCondition, IfStatement, Statement, ValueNode, WherePair } from './ast.js'
import { COMMANDS, type CommandSpec } from './catalog.js'
import { Cursor, Source, type Token, describe, expectPunct, jsonValue, tokenValue, wordValue } from './lexer.js'
import { MAX_DEPTH, parseQuery } from './parse-query.js'
const MAX_COMMAND_WORDS = Math.max(...COMMANDS.map(c => c.name.split(' ').length))
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_.]*)\s*=(?!=)/

/** A physical line of the script: [start, end) offsets, comment stripped. */
interface Line { start: number, end: number }

/**
 * Parses a script in the command language into statements. Pure: nothing runs here.
 * Throws LedgerMeshError `bad_command` (or `unknown_command`) naming the line and column.
 */
export function parseScript (text: string, opts: { source?: string } = {}): Statement[] {
  const src = new Source(text, opts.source)
  // Control characters (other than tab, CR and LF) are never part of a command: they come
  // from binary pasted or sent by mistake, and would otherwise end up inside a value.
  const control = CONTROL_CHARACTER.exec(text)
  if (control !== null) {
    throw src.error(control.index, `control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in a command`)
  }
  const parser = new ScriptParser(src, splitLines(src))
  return parser.block(0)
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

/** Parses exactly one command (as REST and `ledgermesh cmd` send it). */
export function parseCommandLine (text: string): CommandStatement {
  const statements = parseScript(text)
  if (statements.length !== 1 || statements[0].kind !== 'command') {
    throw new Source(text).error(0, 'expected exactly one command')
  }
  return statements[0]
}

function splitLines (src: Source): Line[] {
  const lines: Line[] = []
  let start = 0
  const text = src.text
  for (let i = 0; i <= text.length; i++) {
    if (i === text.length || text[i] === '\n') {
      lines.push({ start, end: commentStart(text, start, i) })
      start = i + 1
    }
  }
  return lines
}

/** Where a `#` comment starts on a line: at the line's start or after a space, outside quotes and JSON. */
function commentStart (text: string, start: number, end: number): number {
  let quote: string | undefined
  let depth = 0
  for (let i = start; i < end; i++) {
    const c = text[i]
    if (quote !== undefined) {
      if (c === '\\') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
    else if (c === '#' && depth <= 0 && (i === start || /\s/.test(text[i - 1]))) return i
  }
  return end
}

class ScriptParser {
  private index = 0

  constructor (private readonly src: Source, private readonly lines: Line[]) {}

  private lineText (line: Line): string { return this.src.text.slice(line.start, line.end) }

  /** Statements until the end of the script, or (inside a block) a line starting with `}`. */
  block (depth: number, openedAt = 0): Statement[] {
    if (depth > MAX_DEPTH) throw this.src.error(this.lines[this.index]?.start ?? 0, `blocks nest deeper than ${MAX_DEPTH}`)
    const statements: Statement[] = []
    while (this.index < this.lines.length) {
      const line = this.lines[this.index]
      const trimmed = this.lineText(line).trim()
      if (trimmed === '') { this.index++; continue }
      if (trimmed.startsWith('}')) {
        if (depth === 0) throw this.src.error(line.start + this.lineText(line).indexOf('}'), "unexpected '}' outside a block")
        return statements
      }
      const lead = line.start + this.lineText(line).search(/\S/)
      if (trimmed.startsWith('<')) {
        statements.push(this.angleStatement(lead))
      } else if (/^if\b/i.test(trimmed)) {
        statements.push(this.ifStatement(lead, line.end, depth))
      } else {
        this.index++
        statements.push(parseStatement(this.src, lead, line.end))
      }
    }
    if (depth > 0) throw this.src.error(openedAt, "unclosed block: expected a line with '}' for the '{'")
    return statements
  }

  /** `<name = {...}>` or `< command >`, possibly over several lines, closed by a line ending in `>`. */
  private angleStatement (open: number): Statement {
    for (let j = this.index; j < this.lines.length; j++) {
      const text = this.lineText(this.lines[j]).trimEnd()
      if (text.endsWith('>') && !(j === this.index && text.trim() === '<')) {
        const close = this.lines[j].start + text.length - 1
        this.index = j + 1
        if (close <= open + 1) throw this.src.error(open, "empty '< >' statement")
        return parseStatement(this.src, open + 1, close)
      }
    }
    throw this.src.error(open, "unclosed '<': expected a line ending with '>'")
  }

  private ifStatement (start: number, lineEnd: number, depth: number): IfStatement {
    const cursor = new Cursor(this.src, start, lineEnd)
    cursor.acceptWord('if')
    const pos = this.src.pos(start)
    let condition: IfCondition
    if (cursor.peekChar() === '(') {
      cursor.next()
      condition = parseIfOr(cursor, 0)
      expectPunct(cursor, ')', 'if: expected \')\' to close the condition')
    } else {
      condition = parseIfOr(cursor, 0)
    }
    cursor.acceptWord('then')
    const thenBranch = this.branch(cursor, depth, 'if')
    let elseBranch: Statement[] | undefined
    // `} else {` closes the then-block on the same line; `else` may also start the next line.
    const next = this.lines[this.index]
    if (next !== undefined) {
      const text = this.lineText(next)
      const match = /^\s*(\}\s*)?else\b/i.exec(text)
      if (match !== null && (thenBranch.block || match[1] === undefined)) {
        const elseCursor = new Cursor(this.src, next.start + match[0].length, next.end)
        const parsed = this.branch(elseCursor, depth, 'else')
        elseBranch = parsed.statements
        if (parsed.block) this.index++ // the closing '}'
      } else if (thenBranch.block) {
        this.index++ // the closing '}'
      }
    }
    return { kind: 'if', condition, then: thenBranch.statements, ...(elseBranch !== undefined ? { else: elseBranch } : {}), pos }
  }

  /** After `then`/`else`: `{` opens a block running to its `}` line; anything else is one statement. */
  private branch (cursor: Cursor, depth: number, what: string): { statements: Statement[], block: boolean } {
    if (cursor.peekChar() === '{') {
      const brace = cursor.offset
      cursor.offset++
      if (!cursor.atEnd()) throw this.src.error(cursor.offset, `${what}: expected the block to start on the next line after '{'`)
      this.index++
      if (this.index >= this.lines.length) throw this.src.error(brace, "unclosed block: expected '}'")
      const statements = this.block(depth + 1, brace)
      if (this.index >= this.lines.length) throw this.src.error(brace, "unclosed block: expected '}'")
      return { statements, block: true }
    }
    if (cursor.atEnd()) throw this.src.error(cursor.offset, `${what}: expected a statement or '{'`)
    this.index++
    return { statements: [parseStatement(this.src, cursor.offset, cursor.end)], block: false }
  }
}

/** One statement in [start, end): an assignment, a bare value or a command. */
function parseStatement (src: Source, start: number, end: number): Statement {
  const cursor = new Cursor(src, start, end)
  cursor.skipSpace()
  const text = src.text.slice(cursor.offset, end)
  const assign = ASSIGNMENT.exec(text)
  if (assign !== null) return parseAssignment(src, cursor.offset, end, assign)
  const first = cursor.peek()
  if (first?.kind === 'word' && /^[!$]/.test(first.text)) {
    cursor.next()
    if (cursor.atEnd()) return { kind: 'value', value: tokenValue(first), pos: first.pos }
    cursor.offset = start
  }
  return parseCommand(src, new Cursor(src, start, end))
}

function parseAssignment (src: Source, start: number, end: number, match: RegExpExecArray): AssignStatement {
  const pos = src.pos(start)
  const valueStart = start + match[0].length
  const cursor = new Cursor(src, valueStart, end)
  const rest = cursor.rest()
  const words = rest.split(/\s+/).slice(0, MAX_COMMAND_WORDS).map(w => w.toLowerCase())
  if (COMMANDS.some(spec => spec.name.split(' ').every((w, i) => words[i] === w))) {
    return { kind: 'assign', name: match[1], value: parseCommand(src, cursor), pos }
  }
  cursor.skipSpace()
  const at = cursor.offset
  let value: ValueNode
  if (rest === '') {
    value = { kind: 'literal', text: '', pos: src.pos(at) }
  } else if (rest.startsWith('{') || rest.startsWith('[') || rest.startsWith('"') || rest.startsWith("'")) {
    const token = cursor.next()!
    if (!cursor.atEnd()) throw src.error(cursor.offset, `${match[1]} = ...: unexpected text after the value`)
    value = token.kind === 'json' ? jsonValue(token.text, token.pos) : tokenValue(token)
  } else {
    // AnyLog assigns the rest of the line, spaces included: `sync_time = 30 second`.
    value = wordValue(rest, src.pos(at))
  }
  return { kind: 'assign', name: match[1], value, pos }
}

/** Matches the longest run of leading words against the catalog, then reads the arguments. */
function parseCommand (src: Source, cursor: Cursor): CommandStatement {
  cursor.skipSpace()
  const start = cursor.offset
  const words: Array<Token & { kind: 'word' }> = []
  while (words.length < MAX_COMMAND_WORDS) {
    const token = cursor.peek()
    if (token?.kind !== 'word') break
    words.push(token)
    cursor.offset = token.end
  }
  let spec: CommandSpec | undefined
  let used = 0
  for (let n = words.length; n > 0 && spec === undefined; n--) {
    const name = words.slice(0, n).map(w => w.text.toLowerCase()).join(' ')
    spec = COMMANDS.find(c => c.name === name)
    used = n
  }
  if (spec === undefined) {
    const shown = src.text.slice(start, cursor.end).trim().split(/\s+/).slice(0, 3).join(' ')
    throw src.error(start, `unknown command '${shown.slice(0, 60)}'; try 'help'`, 'unknown_command')
  }
  cursor.offset = used === 0 ? start : words[used - 1].end
  const cmd: CommandStatement = { kind: 'command', name: spec.name, where: [], text: src.text.slice(start, cursor.end).trim(), pos: src.pos(start) }
  const fail = (at: number, expected: string, found?: Token): never => {
    throw src.error(at, `${spec.name}: expected ${expected}, found ${describe(found)}`)
  }
  switch (spec.grammar) {
    case 'none':
      if (!cursor.atEnd()) fail(cursor.offset, 'nothing more', cursor.peek())
      break
    case 'where':
      cmd.where = parseWhere(cursor, spec)
      break
    case 'value':
    case 'value-where': {
      const token = cursor.next()
      if (token === undefined || token.kind === 'op' || token.kind === 'punct') fail(token?.pos.offset ?? cursor.end, 'a value', token)
      cmd.value = tokenValue(token!)
      if (spec.grammar === 'value-where') cmd.where = parseWhere(cursor, spec)
      else if (!cursor.atEnd()) fail(cursor.offset, 'nothing more after the value', cursor.peek())
      break
    }
    case 'rest': {
      const values: ValueNode[] = []
      for (let token = cursor.next(); token !== undefined; token = cursor.next()) {
        values.push(token.kind === 'op' || token.kind === 'punct' ? { kind: 'literal', text: token.text, pos: token.pos } : tokenValue(token))
      }
      cmd.rest = values
      break
    }
    case 'query':
      cmd.query = parseQuery(cursor, spec)
      break
  }
  return cmd
}

/** `where k = v and k2 = v2`; a value runs to the next `and` (multi-word values joined by spaces). */
function parseWhere (cursor: Cursor, spec: CommandSpec): WherePair[] {
  const src = cursor.src
  if (cursor.atEnd()) return []
  if (!cursor.acceptWord('where')) throw src.error(cursor.offset, `${spec.name}: expected 'where' or the end of the command, found ${describe(cursor.peek())}`)
  const pairs: WherePair[] = []
  for (;;) {
    const key = cursor.next()
    if (key?.kind !== 'word') throw src.error(key?.pos.offset ?? cursor.end, `${spec.name}: expected a key after 'where'/'and', found ${describe(key)}`)
    const eq = cursor.next()
    if (eq?.kind !== 'op' || eq.text !== '=') throw src.error(eq?.pos.offset ?? cursor.end, `${spec.name}: expected '=' after '${key.text}', found ${describe(eq)}`)
    const tokens: Token[] = []
    for (let next = cursor.peek(); next !== undefined && !(next.kind === 'word' && next.text.toLowerCase() === 'and'); next = cursor.peek()) {
      tokens.push(next)
      cursor.offset = next.end
    }
    if (tokens.length === 0) throw src.error(cursor.offset, `${spec.name}: expected a value for '${key.text}', found ${describe(cursor.peek())}`)
    pairs.push({ key: key.text.toLowerCase(), value: joinTokens(tokens), pos: key.pos })
    if (!cursor.acceptWord('and')) break
  }
  return pairs
}

function joinTokens (tokens: Token[]): ValueNode {
  if (tokens.length === 1) return tokenValue(tokens[0])
  const parts: ValueNode[] = []
  tokens.forEach((token, i) => {
    if (i > 0) parts.push({ kind: 'literal', text: ' ', pos: token.pos })
    parts.push(token.kind === 'op' || token.kind === 'punct' ? { kind: 'literal', text: token.text, pos: token.pos } : tokenValue(token))
  })
  return { kind: 'concat', parts, pos: tokens[0].pos }
}

/** `if` conditions: comparisons, `is [not]`, `not`, `and`, `or`, parentheses, bare values. */
function parseIfOr (cursor: Cursor, depth: number): IfCondition {
  const terms = [parseIfAnd(cursor, depth)]
  while (cursor.acceptWord('or')) terms.push(parseIfAnd(cursor, depth))
  return terms.length === 1 ? terms[0] : { kind: 'or', terms }
}

function parseIfAnd (cursor: Cursor, depth: number): IfCondition {
  const terms = [parseIfPrimary(cursor, depth)]
  while (cursor.acceptWord('and')) terms.push(parseIfPrimary(cursor, depth))
  return terms.length === 1 ? terms[0] : { kind: 'and', terms }
}

function parseIfPrimary (cursor: Cursor, depth: number): IfCondition {
  const src = cursor.src
  if (depth > MAX_DEPTH) throw src.error(cursor.offset, `if: conditions nest deeper than ${MAX_DEPTH}`)
  if (cursor.acceptWord('not')) return { kind: 'not', term: parseIfPrimary(cursor, depth + 1) }
  if (cursor.peekChar() === '(') {
    cursor.next()
    const inner = parseIfOr(cursor, depth + 1)
    expectPunct(cursor, ')', "if: expected ')'")
    return inner
  }
  if (cursor.peekChar() === '{') throw src.error(cursor.offset, 'if: expected a condition before \'{\'')
  const left = cursor.next()
  if (left === undefined || left.kind === 'op' || left.kind === 'punct') throw src.error(left?.pos.offset ?? cursor.end, `if: expected a value in the condition, found ${describe(left)}`)
  const leftValue = tokenValue(left)
  if (cursor.acceptWord('is')) {
    const op = cursor.acceptWord('not') ? 'is not' : 'is'
    const right = cursor.next()
    if (right === undefined || right.kind === 'op' || right.kind === 'punct') throw src.error(right?.pos.offset ?? cursor.end, `if: expected a value after '${op}', found ${describe(right)}`)
    return { kind: 'cmp', left: leftValue, op, right: tokenValue(right) }
  }
  const op = cursor.peek()
  if (op?.kind === 'op') {
    cursor.offset = op.end
    const right = cursor.next()
    if (right === undefined || right.kind === 'op' || right.kind === 'punct') throw src.error(right?.pos.offset ?? cursor.end, `if: expected a value after '${op.text}', found ${describe(right)}`)
    return { kind: 'cmp', left: leftValue, op: op.text, right: tokenValue(right) }
  }
  return { kind: 'truthy', value: leftValue }
}
