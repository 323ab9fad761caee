import pg from 'pg'
import { LedgerMeshError } from '../base/errors.js'
import type { Entry } from './entry.js'
import type { Head, SignedHead } from './head.js'
import { INSERT_CHUNK, LEDGER_COLUMNS, type PgTables, ledgerRow } from './pg-schema.js'
import { opIds, tombstoneTarget } from './store-codec.js'

/**
 * The SQL text of a write: the entries' rows, the head's move and the tombstones' targets.
 *
 * A commit's last statement travels with its COMMIT in one simple-protocol message, so values
 * are written into the text as literals: every string through pg's escapeLiteral, every number
 * a checked safe integer, NULL as NULL. Nothing else from the entries ever reaches the SQL.
 */

/** A value as an SQL literal. A NUL would end the query text early on the server: refused. */
export function sqlLiteral (value: unknown): string {
  if (value === null) return 'NULL'
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new LedgerMeshError('internal', `not an integer for SQL: ${value}`)
    return String(value)
  }
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new LedgerMeshError('bad_policy', 'a value for the ledger table contains a NUL character')
    return pg.escapeLiteral(value)
  }
  throw new LedgerMeshError('internal', `no SQL literal for a ${typeof value}`)
}

/** `policy` is jsonb: a VALUES list read by INSERT … SELECT needs the cast. */
const COLUMN_CASTS: ReadonlyMap<string, string> = new Map([['policy', '::jsonb'], ['seq', '::bigint']])

function valuesRow (entry: Entry, id: string): string {
  const row = ledgerRow(entry, id)
  return `(${row.map((value, i) => sqlLiteral(value) + (COLUMN_CASTS.get(LEDGER_COLUMNS[i]) ?? '')).join(', ')})`
}

/**
 * The statements that write `entries` and move the head to `head` (signed as `signed`), in
 * order; the caller sends the last one together with COMMIT.
 *
 * With `checkIds` the first statement first looks for the batch's ids in the ledger (under
 * the row lock the caller holds, in a snapshot taken after it) and writes nothing when any is
 * there: it returns those ids (`policy_id` rows), and an empty result when it wrote. So a
 * batch of one chunk is refused or written, and committed, in one round trip.
 */
export function writeStatements (table: PgTables, entries: readonly Entry[], head: Head, signed: SignedHead, checkIds: boolean): string[] {
  const ids = opIds(entries)
  const chunks: string[][] = []
  for (let start = 0; start < entries.length; start += INSERT_CHUNK) {
    chunks.push(entries.slice(start, start + INSERT_CHUNK).map((entry, i) => valuesRow(entry, ids[start + i])))
  }
  const moveHead = `UPDATE ${table.head} SET seq = ${sqlLiteral(head.seq)}, hash = ${sqlLiteral(head.hash)}, ` +
    `signed_head = ${sqlLiteral(JSON.stringify(signed))}::jsonb WHERE id = 1`
  const columns = LEDGER_COLUMNS.join(', ')
  const statements = chunks.map((rows, index) => {
    const ctes: string[] = []
    const first = index === 0 && checkIds
    if (first) ctes.push(`present AS (SELECT policy_id FROM ${table.ledger} WHERE policy_id IN (${ids.map(sqlLiteral).join(', ')}))`)
    const gate = first ? ' WHERE NOT EXISTS (SELECT 1 FROM present)' : ''
    ctes.push(`written AS (INSERT INTO ${table.ledger} (${columns}) SELECT * FROM (VALUES ${rows.join(', ')}) AS v (${columns})${gate})`)
    if (index === chunks.length - 1) ctes.push(`moved AS (${moveHead}${first ? ' AND NOT EXISTS (SELECT 1 FROM present)' : ''})`)
    return `WITH ${ctes.join(', ')} ${first ? 'SELECT policy_id FROM present' : 'SELECT NULL::text AS policy_id WHERE false'}`
  })
  if (statements.length === 0) statements.push(moveHead)
  const targets = entries.filter((entry) => entry.op === 'delete').map((entry) => tombstoneTarget(entry.policy)).filter((id) => id !== undefined)
  // a separate statement: it must see the rows written above (a tombstone's target may be in this batch)
  if (targets.length > 0) statements.push(`UPDATE ${table.ledger} SET status = 'deleted' WHERE policy_id IN (${targets.map(sqlLiteral).join(', ')})`)
  return statements
}

/** The store's server-side limits, in milliseconds. */
export interface PgTimeouts { statementMs: number, lockMs: number, idleInTransactionMs: number }

/**
 * The limits as `SET LOCAL` statements, to open a message with: they hold until the transaction
 * ends, be it a BEGIN … COMMIT or the implicit one of a multi-statement message. Never session
 * settings nor startup parameters: PgBouncer in transaction pooling refuses startup parameters it
 * does not know, and hands the server connection to another client after each transaction.
 */
export function setLocalTimeouts (timeouts: PgTimeouts): string {
  const ms = (value: number) => sqlLiteral(Math.max(0, Math.ceil(value)))
  return `SET LOCAL statement_timeout = ${ms(timeouts.statementMs)}; SET LOCAL lock_timeout = ${ms(timeouts.lockMs)}; ` +
    `SET LOCAL idle_in_transaction_session_timeout = ${ms(timeouts.idleInTransactionMs)}`
}

/**
 * `text` (the store's own SQL) with its parameters $1, $2, … written in as literals, so that
 * it can share one simple-protocol message with setLocalTimeouts. Strings go through
 * sqlLiteral; a negative number is parenthesised (`- -1` must not become a `--` comment).
 */
export function withLiterals (text: string, values: readonly unknown[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const index = Number(n) - 1
    if (index >= values.length) throw new LedgerMeshError('internal', `no value for $${n} in ${text}`)
    const value = values[index]
    if (typeof value !== 'number' || !Number.isFinite(value)) return sqlLiteral(value ?? null)
    const literal = Number.isSafeInteger(value) ? sqlLiteral(value) : String(value)
    return value < 0 ? `(${literal})` : literal
  })
}
