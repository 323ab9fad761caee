/**
 * What a robustness run records, and what the checker reads: every client operation with its
 * invoke and complete times (as etcd's robustness tests and Jepsen record them), every node's
 * head as sampled, every profile process's run (from the runners' own records), the
 * revocations, the streams served, the texts nodes answered or logged, and the final ledger.
 * Times are milliseconds on the run's one monotonic clock.
 */

export interface Operation {
  /** which client issued it, and through which node */
  client: string
  node: string
  kind: 'insert' | 'delete' | 'read'
  invokeMs: number
  completeMs: number
  /** acknowledged (the node answered success) */
  ok: boolean
  /** insert: the policy id put; delete: the policy id deleted */
  id?: string
  /** read: the policy ids the answer held */
  sees?: string[]
  /** read: the policy ids it asked about (a query by name covers only that name's); absent: all */
  scope?: string[]
  /** the error or answer text, for the report */
  answer?: string
}

/** A node's head as sampled: seq, and the hash of its entry at that seq when known. */
export interface HeadSample { node: string, atMs: number, seq: number, hash?: string }

/** One process of a unit (a profile, or a sub-account on a slave) on one host, from the runner's own record. */
export interface ProcessRun { unit: string, host: string, startMs: number, stopMs?: number }

/** An entry of the final ledger, as the checker needs it. */
export interface FinalEntry {
  seq: number
  hash: string
  op: 'put' | 'delete'
  /** the policy id (for a delete: the tombstone's) */
  id: string
  type: string
  /** the signing key */
  author: string
  /** a delete: the policy id it removes */
  target?: string
  /** a revocation: the key it revokes */
  revokes?: string
}

/** A sync stream (or a run on it) served to a client key by a server, with the server's head then. */
export interface ServedStream { server: string, key: string, atMs: number, serverSeq: number }

/** Something a node showed: an answer body or a log line. */
export interface ShownText { where: string, text: string }

export interface History {
  operations: Operation[]
  heads: HeadSample[]
  runs: ProcessRun[]
  final: FinalEntry[]
  served?: ServedStream[]
  texts?: ShownText[]
  /** values that must never be shown (passwords, tokens, profile secrets) */
  secrets?: string[]
  /** each node's key: a node whose key is revoked must get nothing from its revocation on (its head never reaches it) */
  nodeKeys?: Record<string, string>
  /**
   * nodes whose ledger was wiped (a lost disk) and when: from then on such a node is a new
   * replica (it starts from a snapshot), so its head may start lower, and its reads need not
   * see what it acknowledged before
   */
  wipes?: Array<{ node: string, atMs: number }>
  /** when the last fault healed, and the sync interval: every replica must be at the final head within it after */
  healedAtMs?: number
  syncIntervalMs?: number
}

/** A broken guarantee, with the records that show it. */
export interface Violation {
  check: string
  message: string
  evidence: unknown[]
}
