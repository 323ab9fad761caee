import { LedgerMeshError } from '../base/errors.js'
import type { AssignStatement, CommandStatement, IfCondition, IfStatement, Statement, ValueNode, WherePair } from './ast.js'
import { type CommandSpec, anylogCommandHead, knownCommands } from './catalog.js'
import { Cursor, type Source, type Token, describe, expectPunct, jsonValue, tokenValue, wordValue } from './lexer.js'
import { MAX_DEPTH, parseBring, parseQuery } from './parse-query.js'

const COMMANDS = knownCommands()
/** Each command's name as words, split once (an assignment checks whether its value starts with one) */
const COMMAND_WORDS = COMMANDS.map(c => c.name.split(' '))
const MAX_COMMAND_WORDS = Math.max(...COMMAND_WORDS.map(words => words.length))
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_.]*)\s*=(?!=)/
/** `set x = 5` is AnyLog's other way to write `x = 5`. */
const SET_ASSIGNMENT = /^set\s+([A-Za-z_][A-Za-z0-9_.]*)\s*=(?!=)/i
const LABEL_NAME = /^[A-Za-z0-9_.-]+$/

/** The shape a `text` command's line must have, checked when it is parsed (so `ledgermesh check` sees it). */
const TEXT_SHAPES: Record<string, { pattern: RegExp, expected: string }> = {
  'set policy': { pattern: /^[A-Za-z_][A-Za-z0-9_]*\s*(\[[^\]]*\]\s*)+=/, expected: "'<var> [key][key]... = <value>'" },
  'trace level': { pattern: /^=\s*\S+/, expected: "'= <level>'" },
  'info table': { pattern: /^\S+\s+\S+\s+exists$/i, expected: "'<dbms> <table> exists'" }
}

/**
 * One statement in [start, end) of the source: an `if`, a `do`/`else` line, a jump or an
 * `on error`, an assignment, a bare value or a command. Nested statements (`if ... then
 * <statement>`, `do <statement>`) come back here, `depth` deep.
 */
export function parseStatement (src: Source, start: number, end: number, depth = 0): Statement {
  if (depth > MAX_DEPTH) throw src.error(start, `statements nest deeper than ${MAX_DEPTH}`)
  const cursor = new Cursor(src, start, end)
  cursor.skipSpace()
  const at = cursor.offset
  const text = src.text.slice(at, end).trim()
  const pos = src.pos(at)
  const first = /^\S+/.exec(text)?.[0].toLowerCase() ?? ''
  switch (first) {
    case 'if': return parseInlineIf(cursor, depth)
    case 'do':
    case 'else': {
      cursor.offset = at + first.length
      if (cursor.atEnd()) throw src.error(cursor.offset, `${first}: expected a statement after '${first}'`)
      return { kind: first, body: parseBody(src, cursor.offset, end, depth + 1), pos }
    }
    case 'goto':
    case 'call': {
      const label = text.slice(first.length).trim()
      if (!LABEL_NAME.test(label)) throw src.error(at, `${first}: expected one label name, found '${label.slice(0, 40)}'`)
      return { kind: 'jump', op: first, label, pos }
    }
    case 'return':
      if (text.toLowerCase() !== 'return') throw src.error(at + first.length, 'return: expected nothing more')
      return { kind: 'jump', op: 'return', pos }
  }
  const words = text.toLowerCase().split(/\s+/)
  if (words[0] === 'end' && words[1] === 'script') return endOfLine(src, cursor, 2, { kind: 'jump', op: 'end script', pos })
  if (words[0] === 'exit' && words[1] === 'scripts') return endOfLine(src, cursor, 2, { kind: 'jump', op: 'exit scripts', pos })
  if (words[0] === 'on' && words[1] === 'error') return parseOnError(src, at, words, pos)
  const set = SET_ASSIGNMENT.exec(text)
  if (set !== null) return parseAssignment(src, at, end, set, set[1])
  const assign = ASSIGNMENT.exec(text)
  if (assign !== null) return parseAssignment(src, at, end, assign, assign[1])
  // `!a + " " + !b` on its own shows the joined text, as AnyLog does
  if (/^[!$]/.test(text)) {
    const joined = plusValue(src, at, text)
    if (joined !== undefined) return { kind: 'value', value: joined, pos }
  }
  const token = cursor.peek()
  if (token?.kind === 'word' && /^[!$]/.test(token.text)) {
    cursor.offset = token.end
    if (cursor.atEnd()) return { kind: 'value', value: tokenValue(token), pos: token.pos }
  }
  return parseCommand(src, new Cursor(src, at, end))
}

/** A statement of `words` words must end there. */
function endOfLine<T extends Statement> (src: Source, cursor: Cursor, words: number, statement: T): T {
  for (let i = 0; i < words; i++) cursor.next()
  if (!cursor.atEnd()) throw src.error(cursor.offset, `${statement.kind === 'jump' ? statement.op : statement.kind}: expected nothing more, found ${describe(cursor.peek())}`)
  return statement
}

