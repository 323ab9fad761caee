import { LedgerMeshError } from '../base/errors.js'
import type { CommandStatement, IfStatement, InvalidStatement, Statement } from './ast.js'
import { Cursor, Source } from './lexer.js'
import { MAX_DEPTH } from './parse-query.js'
import { parseIfHead, parseStatement } from './statement-parser.js'

/** A logical line of the script: [start, end) offsets, comments stripped; `<...>` and open JSON span lines. */
interface Line { start: number, end: number }

/** `:name:` (text after the second colon is ignored); a line starting with `:` without one is skipped, as AnyLog skips it. */
const LABEL = /^:([^:\s]+):/
const BLOCK_OPENER = /^(if\b.*|\}?\s*else\s*)\{$/i

/**
 * Parses a script into statements, line by line as AnyLog reads it: a line that does not
 * parse becomes an `invalid` statement (it fails when it runs, and `on error` decides what
 * follows), so one bad line never stops the others from parsing. Pure: nothing runs here.
 * Only a broken block structure (`{` without `}`) fails the whole script.
 */
export function parseScriptLines (text: string, opts: { source?: string } = {}): Statement[] {
  const src = new Source(text, opts.source)
  // Control characters (other than tab, CR and LF) are never part of a command: they come
  // from binary pasted or sent by mistake, and would otherwise end up inside a value.
  const control = CONTROL_CHARACTER.exec(text)
  if (control !== null) {
    throw src.error(control.index, `control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in a command`)
  }
  return new ScriptParser(src, logicalLines(src)).block(0)
}

/**
 * Parses text and throws the first error (LedgerMeshError `bad_command` or
 * `unknown_command`, naming the line and column): what the REPL and REST want, where
 * nothing should run when any part is wrong.
 */
export function parseScript (text: string, opts: { source?: string } = {}): Statement[] {
  const statements = parseScriptLines(text, opts)
  const invalid = firstInvalid(statements)
  if (invalid !== undefined) throw invalid.error
  return statements
}

/** Distinct command texts whose parse is kept (REST clients send the same few commands over and over). */
const PARSED_KEPT = 512
/** Longer texts are parsed each time (a script, a policy): they seldom repeat. */
const PARSED_MAX_TEXT = 1024
const parsed = new Map<string, readonly Statement[]>()
/**
 * Hashes of the last PARSED_KEPT texts seen once, oldest first, in a ring: a text is kept only
 * when it comes again. Queries that name a different value each time (`where name = X`) would
 * otherwise fill the cache with parses used once, each living long enough to be copied out of
 * V8's young generation: 0.8 MB promoted per scavenge in a query benchmark, and scavenges of
 * 2.5-4 ms. Numbers, not the texts, so remembering costs no allocation.
 */
const seenOnce = new Set<number>()
const seenRing = new Int32Array(PARSED_KEPT)
let seenNext = 0

/**
 * parseScript, remembered for each distinct short text seen twice (the least recently used
 * forgotten past PARSED_KEPT). The statements are frozen: nothing that runs them may change them.
 */
export function parseScriptCached (text: string, opts: { source?: string } = {}): readonly Statement[] {
  if (text.length > PARSED_MAX_TEXT) return parseScript(text, opts)
  const key = `${opts.source ?? ''}\0${text}`
  const known = parsed.get(key)
  if (known !== undefined) {
    parsed.delete(key)
    parsed.set(key, known)
    return known
  }
  const hash = textHash(key)
  if (!seenOnce.has(hash)) {
    seenOnce.delete(seenRing[seenNext]!)
    seenRing[seenNext] = hash
    seenNext = (seenNext + 1) % PARSED_KEPT
    seenOnce.add(hash)
    return parseScript(text, opts)
  }
  const statements = deepFreeze(parseScript(text, opts))
  if (parsed.size >= PARSED_KEPT) parsed.delete(parsed.keys().next().value!)
  parsed.set(key, statements)
  return statements
}

/** FNV-1a over the UTF-16 code units, as a small integer (a collision only caches a text early). */
function textHash (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 2
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** Every line that does not parse, in order, nested blocks included. */
export function invalidStatements (statements: readonly Statement[]): InvalidStatement[] {
  const found: InvalidStatement[] = []
  forEachStatement(statements, s => { if (s.kind === 'invalid') found.push(s) })
  return found
}

/** Calls `fn` on every statement in order, those inside an `if` and a `do`/`else` line too. */
export function forEachStatement (statements: readonly Statement[], fn: (statement: Statement) => void): void {
  for (const s of statements) {
    fn(s)
    if (s.kind === 'if') { forEachStatement(s.then, fn); forEachStatement(s.else ?? [], fn) } else if (s.kind === 'do' || s.kind === 'else') forEachStatement([s.body], fn)
  }
}

function firstInvalid (statements: readonly Statement[]): InvalidStatement | undefined {
  return invalidStatements(statements)[0]
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

/**
 * Physical lines, comments cut, joined into logical ones: a line starting with `<` runs to
 * the line ending with `>`, and a line whose JSON brackets are still open runs on until they
 * close (AnyLog joins both the same way).
 */
function logicalLines (src: Source): Line[] {
  const physical: Line[] = []
  const text = src.text
  let start = 0
  for (let i = 0; i <= text.length; i++) {
    if (i === text.length || text[i] === '\n') {
      physical.push({ start, end: commentStart(text, start, i) })
      start = i + 1
    }
  }
  const lines: Line[] = []
  for (let i = 0; i < physical.length; i++) {
    const line = physical[i]
    const trimmed = text.slice(line.start, line.end).trim()
    if (trimmed.startsWith('<')) {
      lines.push(line)
      continue
    }
    // a block's `{` (`if ... {`, `} else {`) is not JSON: its lines are read one by one
    let depth = BLOCK_OPENER.test(trimmed) ? 0 : bracketDepth(text, line.start, line.end)
    let end = line.end
    while (depth > 0 && i + 1 < physical.length && !text.slice(physical[i + 1].start, physical[i + 1].end).trim().startsWith('<')) {
      i++
      depth += bracketDepth(text, physical[i].start, physical[i].end)
      end = physical[i].end
    }
    lines.push({ start: line.start, end })
  }
  return lines
}

/** How many `{`/`[` a line leaves open (outside double-quoted strings). */
function bracketDepth (text: string, start: number, end: number): number {
  let depth = 0
  let quoted = false
  for (let i = start; i < end; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '\\') i++
      else if (c === '"') quoted = false
    } else if (c === '"') quoted = true
    else if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
  }
  return depth
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
      const label = LABEL.exec(trimmed)
      if (label === null && trimmed.startsWith(':')) {
        this.index++
      } else if (label !== null) {
        this.index++
        statements.push(depth === 0
          ? { kind: 'label', name: label[1], pos: this.src.pos(lead) }
          : this.invalid(this.src.error(lead, `label ':${label[1]}:' inside a block: labels stand at a script's top level`), lead, line.end))
      } else if (trimmed.startsWith('<')) {
        statements.push(this.angleStatement(lead))
      } else if (/^if\b/i.test(trimmed) && /\{\s*$/.test(trimmed)) {
        statements.push(this.blockIf(lead, line.end, depth))
      } else {
        this.index++
        statements.push(this.statement(lead, line.end))
      }
    }
    if (depth > 0) throw this.src.error(openedAt, "unclosed block: expected a line with '}' for the '{'")
    return statements
  }

  /** One statement, or the reason it does not parse. */
  private statement (start: number, end: number): Statement {
    try {
      return parseStatement(this.src, start, end)
    } catch (err) {
      if (err instanceof LedgerMeshError && (err.code === 'bad_command' || err.code === 'unknown_command')) return this.invalid(err, start, end)
      throw err
    }
  }

  private invalid (error: LedgerMeshError, start: number, end: number): Statement {
    return { kind: 'invalid', error, text: this.src.text.slice(start, end).trim(), pos: this.src.pos(start) }
  }

  /** `<name = {...}>` or `< command >`, possibly over several lines, closed by a line ending in `>`. */
  private angleStatement (open: number): Statement {
    for (let j = this.index; j < this.lines.length; j++) {
      const text = this.lineText(this.lines[j]).trimEnd()
      if (text.endsWith('>') && !(j === this.index && text.trim() === '<')) {
        const close = this.lines[j].start + text.length - 1
        this.index = j + 1
        if (close <= open + 1) return this.invalid(this.src.error(open, "empty '< >' statement"), open, close + 1)
        return this.statement(open + 1, close)
      }
    }
    const line = this.lines[this.index]
    this.index = this.lines.length
    return this.invalid(this.src.error(open, "unclosed '<': expected a line ending with '>'"), open, line.end)
  }

  /** `if cond then {` ... `}` [`else {` ... `}`]: ledgermesh's block form. */
  private blockIf (start: number, lineEnd: number, depth: number): Statement {
    const brace = this.src.text.lastIndexOf('{', lineEnd)
    let condition: IfStatement['condition'] | undefined
    let error: LedgerMeshError | undefined
    try {
      condition = parseIfHead(new Cursor(this.src, start, brace)).condition
    } catch (err) {
      if (!(err instanceof LedgerMeshError)) throw err
      error = err
    }
    const pos = this.src.pos(start)
    this.index++ // past the `if ... {` line
    const then = this.block(depth + 1, brace)
    let elseBranch: Statement[] | undefined
    // `} else {` closes the then-block on the same line; `else {` may also start the next line.
    const closing = this.lines[this.index]
    const next = this.lines[this.index + 1]
    if (/^\}\s*else\s*\{$/i.test(this.lineText(closing).trim())) {
      this.index++
      elseBranch = this.block(depth + 1, closing.start + this.lineText(closing).lastIndexOf('{'))
    } else if (next !== undefined && /^else\s*\{$/i.test(this.lineText(next).trim())) {
      this.index += 2
      elseBranch = this.block(depth + 1, next.start + this.lineText(next).lastIndexOf('{'))
    }
    this.index++ // past the closing '}'
    // a condition that does not parse makes the whole block one invalid statement
    if (condition === undefined) return this.invalid(error!, start, lineEnd)
    return { kind: 'if', condition, then, ...(elseBranch !== undefined ? { else: elseBranch } : {}), pos }
  }
}
