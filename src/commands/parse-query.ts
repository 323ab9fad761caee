import type { BringFormat, BringItem, CompareOp, Condition, GetQuery } from './ast.js'
import type { CommandSpec } from './catalog.js'
import { Cursor, type Token, describe, expectPunct, tokenValue, wordValue } from './lexer.js'

/** How deep conditions and blocks may nest. */
export const MAX_DEPTH = 64
const BRING_FORMATS: readonly string[] = ['count', 'unique', 'json', 'table', 'first', 'recent', 'ip_port']

function isBringWord (token: Token | undefined): boolean {
  return token?.kind === 'word' && /^bring(\.|$)/i.test(token.text)
}

/** `blockchain get`: `<type>` or `(t1, t2)`, then `where <condition>`, then `bring... <items>`. */
export function parseQuery (cursor: Cursor, spec: CommandSpec): GetQuery {
  const src = cursor.src
  const types: string[] = []
  const typeTokens: Token[] = []
  if (cursor.peekChar() === '(') {
    cursor.next()
    for (;;) {
      const type = cursor.next()
      if (type?.kind !== 'word') throw src.error(type?.pos.offset ?? cursor.end, `${spec.name}: expected a policy type, found ${describe(type)}`)
      types.push(type.text)
      typeTokens.push(type)
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
    typeTokens.push(type)
  }
  const query: GetQuery = { types }
  if (typeTokens.some(t => /^[!$]/.test(t.text))) query.typeValues = typeTokens.map(t => wordValue(t.text, t.pos))
  if (cursor.acceptWord('where')) query.where = parseCondOr(cursor, spec, 0)
  const bring = parseBring(cursor, spec)
  if (bring !== undefined) query.bring = bring
  else if (!cursor.atEnd()) {
    throw src.error(cursor.offset, `${spec.name}: expected 'where', 'bring' or the end of the command, found ${describe(cursor.peek())}`)
  }
  return query
}

/** `bring[.format] <items>` when the cursor stands on it; undefined otherwise. */
export function parseBring (cursor: Cursor, spec: CommandSpec): GetQuery['bring'] {
  const bring = cursor.peek()
  if (!isBringWord(bring)) return undefined
  cursor.offset = bring!.end
  const suffix = bring!.text.slice('bring'.length).replace(/^\./, '').toLowerCase()
  if (suffix !== '' && !BRING_FORMATS.includes(suffix)) {
    throw cursor.src.error(bring!.pos.offset, `${spec.name}: unknown bring format '.${suffix}'; use one of ${BRING_FORMATS.map(f => '.' + f).join(' ')}`)
  }
  return { format: (suffix === '' ? 'default' : suffix) as BringFormat, ...parseBringItems(cursor, spec) }
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
      // `[type][field]` is one path; `[*] [*][name]` (a space between) is two
      let j = afterType
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
