import { type ErrorCode, LedgerMeshError, errorMessage } from '../../base/errors.js'

/** HTTP status for each error code a command can fail with. */
const STATUS: Record<ErrorCode, number> = {
  bad_config: 400,
  bad_policy: 400,
  bad_signature: 400,
  duplicate_id: 409,
  unauthorized: 403,
  not_found: 404,
  bad_command: 400,
  unknown_command: 400,
  wrong_method: 400,
  chain_broken: 500,
  conflict: 409,
  store_unavailable: 503,
  master_unreachable: 503,
  bad_message: 400,
  timeout: 504,
  overloaded: 503,
  not_supported: 501,
  not_active: 503,
  fork_detected: 503,
  snapshot_refused: 502,
  compacted: 410,
  unreachable: 502,
  internal: 500
}

/**
 * AnyLog's numeric error codes and texts (`err_code`, `err_text`) as its open edition, EdgeLake,
 * returns them, for clients written against it.
 */
const ANYLOG_CODE: Partial<Record<ErrorCode, [number, string]>> = {
  wrong_method: [156, 'Wrong HTTP method used'],
  duplicate_id: [70, 'Duplicate blockchain object id'],
  bad_policy: [87, 'Wrong policy structure'],
  bad_command: [2, 'Error Command Structure'],
  unknown_command: [2, 'Error Command Structure']
}

export interface ErrorReply {
  error: ErrorCode
  message: string
  err_code?: number
  err_text?: string
  [detail: string]: unknown
}

/** The JSON body and status for any error thrown while serving a request. */
export function errorReply (err: unknown): { status: number, body: ErrorReply, headers: Record<string, string> } {
  if (!(err instanceof LedgerMeshError)) {
    return { status: 500, body: { error: 'internal', message: errorMessage(err) }, headers: {} }
  }
  const anylog = ANYLOG_CODE[err.code]
  const { line, column, key, id } = err.details
  return {
    status: STATUS[err.code],
    body: {
      error: err.code,
      message: err.message,
      ...(line !== undefined ? { line } : {}),
      ...(column !== undefined ? { column } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(id !== undefined ? { id } : {}),
      ...(anylog !== undefined ? { err_code: anylog[0], err_text: anylog[1] } : {})
    },
    // an overloaded node says when to come back (RFC 9110 Retry-After, in seconds)
    headers: err.code === 'overloaded' ? { 'Retry-After': String(retryAfterSeconds(err)) } : {}
  }
}

function retryAfterSeconds (err: LedgerMeshError): number {
  const seconds = err.details.retryAfterSeconds
  return typeof seconds === 'number' && seconds > 0 ? Math.ceil(seconds) : 1
}
