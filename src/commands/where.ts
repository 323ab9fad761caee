import { LedgerMeshError } from '../base/errors.js'
import { BIND_EXPECTED, parseBind, type Bind } from '../net/bind.js'
import type { CommandStatement } from './ast.js'
import { asText, type ExecContext } from './executor.js'

/**
 * The resolved `where` pairs of a command, with typed getters whose errors name the
 * command, the key and what was expected.
 */
export class WhereArgs {
  private readonly values = new Map<string, unknown>()

  constructor (private readonly cmd: CommandStatement, ctx: ExecContext) {
    for (const pair of cmd.where) {
      this.values.set(pair.key.toLowerCase(), ctx.executor.resolve(pair.value, ctx.vars))
    }
  }

  has (key: string): boolean { return this.values.has(key) }

  /** the raw resolved value (objects stay objects) */
  value (key: string): unknown { return this.values.get(key) }

  text (key: string): string | undefined {
    const v = this.values.get(key)
    return v === undefined ? undefined : asText(v).trim()
  }

  requireText (key: string): string {
    const v = this.text(key)
    if (v === undefined || v === '') throw this.error(`needs '${key}=<value>'`)
    return v
  }

  int (key: string, opts: { min?: number, max?: number } = {}): number | undefined {
    const v = this.text(key)
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
      throw this.error(`'${key}' must be an integer${opts.min !== undefined ? ` from ${opts.min}` : ''}${opts.max !== undefined ? ` to ${opts.max}` : ''}, found ${JSON.stringify(v)}`)
    }
    return n
  }

  /** One of `allowed` (case-insensitive, lowercased), or undefined when absent. */
  oneOf<T extends string> (key: string, allowed: readonly T[]): T | undefined {
    const v = this.text(key)?.toLowerCase()
    if (v === undefined) return undefined
    if ((allowed as readonly string[]).includes(v)) return v as T
    throw this.error(`'${key}' must be ${allowed.join(' or ')}, found ${JSON.stringify(v)}`)
  }

  bool (key: string): boolean | undefined {
    const v = this.text(key)?.toLowerCase()
    if (v === undefined) return undefined
    if (v === 'true' || v === 'false') return v === 'true'
    throw this.error(`'${key}' must be true or false, found ${JSON.stringify(v)}`)
  }

  /** AnyLog's `bind`: true or false (any case), or an IPv4 address (src/net/bind.ts). */
  bind (key: string): Bind | undefined {
    const v = this.text(key)
    if (v === undefined) return undefined
    const bind = parseBind(v)
    if (bind === undefined) throw this.error(`'${key}' must be ${BIND_EXPECTED}, found ${JSON.stringify(v)}`)
    return bind
  }

  error (problem: string): LedgerMeshError {
    return new LedgerMeshError('bad_command', `${this.cmd.name}: ${problem} (line ${this.cmd.pos.line})`, { line: this.cmd.pos.line, column: this.cmd.pos.column })
  }
}

/** `format=json` or `format=table` (the default); anything else is a bad_command. */
export const formatJson = (where: WhereArgs): boolean => where.oneOf('format', ['json', 'table']) === 'json'
