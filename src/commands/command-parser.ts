import type {
  BringFormat, BringItem, CommandStatement, CompareOp, Condition, GetQuery, ValueNode, WherePair
} from './ast.js'
import { COMMANDS, type CommandSpec } from './catalog.js'
import { Cursor, Source, type Token, tokenValue } from './lexer.js'

/**
 * One command's grammar: its name matched against the catalog, then its arguments as the
 * catalog says (none, `where` pairs, a value, the rest of the line, or a `blockchain get`
 * query with its conditions and `bring` items). The script's structure (lines, blocks, `if`)
 * is parser.ts's job.
 */

export const MAX_DEPTH = 64
export const MAX_COMMAND_WORDS = Math.max(...COMMANDS.map(c => c.name.split(' ').length))
const BRING_FORMATS: readonly string[] = ['count', 'unique', 'json', 'table', 'first', 'recent', 'ip_port']

export function expectPunct (cursor: Cursor, punct: string, message: string): void {
  const token = cursor.next()
  if (token?.text !== punct || (token.kind !== 'punct')) throw cursor.src.error(token?.pos.offset ?? cursor.end, `${message}, found ${describe(token)}`)
}

export function describe (token: Token | undefined): string {
  return token === undefined ? 'the end of the line' : `'${token.text.slice(0, 40)}'`
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

function isBringWord (token: Token | undefined): boolean {
  return token?.kind === 'word' && /^bring(\.|$)/i.test(token.text)
}

function parseQuery (cursor: Cursor, spec: CommandSpec): GetQuery {
  const src = cursor.src
  const types: string[] = []
  if (cursor.peekChar() === '(') {
    cursor.next()
    for (;;) {
      const type = cursor.next()
      if (type?.kind !== 'word') throw src.error(type?.pos.offset ?? cursor.end, `${spec.name}: expected a policy type, found ${describe(type)}`)
      types.push(type.text)
      const sep = cursor.next()
      if (sep?.text === ')') break
      if (sep?.text !== ',') throw src.error(sep?.pos.offset ?? cursor.end, `${spec.name}: expected ',' or ')' in the type list, found ${describe(sep)}`)
    }
  } else {
    const type = cursor.peek()
    if (type?.kind !== 'word' || ['where', 'bring'].includes(type.text.toLowerCase()) || isBringWord(type)) {
      throw src.error(type?.pos.offset ?? cursor.end, `${spec.name}: expected a policy type, found ${describe(type)}`)
    }
    cursor.offset = type.end
    types.push(type.text)
  }
  const query: GetQuery = { types }
  if (cursor.acceptWord('where')) query.where = parseCondOr(cursor, spec, 0)
  const bring = cursor.peek()
  if (isBringWord(bring)) {
    cursor.offset = bring!.end
    const suffix = bring!.text.slice('bring'.length).replace(/^\./, '').toLowerCase()
    if (suffix !== '' && !BRING_FORMATS.includes(suffix)) {
      throw src.error(bring!.pos.offset, `${spec.name}: unknown bring format '.${suffix}'; use one of ${BRING_FORMATS.map(f => '.' + f).join(' ')}`)
    }
    query.bring = { format: (suffix === '' ? 'default' : suffix) as BringFormat, ...parseBringItems(cursor, spec) }
  } else if (!cursor.atEnd()) {
    throw src.error(cursor.offset, `${spec.name}: expected 'where', 'bring' or the end of the command, found ${describe(cursor.peek())}`)
  }
  return query
}

function parseCondOr (cursor: Cursor, spec: CommandSpec, depth: number): Condition {
  const terms = [parseCondAnd(cursor, spec, depth)]
  while (cursor.acceptWord('or')) terms.push(parseCondAnd(cursor, spec, depth))
  return terms.length === 1 ? terms[0] : { kind: 'or', terms }
}

function parseCondAnd (cursor: Cursor, spec: CommandSpec, depth: number): Condition {
  const terms = [parseCondPrimary(cursor, spec, depth)]
  while (cursor.acceptWord('and')) terms.push(parseCondPrimary(cursor, spec, depth))
  return terms.length === 1 ? terms[0] : { kind: 'and', terms }
}

function parseCondPrimary (cursor: Cursor, spec: CommandSpec, depth: number): Condition {
  const src = cursor.src
  if (depth > MAX_DEPTH) throw src.error(cursor.offset, `${spec.name}: conditions nest deeper than ${MAX_DEPTH}`)
  const token = cursor.next()
  if (token?.kind === 'punct' && token.text === '(') {
    const inner = parseCondOr(cursor, spec, depth + 1)
    expectPunct(cursor, ')', `${spec.name}: expected ')'`)
    return inner
  }
  if (token?.kind !== 'word' || isBringWord(token)) throw src.error(token?.pos.offset ?? cursor.end, `${spec.name}: expected a field name in the where condition, found ${describe(token)}`)
  const op = cursor.next()
  if (op?.kind !== 'op') throw src.error(op?.pos.offset ?? cursor.end, `${spec.name}: expected a comparison (= != < <= > >=) after '${token.text}', found ${describe(op)}`)
  const value = cursor.next()
  if (value === undefined || value.kind === 'op' || value.kind === 'punct') throw src.error(value?.pos.offset ?? cursor.end, `${spec.name}: expected a value after '${token.text} ${op.text}', found ${describe(value)}`)
  return { kind: 'cmp', field: token.text, op: (op.text === '==' ? '=' : op.text) as CompareOp, value: tokenValue(value), pos: token.pos }
}

/** `[type][field]` paths, literal text between them, and `separator=<s>`. */
function parseBringItems (cursor: Cursor, spec: CommandSpec): { items: BringItem[], separator?: string } {
  const src = cursor.src
  const text = src.text
  const items: BringItem[] = []
  let separator: string | undefined
  let i = cursor.offset
  const end = cursor.end
  const bracket = (at: number): [string, number] => {
    const close = text.indexOf(']', at)
    if (close < 0 || close >= end) throw src.error(at, `${spec.name}: expected ']' to close the bring path`)
    return [text.slice(at + 1, close).trim(), close + 1]
  }
  while (i < end) {
    if (/\s/.test(text[i])) { i++; continue }
    if (text[i] === '[') {
      const [type, afterType] = bracket(i)
      let j = afterType
      while (j < end && text[j] === ' ') j++
      let field = ''
      if (text[j] === '[') [field, j] = bracket(j)
      if (type === '') throw src.error(i, `${spec.name}: expected a policy type (or *) in the bring path`)
      items.push({ kind: 'path', type, field })
      i = j
      continue
    }
    const sepMatch = /^separator\s*=\s*/i.exec(text.slice(i, end))
    if (sepMatch !== null) {
      const sub = new Cursor(src, i + sepMatch[0].length, end)
      if (sub.peekChar() === '"' || sub.peekChar() === "'") {
        separator = sub.next()!.text
      } else {
        sub.skipSpace()
        const startValue = sub.offset
        while (sub.offset < end && !/\s/.test(text[sub.offset])) sub.offset++
        separator = text.slice(startValue, sub.offset).replace(/\\n/g, '\n').replace(/\\t/g, '\t')
      }
      if (!sub.atEnd()) throw src.error(sub.offset, `${spec.name}: expected the end of the command after the separator, found ${describe(sub.peek())}`)
      i = end
      continue
    }
    if (text[i] === '"' || text[i] === "'") {
      const sub = new Cursor(src, i, end)
      items.push({ kind: 'literal', text: sub.next()!.text })
      i = sub.offset
      continue
    }
    let j = i
    while (j < end && !/\s/.test(text[j]) && text[j] !== '[') j++
    items.push({ kind: 'literal', text: text.slice(i, j) })
    i = j
  }
  cursor.offset = end
  return { items, ...(separator !== undefined ? { separator } : {}) }
}
