import { LedgerMeshError } from '../base/errors.js'
import type { Cast, JsonRef, Position, ValueNode } from './ast.js'

/**
 * A cursor over one script's text with AnyLog's token rules. The parser pulls tokens from
 * it on demand, because what a character means depends on where it stands (`[` starts a
 * JSON array in a value but a path in `bring`; `<` compares in a condition but opens a
 * multi-line statement at the start of a line).
 */
export type Token =
  | { kind: 'word', text: string, pos: Position, end: number }
  | { kind: 'string', text: string, pos: Position, end: number }
  | { kind: 'json', text: string, pos: Position, end: number }
  | { kind: 'op', text: '=' | '==' | '!=' | '<' | '<=' | '>' | '>=', pos: Position, end: number }
  | { kind: 'punct', text: '(' | ')' | ',' | '{' | '}', pos: Position, end: number }

const CASTS: readonly string[] = ['int', 'float', 'str', 'bool', 'json', 'list', 'name', 'len']
const WORD_STOP = new Set([' ', '\t', '\r', '\n', '=', '(', ')', ',', '<', '>', '"', "'"])

export class Source {
  private readonly lineStarts: number[] = [0]

  constructor (readonly text: string, readonly name?: string) {
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.lineStarts.push(i + 1)
  }

  pos (offset: number): Position {
    let lo = 0
    let hi = this.lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.lineStarts[mid] <= offset) lo = mid
      else hi = mid - 1
    }
    return { offset, line: lo + 1, column: offset - this.lineStarts[lo] + 1 }
  }

  error (offset: number, message: string, code: 'bad_command' | 'unknown_command' = 'bad_command'): LedgerMeshError {
    const p = this.pos(offset)
    return new LedgerMeshError(code, `${message} at line ${p.line}, column ${p.column}${this.name !== undefined ? ` of ${this.name}` : ''}`, { line: p.line, column: p.column, source: this.name })
  }
}

export class Cursor {
  offset: number

  constructor (readonly src: Source, readonly start: number, readonly end: number) {
    this.offset = start
  }

  skipSpace (): void {
    while (this.offset < this.end && /\s/.test(this.src.text[this.offset])) this.offset++
  }

  atEnd (): boolean {
    this.skipSpace()
    return this.offset >= this.end
  }

  peekChar (): string {
    this.skipSpace()
    return this.offset < this.end ? this.src.text[this.offset] : ''
  }

  /** The rest of the statement, trimmed. */
  rest (): string {
    return this.src.text.slice(this.offset, this.end).trim()
  }

  /** The next token without consuming it; undefined at the end or where no token can start. */
  peek (): Token | undefined {
    const at = this.offset
    try {
      return this.next()
    } catch {
      return undefined
    } finally {
      this.offset = at
    }
  }

  /** true (and consumes it) when the next token is this word, case-insensitive */
  acceptWord (word: string): boolean {
    const token = this.peek()
    if (token?.kind === 'word' && token.text.toLowerCase() === word) { this.offset = token.end; return true }
    return false
  }

  next (): Token | undefined {
    this.skipSpace()
    if (this.offset >= this.end) return undefined
    const text = this.src.text
    const start = this.offset
    const pos = this.src.pos(start)
    const c = text[start]
    if ((c === '=' || c === '!' || c === '<' || c === '>') && text[start + 1] === '=') {
      this.offset += 2
      return { kind: 'op', text: `${c}=`, pos, end: this.offset }
    }
    if (c === '=' || c === '<' || c === '>') {
      this.offset++
      return { kind: 'op', text: c, pos, end: this.offset }
    }
    if (c === '(' || c === ')' || c === ',' || c === '}') {
      this.offset++
      return { kind: 'punct', text: c, pos, end: this.offset }
    }
    if (c === '"' || c === "'") return this.readString(c)
    if (c === '{' || c === '[') return this.readJson()
    // compared a character at a time: a two-character slice for every character of every word
    // was garbage that each request left behind
    while (this.offset < this.end && !WORD_STOP.has(text[this.offset]) && !(text[this.offset] === '!' && text[this.offset + 1] === '=')) this.offset++
    if (this.offset === start) {
      this.offset++
      throw this.src.error(start, `unexpected character ${JSON.stringify(c)}`)
    }
    return { kind: 'word', text: text.slice(start, this.offset), pos, end: this.offset }
  }

