import type { LedgerOp } from '../ledger/entry.js'
import type { Service } from './service.js'

/** An outbox insert the master refused for good, as `get status` shows it. */
export interface OutboxDrop { id: string, type: string, code: string, message: string, at: Date }

/**
 * What a replica's master said of its key: it refuses it (not admitted, or revoked: since
 * `at`, at `source`; `joinError` when its JOIN_TOKEN was refused too), or it serves it (a
 * sync worked). Undefined until the master has answered once.
 */
export type AdmissionState = { admitted: false, source: string, at: Date, joinError?: string } | { admitted: true }

/** How far a replica is behind its sync source. */
export interface SyncLag { seq: number, seconds: number | undefined }

/**
 * The node's "Blockchain Sync" process, whichever role runs it. A replica's (Replicator)
 * keeps its copy of the ledger current and drains the outbox of inserts made while the master
 * was away; the master's (BlockchainSync) has nothing to pull, so it answers with undefined
 * for the replica's figures, and has no outbox.
 */
export interface ReplicaSync extends Service {
  /** true when this node keeps a replica of the master's ledger; false on the master */
  readonly keepsReplica: boolean
  /** entries and seconds behind the source (undefined on the master, which is the source) */
  readonly lag: SyncLag | undefined
  /** when a pull found the replica diverged and rebuilt it, from which seq to which */
  readonly recovered?: { from: number, to: number, at: Date }
  /** whether the master serves this node's key (a replica), undefined before its first answer and on the master */
  readonly admission?: AdmissionState
  /** inserts waiting in the outbox for the master, as last counted */
  readonly outboxSize: number | undefined
  /** outbox inserts the master refused for good since start, and the last one */
  readonly outboxDropped: number | undefined
  readonly lastOutboxDrop?: OutboxDrop
  /** Puts an insert in the durable outbox and shows it locally as `"ledger": "local"`. */
  keepLocal: (op: LedgerOp) => Promise<void>
  /** One pull from the sync source now (`blockchain seed from`); nothing on the master. */
  pullOnce: () => Promise<void>
  /** Re-submits what the outbox holds, if it holds anything and is not backing off. */
  flushOutbox: () => Promise<void>
  /** a light worker's (LEDGER_MODE=light): what it holds, and the answers it refused */
  readonly light?: { policies: number, checkpoint_size: number, complete: boolean, root_key: string | null, master_keys: string[], refused: number, last_refusal: { source: string, reason: string, at: Date } | null, witnessed: { size: number, cosigners: number, quorum: number } | null }
}
