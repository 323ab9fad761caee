import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { PG, sqlState } from './pg-schema.js'
import { describePgCause } from './pg-primary.js'

/** What a PostgreSQL store's error names: where it is, and the timeouts it runs with. */
export interface PgErrorContext {
  location: string
  /** host:port[,host:port...]/database, for an outage's message */
  server: string
  lockTimeoutMs: number
  statementTimeoutMs: number
  /** every failure is an outage (connecting, opening) */
  outage?: boolean
}

/**
 * A failure of `what` as the store reports it: a duplicate policy_id is the caller's problem,
 * a timeout says which wait ran out, anything else is an outage (store_unavailable). A
 * LedgerMeshError passes unchanged.
 */
export function translatePgError (what: string, err: unknown, ctx: PgErrorContext): LedgerMeshError {
  if (err instanceof LedgerMeshError) return err
  const state = sqlState(err)
  if (ctx.outage !== true) {
    if (state === PG.lockNotAvailable || state === PG.queryCanceled || /query read timeout/i.test(errorMessage(err))) {
      const waited = state === PG.lockNotAvailable
        ? `waited more than ${ctx.lockTimeoutMs} ms for the ledger lock (another transaction holds it)`
        : `took more than ${ctx.statementTimeoutMs} ms`
      return new LedgerMeshError('timeout', `postgres store ${ctx.location}: could not ${what}: it ${waited}`, { location: ctx.location, ...(state === undefined ? {} : { causeCode: state }) })
    }
    if (state === PG.uniqueViolation) {
      const constraint = (err as { constraint?: string }).constraint ?? ''
      const detail = (err as { detail?: string }).detail ?? ''
      const id = /\(policy_id\)=\((.*)\)/.exec(detail)?.[1]
      if (constraint.includes('policy_id') || id !== undefined) {
        return new LedgerMeshError('duplicate_id', `policy ${id ?? '(unknown id)'} is already in the ledger`, { id })
      }
      return new LedgerMeshError('conflict', `postgres store ${ctx.location}: ${what} collided with another writer: ${errorMessage(err)}`)
    }
  }
  return new LedgerMeshError(
    'store_unavailable',
    `postgres store ${ctx.server}: could not ${what}: ${describePgCause(err)}`,
    { location: ctx.location, cause: errorMessage(err), ...(state === undefined ? {} : { causeCode: state }) }
  )
}