  private readString (quote: string): Token {
    const text = this.src.text
    const start = this.offset
    let value = ''
    this.offset++
    while (this.offset < this.end) {
      const c = text[this.offset++]
      if (c === quote) return { kind: 'string', text: value, pos: this.src.pos(start), end: this.offset }
      if (c === '\\' && this.offset < this.end) {
        const e = text[this.offset++]
        value += e === 'n' ? '\n' : e === 't' ? '\t' : e
      } else {
        value += c
      }
    }
    throw this.src.error(start, 'unterminated string: expected a closing ' + quote)
  }

  /** A balanced JSON object or array; strings inside may hold brackets. */
  private readJson (): Token {
    const text = this.src.text
    const start = this.offset
    let depth = 0
    let quote = false
    for (; this.offset < this.end; this.offset++) {
      const c = text[this.offset]
      if (quote) {
        if (c === '\\') this.offset++
        else if (c === '"') quote = false
        continue
      }
      if (c === '"') quote = true
      else if (c === '{' || c === '[') depth++
      else if (c === '}' || c === ']') {
        depth--
        if (depth === 0) {
          this.offset++
          return { kind: 'json', text: text.slice(start, this.offset), pos: this.src.pos(start), end: this.offset }
        }
      }
    }
    throw this.src.error(start, `unbalanced JSON value: expected a closing ${text[start] === '{' ? '}' : ']'}`)
  }
}

/** Reads a reference at `i` in `text` (`!name.cast` or `$NAME.cast`); undefined when there is none. */
export function readRef (text: string, i: number): { ref: JsonRef['ref'], end: number } | undefined {
  const sigil = text[i]
  if (sigil !== '!' && sigil !== '$') return undefined
  const match = (sigil === '!' ? /^[A-Za-z_][A-Za-z0-9_.]*/ : /^[A-Za-z_][A-Za-z0-9_]*(\.[a-z]+\b)?/).exec(text.slice(i + 1))
  if (match === null) return undefined
  let name = match[0].replace(/\.+$/, '')
  let cast: Cast | undefined
  const dot = name.lastIndexOf('.')
  if (dot > 0 && CASTS.includes(name.slice(dot + 1))) {
    cast = name.slice(dot + 1) as Cast
    name = name.slice(0, dot)
  } else if (sigil === '$' && dot > 0) {
    name = name.slice(0, dot) // `$HOME.txt`: the reference is $HOME
  }
  const end = i + 1 + name.length + (cast !== undefined ? cast.length + 1 : 0)
  return { ref: { kind: sigil === '!' ? 'var' : 'env', name, ...(cast !== undefined ? { cast } : {}) }, end }
}

/** A word as a value: literal text, one reference, or a concatenation of both. */
export function wordValue (text: string, pos: Position): ValueNode {
  const parts: ValueNode[] = []
  let literal = ''
  for (let i = 0; i < text.length;) {
    const ref = readRef(text, i)
    if (ref === undefined) { literal += text[i++]; continue }
    if (literal !== '') { parts.push({ kind: 'literal', text: literal, pos }); literal = '' }
    parts.push({ kind: ref.ref.kind, name: ref.ref.name, ...(ref.ref.cast !== undefined ? { cast: ref.ref.cast } : {}), pos })
    i = ref.end
  }
  if (literal !== '') parts.push({ kind: 'literal', text: literal, pos })
  if (parts.length === 0) return { kind: 'literal', text: '', pos }
  return parts.length === 1 ? parts[0] : { kind: 'concat', parts, pos }
}

/** A JSON template: its exact source and the references in it. */
export function jsonValue (source: string, pos: Position): ValueNode {
  const refs: JsonRef[] = []
  let inString = false
  for (let i = 0; i < source.length; i++) {
    const c = source[i]
    if (inString && c === '\\') { i++; continue }
    if (c === '"') { inString = !inString; continue }
    const ref = readRef(source, i)
    if (ref !== undefined) {
      refs.push({ start: i, end: ref.end, ref: ref.ref, inString })
      i = ref.end - 1
    }
  }
  return { kind: 'json', source, refs, pos }
}

export function tokenValue (token: Token): ValueNode {
  switch (token.kind) {
    case 'string': return { kind: 'literal', text: token.text, pos: token.pos }
    case 'json': return jsonValue(token.text, token.pos)
    default: return wordValue(token.text, token.pos)
  }
}

/** The next token must be `punct`; otherwise `message`, and what was found instead. */
export function expectPunct (cursor: Cursor, punct: string, message: string): void {
  const token = cursor.next()
  if (token?.text !== punct || (token.kind !== 'punct')) throw cursor.src.error(token?.pos.offset ?? cursor.end, `${message}, found ${describe(token)}`)
}

/** A token as error messages quote it. */
export function describe (token: Token | undefined): string {
  return token === undefined ? 'the end of the line' : `'${token.text.slice(0, 40)}'`
}
