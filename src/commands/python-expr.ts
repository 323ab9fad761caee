import { LedgerMeshError } from '../base/errors.js'

/**
 * The Python AnyLog scripts evaluate with `x = python <expression>`: string expressions such
 * as `!version.split(" ")[0]` or `!ip.strip() + ":" + !port`. References (`!x`, `$X`) are
 * resolved by the caller; this evaluates a small, safe subset (strings, integers, lists,
 * indexing and slicing, `+`, a few str methods, len/str/int) and refuses anything else with
 * a `not_supported` error naming what it met. Nothing is executed.
 */
export type PyValue = string | number | boolean | PyValue[]

type Resolve = (ref: string) => unknown

const METHODS = ['split', 'rsplit', 'strip', 'lstrip', 'rstrip', 'lower', 'upper', 'title', 'replace', 'startswith', 'endswith', 'find', 'join', 'count', 'isdigit']
const FUNCTIONS = ['len', 'str', 'int', 'float']
const MAX_LENGTH = 4096

export function evalPython (source: string, resolve: Resolve): PyValue {
  if (source.length > MAX_LENGTH) throw unsupported(source, `an expression longer than ${MAX_LENGTH} characters`)
  const parser = new PyParser(source, resolve)
  const value = parser.expression()
  parser.skip()
  if (!parser.done()) throw unsupported(source, `'${source.slice(parser.at, parser.at + 20)}'`)
  return value
}

function unsupported (source: string, what: string): LedgerMeshError {
  return new LedgerMeshError('not_supported', `python: ${what} in '${source.slice(0, 80)}' is beyond the string expressions ledgermesh evaluates (strings, integers, lists, [i], [a:b], +, ${METHODS.join('/')}(), ${FUNCTIONS.join('/')}())`)
}

class PyParser {
  at = 0
  private depth = 0

  constructor (private readonly src: string, private readonly resolve: Resolve) {}

  skip (): void { while (this.at < this.src.length && /\s/.test(this.src[this.at])) this.at++ }
  done (): boolean { return this.at >= this.src.length }
  private peek (): string { this.skip(); return this.src[this.at] ?? '' }
  private expect (c: string): void {
    if (this.peek() !== c) throw unsupported(this.src, `expected '${c}' at ${this.at + 1}`)
    this.at++
  }

  expression (): PyValue {
    if (++this.depth > 32) throw unsupported(this.src, 'nesting deeper than 32')
    let value = this.postfix()
    while (this.peek() === '+') {
      this.at++
      value = add(value, this.postfix(), this.src)
    }
    this.depth--
    return value
  }

  private postfix (): PyValue {
    let value = this.primary()
    for (;;) {
      const c = this.peek()
      if (c === '[') {
        this.at++
        value = this.index(value)
      } else if (c === '.' && /[A-Za-z_]/.test(this.src[this.at + 1] ?? '')) {
        this.at++
        const name = this.name()
        if (!METHODS.includes(name)) throw unsupported(this.src, `the method '${name}'`)
        value = callMethod(value, name, this.args(), this.src)
      } else {
        return value
      }
    }
  }

  private index (value: PyValue): PyValue {
    const start = this.peek() === ':' ? undefined : toInt(this.expression(), this.src)
    if (this.peek() === ':') {
      this.at++
      const end = this.peek() === ']' ? undefined : toInt(this.expression(), this.src)
      this.expect(']')
      if (typeof value !== 'string' && !Array.isArray(value)) throw unsupported(this.src, 'slicing a number')
      const len = value.length
      const from = start === undefined ? 0 : start < 0 ? Math.max(0, len + start) : start
      const to = end === undefined ? len : end < 0 ? Math.max(0, len + end) : end
      return value.slice(from, to)
    }
    this.expect(']')
    if (typeof value !== 'string' && !Array.isArray(value)) throw unsupported(this.src, 'indexing a number')
    const i = start! < 0 ? value.length + start! : start!
    if (i < 0 || i >= value.length) throw new LedgerMeshError('bad_command', `python: index ${start} out of range in '${this.src.slice(0, 80)}'`)
    return value[i]
  }

  private args (): PyValue[] {
    this.expect('(')
    return this.items(')')
  }

  /** Comma-separated expressions up to `close` (consumed). */
  private items (close: string): PyValue[] {
    const items: PyValue[] = []
    while (this.peek() !== close) {
      items.push(this.expression())
      if (this.peek() === ',') this.at++
      else break
    }
    this.expect(close)
    return items
  }

