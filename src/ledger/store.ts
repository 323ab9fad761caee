import type { Entry, LedgerOp } from './entry.js'
import type { Head, SignedHead, StateCommitment } from './head.js'

/**
 * Where a log that began at a snapshot begins: the checkpoint it was taken at (size `seq`), the
 * chain hash of that size's last entry, the log tree's compact range there (hex, largest
 * subtree first) and the state the snapshot's entries make. Below `seq` the store holds only
 * the entries that put the policies live at `seq`.
 */
export interface StoreBase {
  seq: number
  hash: string
  /** the compact range at `frontierSize` (default `seq`): the tree before the leaves the store keeps */
  frontier: string[]
  /** a compacted store keeps the leaf hashes of (frontierSize, seq] (see leafHashes) */
  frontierSize?: number
  /** the checkpoint note the snapshot was checked against */
  checkpoint: string
  state: StateCommitment
}

/** commit()'s signer: the head after the batch, and the batch's entries (for the Merkle root). */
export type SignCommit = (head: Head, entries: readonly Entry[]) => SignedHead

/**
 * Where a ledger's log lives. Two implementations: LevelDB (embedded, every node's default)
 * and PostgreSQL (the master's store when DB_TYPE=psql). The store keeps the log, the latest
 * signed head and a little metadata; the live state (policies and indexes) is a fold of the
 * log kept in memory by LedgerState.
 *
 * Every write is atomic: after a crash the store holds either all of a batch or none of it.
 */
export interface LedgerStore {
  readonly kind: 'level' | 'psql'
  /** Where the data is, for logs and status: a directory or a database URL without password. */
  readonly location: string

  /** Opens the store, creating its tables or directory (and database, for psql) when missing. */
  open (): Promise<void>
  close (): Promise<void>

  /** The last entry's seq and hash; `{ seq: 0, hash: GENESIS_HASH }` when empty. */
  head (): Promise<Head>
  /** The latest signed head stored with the entries, if any. */
  signedHead (): Promise<SignedHead | undefined>

  /**
   * The master's write path. Inside one transaction that serialises concurrent committers
   * (a mutex for level, a row lock for psql, so several masters can share one database):
   * reads the head, chains `ops` after it, stores the entries and the head signed by
   * `signHead`, and returns the entries. Throws LedgerMeshError('duplicate_id') and writes
   * nothing if a policy id in `ops` is already in the log, live or deleted (details.ids lists
   * every such id, so the caller can drop those ops and commit the rest). With `expected`, it
   * writes nothing and throws a `conflict` (isHeadMoved) unless the head it read under that
   * lock is `expected`: the head the caller checked the ops against.
   */
  commit (ops: LedgerOp[], signHead: SignCommit, expected?: Head): Promise<Entry[]>

  /**
   * The replica's write path: appends entries the caller has verified, with the signed head
   * that covers them, atomically. Throws LedgerMeshError('conflict') and writes nothing unless
   * entries[0] follows the stored head (seq + 1 and prev_hash).
   */
  append (entries: Entry[], head: SignedHead): Promise<void>

  /**
   * Entries with seq >= fromSeq, in order, at most `limit`. Below a base (see base()) only the
   * snapshot's entries are held, so there the seqs have gaps.
   */
  range (fromSeq: number, limit: number): Promise<Entry[]>

  /** The entries at these seqs, in the same order; not_found names a seq the store does not hold. */
  entriesAt (seqs: readonly number[]): Promise<Entry[]>

  /** The snapshot this store's log begins at, if it began at one. */
  base (): Promise<StoreBase | undefined>

  /**
   * Writes a verified snapshot into an empty store, atomically: its entries, the base and the
   * signed head at the base (whose `hash` is the base's). Throws `conflict` when the store
   * holds a log already, `not_supported` where snapshots are not kept (PostgreSQL: a master's).
   */
  installBase (base: StoreBase, entries: Entry[], signed: SignedHead, opts?: { replace?: boolean }): Promise<void>

  /**
   * Compaction: moves the base to `base.seq` (at or before the head), atomically dropping every
   * entry at or before it whose seq is not in `keep` (the entries live there) and keeping the
   * Merkle leaf hashes of the entries between the old base and the new one (`leaves`, 32 bytes
   * each, in order), so the tree is rebuilt whole at the next open. `not_supported` on
   * PostgreSQL (a master's log is kept whole).
   */
  compact (base: StoreBase, keep: ReadonlySet<number>, leaves: Buffer): Promise<void>

  /** The leaf hashes a compacted store keeps: those of (frontierSize, base.seq], concatenated. */
  leafHashes (): Promise<Buffer>

  /** Removes every entry after `seq` and the signed head (recovery after a divergence); `compacted` below a base. */
  truncate (seq: number): Promise<void>

  /**
   * Small named values that must survive restarts (e.g. the pinned master key). `durable`
   * writes it to disk before resolving even in a store that does not sync every write.
   */
  getMeta (key: string): Promise<string | undefined>
  setMeta (key: string, value: string, opts?: { durable?: boolean }): Promise<void>
}
