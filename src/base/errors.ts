/**
 * Errors that reach a user (REPL, REST, a peer) carry a stable machine-readable code and a
 * message that names the problem. Anything that is not a `LedgerMeshError` is a bug and is
 * reported as `internal`.
 */
export type ErrorCode =
  | 'bad_config'
  | 'bad_policy'
  | 'bad_signature'
  | 'duplicate_id'
  | 'unauthorized'
  | 'not_found'
  | 'bad_command'
  | 'unknown_command'
  | 'wrong_method'
  | 'chain_broken'
  | 'conflict'
  | 'store_unavailable'
  | 'master_unreachable'
  | 'bad_message'
  | 'timeout'
  | 'overloaded'
  | 'not_supported'
  | 'not_active'
  /** the node was shown two checkpoints no one history holds, and stopped following the log */
  | 'fork_detected'
  /** a snapshot (manifest or chunk) that does not hold what its checkpoint commits to */
  | 'snapshot_refused'
  /** what was asked for is below this node's compaction point (or its snapshot's): take a snapshot */
  | 'compacted'
  | 'unreachable'
  | 'internal'

export class LedgerMeshError extends Error {
  readonly code: ErrorCode
  /** Extra facts for logs and JSON errors (the key, the position, the policy id...). */
  readonly details: Record<string, unknown>

  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'LedgerMeshError'
    this.code = code
    this.details = details
  }
}

export function isLedgerMeshError (err: unknown): err is LedgerMeshError {
  return err instanceof LedgerMeshError
}

/** The message of any thrown value, for logs and error replies. */
export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Codes that refuse one policy for good: sending the same policy again can only get the same
 * answer (it is malformed, badly signed, not allowed, or clashes with what the ledger holds).
 * Every other code (the master unreachable, slow, overloaded or its store failing) is
 * transient: the same insert may succeed later, so a durable outbox keeps it.
 */
const DEFINITIVE_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'bad_policy', 'bad_signature', 'unauthorized', 'conflict', 'not_found', 'bad_message'
])

export function isDefinitiveRefusal (err: unknown): boolean {
  return err instanceof LedgerMeshError && DEFINITIVE_REFUSALS.has(err.code)
}

/** Any thrown value as an Error (a stream's abort wants one). */
export function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