  private name (): string {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.at))
    if (match === null) throw unsupported(this.src, `'${this.src.slice(this.at, this.at + 10)}'`)
    this.at += match[0].length
    return match[0]
  }

  private primary (): PyValue {
    const c = this.peek()
    if (c === '"' || c === "'") return this.string(c)
    if (c === '(') { this.at++; const v = this.expression(); this.expect(')'); return v }
    if (c === '[') {
      this.at++
      return this.items(']')
    }
    if (c === '-' || /[0-9]/.test(c)) {
      const match = /^-?\d+/.exec(this.src.slice(this.at))
      if (match === null) throw unsupported(this.src, `'${c}'`)
      this.at += match[0].length
      return Number(match[0])
    }
    if (c === '!' || c === '$') {
      const match = (c === '!' ? /^![A-Za-z_][A-Za-z0-9_]*/ : /^\$[A-Za-z_][A-Za-z0-9_]*/).exec(this.src.slice(this.at))
      if (match === null) throw unsupported(this.src, `'${c}'`)
      this.at += match[0].length
      const value = this.resolve(match[0])
      if (value === undefined) throw new LedgerMeshError('bad_command', `python: ${match[0]} is not defined`)
      return toPy(value)
    }
    const name = this.name()
    if (name === 'True' || name === 'False') return name === 'True'
    if (!FUNCTIONS.includes(name)) throw unsupported(this.src, `'${name}'`)
    const [arg] = this.args()
    switch (name) {
      case 'len': if (typeof arg === 'string' || Array.isArray(arg)) return arg.length; throw unsupported(this.src, 'len() of a number')
      case 'str': return pyStr(arg)
      default: return toNumber(arg, name === 'int', this.src)
    }
  }

  private string (quote: string): string {
    let text = ''
    for (this.at++; this.at < this.src.length; this.at++) {
      const c = this.src[this.at]
      if (c === '\\') { text += this.src[++this.at] ?? ''; continue }
      if (c === quote) { this.at++; return text }
      text += c
    }
    throw unsupported(this.src, 'an unterminated string')
  }
}

function toPy (value: unknown): PyValue {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value
  if (Array.isArray(value)) return value.map(toPy)
  return JSON.stringify(value)
}

function pyStr (value: PyValue): string {
  if (typeof value === 'string') return value
  if (typeof value === 'boolean') return value ? 'True' : 'False'
  if (Array.isArray(value)) return `[${value.map(v => typeof v === 'string' ? `'${v}'` : pyStr(v)).join(', ')}]`
  return String(value)
}

function toInt (value: PyValue, src: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw unsupported(src, 'an index that is not an integer')
  return value
}

function toNumber (value: PyValue, integer: boolean, src: string): number {
  const n = typeof value === 'string' ? Number(value.trim()) : typeof value === 'number' ? value : NaN
  if (!Number.isFinite(n) || (integer && typeof value === 'string' && !/^\s*-?\d+\s*$/.test(value))) {
    throw new LedgerMeshError('bad_command', `python: ${integer ? 'int' : 'float'}() of ${JSON.stringify(value)} in '${src.slice(0, 80)}'`)
  }
  return integer ? Math.trunc(n) : n
}

function add (a: PyValue, b: PyValue, src: string): PyValue {
  if (typeof a === 'number' && typeof b === 'number') return a + b
  if (typeof a === 'string' && typeof b === 'string') return a + b
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b]
  throw new LedgerMeshError('bad_command', `python: cannot add ${typeof a} and ${typeof b} in '${src.slice(0, 80)}'`)
}

function callMethod (value: PyValue, name: string, args: PyValue[], src: string): PyValue {
  if (name === 'join') {
    if (typeof value !== 'string' || !Array.isArray(args[0])) throw unsupported(src, 'join() outside "sep".join(list)')
    return args[0].map(pyStr).join(value)
  }
  if (typeof value !== 'string') throw unsupported(src, `${name}() on a ${Array.isArray(value) ? 'list' : 'number'}`)
  const text = (i: number): string | undefined => args[i] === undefined ? undefined : pyStr(args[i])
  const chars = (c: string | undefined): RegExp => new RegExp(c === undefined ? '\\s' : `[${c.replace(/[\]\\^-]/g, '\\$&')}]`)
  const trim = (s: string, re: RegExp, left: boolean, right: boolean): string => {
    let from = 0
    let to = s.length
    while (left && from < to && re.test(s[from])) from++
    while (right && to > from && re.test(s[to - 1])) to--
    return s.slice(from, to)
  }
  switch (name) {
    case 'split':
    case 'rsplit': {
      const sep = text(0)
      const max = args[1] === undefined ? -1 : toInt(args[1], src)
      const parts = sep === undefined ? value.trim().split(/\s+/).filter(p => p !== '') : value.split(sep)
      if (max < 0 || parts.length <= max + 1) return parts
      return name === 'split'
        ? [...parts.slice(0, max), parts.slice(max).join(sep ?? ' ')]
        : [parts.slice(0, parts.length - max).join(sep ?? ' '), ...parts.slice(parts.length - max)]
    }
    case 'strip': return trim(value, chars(text(0)), true, true)
    case 'lstrip': return trim(value, chars(text(0)), true, false)
    case 'rstrip': return trim(value, chars(text(0)), false, true)
    case 'lower': return value.toLowerCase()
    case 'upper': return value.toUpperCase()
    case 'title': return value.toLowerCase().replace(/\b[a-z]/g, c => c.toUpperCase())
    case 'replace': return value.split(text(0) ?? '').join(text(1) ?? '')
    case 'startswith': return value.startsWith(text(0) ?? '')
    case 'endswith': return value.endsWith(text(0) ?? '')
    case 'find': return value.indexOf(text(0) ?? '')
    case 'count': return value.split(text(0) ?? '').length - 1
    default: return /^\d+$/.test(value)
  }
}