function parseOnError (src: Source, at: number, words: string[], pos: Statement['pos']): Statement {
  const [mode, label, extra] = words.slice(2)
  if (mode === 'ignore' && label === undefined) return { kind: 'on error', mode: 'ignore', pos }
  if (mode === 'end' && label === 'script' && extra === undefined) return { kind: 'on error', mode: 'end script', pos }
  if ((mode === 'goto' || mode === 'call') && label !== undefined && extra === undefined) {
    const original = src.text.slice(at).split(/\s+/)[3]
    return { kind: 'on error', mode, label: original, pos }
  }
  throw src.error(at, 'on error: expected `ignore`, `goto <label>`, `call <label>` or `end script`')
}

/**
 * The start of an `if`: its condition and, when there is one, the offset just past `then`
 * (undefined for `if cond` alone). Parentheses around the condition are optional.
 */
export function parseIfHead (cursor: Cursor): { condition: IfCondition, thenAt?: number } {
  cursor.acceptWord('if')
  const condition = parseIfOr(cursor, 0)
  if (cursor.atEnd()) return { condition }
  if (!cursor.acceptWord('then')) throw cursor.src.error(cursor.offset, `if: expected 'then' after the condition, found ${describe(cursor.peek())}`)
  return { condition, thenAt: cursor.offset }
}

/** `if cond`, `if cond then` (the `do` lines after it run on its result) or `if cond then <statement>`. */
function parseInlineIf (cursor: Cursor, depth: number): IfStatement {
  const src = cursor.src
  const pos = src.pos(cursor.offset)
  const { condition, thenAt } = parseIfHead(cursor)
  if (thenAt === undefined) return { kind: 'if', condition, then: [], showsResult: true, pos }
  if (cursor.atEnd()) return { kind: 'if', condition, then: [], pos }
  if (cursor.peekChar() === '{') throw src.error(cursor.offset, "if: a block's '{' ends its line, and the block's lines follow it")
  return { kind: 'if', condition, then: [parseBody(src, cursor.offset, cursor.end, depth + 1)], pos }
}

/**
 * The statement after `then`, `do` or `else`. One that does not parse fails only when it
 * runs, as in AnyLog, which reads it only when the condition holds: `if !x == publisher
 * then edgelake-error` is harmless on every other node (`ledgermesh check` still reports it).
 */
function parseBody (src: Source, start: number, end: number, depth: number): Statement {
  try {
    return parseStatement(src, start, end, depth)
  } catch (err) {
    if (!(err instanceof LedgerMeshError) || (err.code !== 'bad_command' && err.code !== 'unknown_command') || depth > MAX_DEPTH) throw err
    return { kind: 'invalid', error: err, text: src.text.slice(start, end).trim(), pos: src.pos(start) }
  }
}

function parseAssignment (src: Source, start: number, end: number, match: RegExpExecArray, name: string): AssignStatement {
  const pos = src.pos(start)
  const valueStart = start + match[0].length
  const cursor = new Cursor(src, valueStart, end)
  const rest = cursor.rest()
  const words = rest.split(/\s+/).slice(0, MAX_COMMAND_WORDS).map(w => w.toLowerCase())
  if (words[0] === 'if') {
    const test = parseInlineIf(cursor, 0)
    if (test.showsResult !== true) throw src.error(valueStart, `${name} = if ...: expected a condition alone (no 'then'): its result, true or false, is assigned`)
    return { kind: 'assign', name, value: test, pos }
  }
  // a command of ours, or one of AnyLog's that ledgermesh does not run (an error naming it,
  // not text: AnyLog would run it); a single word stays a value (`mode = debug`)
  const rhsWords = rest.split(/\s+/).length
  if (COMMAND_WORDS.some(name => name.every((w, i) => words[i] === w)) ||
      (rhsWords > 1 && anylogCommandHead(words, rhsWords + 2) !== undefined)) {
    return { kind: 'assign', name, value: parseCommand(src, cursor), pos }
  }
  cursor.skipSpace()
  const at = cursor.offset
  let value: ValueNode
  if (rest === '') {
    value = { kind: 'literal', text: '', pos: src.pos(at) }
  } else if (rest.startsWith('{') || rest.startsWith('[') || rest.startsWith('"') || rest.startsWith("'")) {
    const token = cursor.next()!
    if (!cursor.atEnd()) throw src.error(cursor.offset, `${name} = ...: unexpected text after the value`)
    value = token.kind === 'json' ? jsonValue(token.text, token.pos) : tokenValue(token)
  } else {
    // AnyLog assigns the rest of the line, spaces included (`sync_time = 30 second`), unless
    // its second word is `+`: then the words are joined (`!a + " " + !b`).
    value = plusValue(src, at, rest) ?? wordValue(rest, src.pos(at))
  }
  return { kind: 'assign', name, value, pos }
}

/** `a + b + c`: values and `+` strictly alternating; quoted parts are literal text. */
function plusValue (src: Source, at: number, rest: string): ValueNode | undefined {
  const words = rest.match(/"[^"]*"|'[^']*'|\S+/g) ?? []
  if (words[1] !== '+') return undefined
  const pos = src.pos(at)
  const parts: ValueNode[] = []
  for (const [i, word] of words.entries()) {
    if ((i % 2 === 1) !== (word === '+')) {
      throw src.error(at + rest.indexOf(word), `expected values joined by ' + ' (a + b + c), found '${word}'`)
    }
    if (i % 2 === 1) continue
    parts.push(/^(["']).*\1$/.test(word) ? { kind: 'literal', text: word.slice(1, -1), pos } : wordValue(word, pos))
  }
  if (words.length % 2 === 0) throw src.error(at + rest.length, "expected a value after the last '+'")
  return { kind: 'plus', parts, pos }
}

/** Matches the longest run of leading words against the catalog, then reads the arguments. */
export function parseCommand (src: Source, cursor: Cursor): CommandStatement {
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
    const shownWords = src.text.slice(start, cursor.end).trim().split(/\s+/)
    const shown = shownWords.slice(0, 3).join(' ').slice(0, 60)
    const anylog = anylogCommandHead(shownWords.map(w => w.toLowerCase()), shownWords.length)
    if (anylog === undefined) throw src.error(start, `unknown command '${shown}'; try 'help'`, 'unknown_command')
    const err = src.error(start, `'${shown}' is an AnyLog command that ledgermesh does not run (AnyLog's '${anylog}' commands); try 'help'`, 'unknown_command')
    err.details.anylog_command = anylog
    throw err
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
    case 'policy-template': {
      const type = cursor.next()
      if (type?.kind !== 'word' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(type.text)) fail(type?.pos.offset ?? cursor.end, 'a policy type (letters, digits and _)', type)
      cmd.value = { kind: 'literal', text: type!.text.toLowerCase(), pos: type!.pos }
      if (cursor.acceptWord('with')) {
        if (!cursor.acceptWord('defaults')) fail(cursor.offset, "'defaults' after 'with'", cursor.peek())
        cmd.withDefaults = true
      }
      cmd.where = parseWhere(cursor, spec)
      break
    }
    case 'value-bring': {
      const token = cursor.next()
      if (token === undefined || token.kind === 'op' || token.kind === 'punct') fail(token?.pos.offset ?? cursor.end, 'a value', token)
      cmd.value = tokenValue(token!)
      const bring = parseBring(cursor, spec)
      if (bring === undefined) fail(cursor.offset, "'bring' and what to bring", cursor.peek())
      cmd.query = { types: [], bring }
      break
    }
    case 'text': {
      cmd.raw = cursor.rest()
      const shape = TEXT_SHAPES[spec.name]
      if (shape !== undefined && !shape.pattern.test(cmd.raw)) fail(cursor.offset, shape.expected, cursor.peek())
      cursor.offset = cursor.end
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

/**
 * `if` conditions: comparisons, `is [not]`, `not`, `and`, `or`, parentheses, bare values.
 * AnyLog gives `and` and `or` no precedence: without parentheses a chain reads from the
 * right, `A and B or C` as `A and (B or C)`, and ledgermesh reads it the same way. With
 * parentheses in the chain, `and` binds tighter than `or`, as usual.
 */
function parseIfOr (cursor: Cursor, depth: number): IfCondition {
  let grouped = cursor.peekChar() === '('
  const terms = [parseIfPrimary(cursor, depth)]
  const ops: Array<'and' | 'or'> = []
  for (;;) {
    const op = cursor.acceptWord('and') ? 'and' : cursor.acceptWord('or') ? 'or' : undefined
    if (op === undefined) break
    ops.push(op)
    grouped ||= cursor.peekChar() === '('
    terms.push(parseIfPrimary(cursor, depth))
  }
  if (terms.length === 1) return terms[0]
  if (!grouped) {
    // right to left: A op1 (B op2 (C ...))
    let folded = terms[terms.length - 1]
    for (let i = terms.length - 2; i >= 0; i--) folded = { kind: ops[i], terms: [terms[i], folded] }
    return folded
  }
  // `and` before `or`
  const ors: IfCondition[] = []
  let ands: IfCondition[] = [terms[0]]
  ops.forEach((op, i) => {
    if (op === 'and') ands.push(terms[i + 1])
    else { ors.push(ands.length === 1 ? ands[0] : { kind: 'and', terms: ands }); ands = [terms[i + 1]] }
  })
  ors.push(ands.length === 1 ? ands[0] : { kind: 'and', terms: ands })
  return ors.length === 1 ? ors[0] : { kind: 'or', terms: ors }
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
  for (const word of ['contains', 'startswith', 'endswith'] as const) {
    if (!cursor.acceptWord(word)) continue
    const right = cursor.next()
    if (right === undefined || right.kind === 'op' || right.kind === 'punct') throw src.error(right?.pos.offset ?? cursor.end, `if: expected a value after '${word}', found ${describe(right)}`)
    return { kind: 'cmp', left: leftValue, op: word, right: tokenValue(right) }
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
