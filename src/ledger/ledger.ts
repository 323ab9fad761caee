import { EventEmitter } from 'node:events'
import { Mutex } from 'async-mutex'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Signer } from '../policies/keys.js'
import { policyId } from '../policies/policy.js'
import { validatePolicy } from '../policies/validate.js'
import { InsertVerifier } from '../policies/verify-pool.js'
import { type Entry, type LedgerOp, GENESIS_HASH, afterHeld, entryLeafHash, verifyChainLinks } from './entry.js'
import { type Head, type SignedHead, logOrigin, signHead } from './head.js'
import { MerkleTree, type TreeExtension } from './tlog/merkle-tree.js'
import { StateRoot, type StateUndo } from './state-root.js'
import { MAX_SEQ_WAITERS, SeqWaiters } from './seq-waiters.js'
import type { LedgerStore, StoreBase } from './store.js'
import { LedgerState } from './state.js'
import { type FoldedLog, checkStateLine, foldLog, foldSnapshot, readPastHead } from './fold.js'
import { isHeadMoved } from './store-codec.js'
import { type AcceptedInsert, SignedHeadCheck, acceptBatch, admitsKey, answerEach, isRevokedIn, refusedIds, requiresAdmission, retiredIdError, rootMasterKey, trustedMasterKeys, verifyBatchAuthorization } from './ledger-rules.js'

/** Most ops committed in one store transaction by the group committer. */
const MAX_COMMIT_BATCH = 1000
/** Store meta key holding the master public key this ledger trusts. */
const MASTER_KEY_META = 'master_public_key'
/**
 * Inserts the master queues for the group committer before it answers `overloaded`: a burst
 * past this waits in its clients (who retry), not in the master's memory.
 */
const MAX_PENDING_INSERTS = 10_000
/** how often one batch is checked and committed again (ids the store refused, a head that moved) */
const MAX_COMMIT_RETRIES = 3

export interface LedgerEvents {
  /** new entries were appended (by commit on the master, or by sync on a replica) */
  appended: [entries: Entry[], head: SignedHead | undefined]
}

interface PendingInsert {
  op: LedgerOp
  resolve: (entry: Entry) => void
  reject: (err: Error) => void
}

type Accepted = AcceptedInsert<PendingInsert>

/** see MAX_PENDING_INSERTS and MAX_SEQ_WAITERS */
export interface LedgerLimits { maxPendingInserts?: number, maxSeqWaiters?: number }

/**
 * A ledger: the log in a store, its live state and its Merkle tree kept in memory, and the
 * rules that decide what may be appended. On the master it orders inserts (group commit) and
 * signs checkpoints; on a replica it applies verified batches from sync. Readers query `state`.
 */
export class Ledger extends EventEmitter<LedgerEvents> {
  readonly store: LedgerStore
  /** Replaced whole (never emptied in place) when the log is folded again: see fold(). */
  private currentState = new LedgerState()
  private readonly log: Logger
  /** Present on the master only: signs heads and the tombstones of replaced declarations. */
  private readonly masterSigner?: Signer
  private currentHead: Head = { seq: 0, hash: GENESIS_HASH }
  private currentSignedHead?: SignedHead
  /** the RFC 6962 tree over the log's entries, kept with the state (replaced with it) */
  private currentTree = new MerkleTree()
  /** the live state's sparse Merkle tree (the checkpoints' state line), kept with the state */
  private currentStateRoot = new StateRoot()
  /** the store holds every entry after this seq; at or before it, only those live there (a snapshot, a compaction) */
  logStart = 0
  private trustedMasterKey?: string
  private readonly pending: PendingInsert[] = []
  private committing = false
  /** A commit failed or its outcome is unknown (a COMMIT that errored after the server may have
   * applied it): the next batch first reads the store's head and whatever the state lacks. */
  private storeUncertain = false
  private readonly seqWaiters: SeqWaiters
  private readonly limits: Required<LedgerLimits>
  /** author signatures of concurrent inserts, checked off this thread */
  private readonly insertVerifier = new InsertVerifier()

  constructor (opts: { store: LedgerStore, log: Logger, masterSigner?: Signer, masterKey?: string, limits?: LedgerLimits }) {
    super()
    this.store = opts.store
    this.log = opts.log
    this.limits = {
      maxPendingInserts: opts.limits?.maxPendingInserts ?? MAX_PENDING_INSERTS,
      maxSeqWaiters: opts.limits?.maxSeqWaiters ?? MAX_SEQ_WAITERS
    }
    // waitForSeq callers each listen to 'appended'; their number is capped by maxSeqWaiters
    this.setMaxListeners(0)
    this.seqWaiters = new SeqWaiters(this, this.limits.maxSeqWaiters)
    this.masterSigner = opts.masterSigner
    this.trustedMasterKey = opts.masterSigner?.publicKey ?? opts.masterKey
  }

  /** The live policies. Read it afresh each time: a rewind swaps in a new one. */
  get state (): LedgerState { return this.currentState }
  get head (): Head { return this.currentHead }
  get signedHead (): SignedHead | undefined { return this.currentSignedHead }
  /** The Merkle tree over the log (proofs, checkpoints); its size is the head's seq. */
  get tree (): MerkleTree { return this.currentTree }
  /** The live state's commitment (its sparse Merkle tree); its size is the state's policy count. */
  get stateRoot (): StateRoot { return this.currentStateRoot }
  get masterKey (): string | undefined { return this.trustedMasterKey }
  get isMaster (): boolean { return this.masterSigner !== undefined }

  /** Whether the network requires admission (a live `network` policy says so). */
  get admissionRequired (): boolean { return requiresAdmission(this.state.policiesOfType('network')) }
  /** Whether a live revocation names `key`. */
  isRevoked (key: string): boolean { return isRevokedIn(this.state, key) }
  /** Whether `key` may take part (sync, renew a lease, write): see admitsKey. */
  admits (key: string | undefined): boolean { return admitsKey(this.state, this.trustedMasterKey, key) }

  /**
   * Opens the store and folds the log into the state, verifying every chain link and the
   * signed head on the way. A log that does not verify is reported, never half-loaded.
   */
  async open (): Promise<void> {
    await this.store.open()
    const pinned = await this.store.getMeta(MASTER_KEY_META)
    if (pinned !== undefined) {
      // Another master opening a shared database is normal (its heads count once a trusted
      // master declares its key); a replica told to trust another key is not.
      if (this.trustedMasterKey !== undefined && pinned !== this.trustedMasterKey && this.masterSigner === undefined) {
        throw new LedgerMeshError('chain_broken', `ledger store ${this.store.location} was written under master key ${pinned.slice(0, 12)}…, but this node trusts ${this.trustedMasterKey.slice(0, 12)}…`)
      }
      this.trustedMasterKey = pinned
    } else if (this.trustedMasterKey !== undefined) {
      await this.store.setMeta(MASTER_KEY_META, this.trustedMasterKey)
    }
    await this.fold()
  }

  async close (): Promise<void> {
    await this.store.close()
  }

  /**
   * Folds the whole log into a new state, built aside: readers keep the old one until the new
   * one is complete and swapped in, so none ever sees a half-built ledger (an operator that
   * saw an empty one would stop every profile). Policies waiting in this node's outbox stay.
   */
  private async fold (): Promise<void> {
    this.adopt(await foldLog(this.store, this.trustedMasterKey))
  }

  private adopt ({ state, head, signed, tree, stateRoot, base }: FoldedLog): void {
    this.logStart = base?.seq ?? 0
    state.adoptLocal(this.currentState)
    this.currentState = state
    this.currentHead = head
    this.currentTree = tree
    this.currentStateRoot = stateRoot
    // a master whose store holds no checkpoint for its head (one written before heads were) signs one
    this.currentSignedHead = signed ?? (this.masterSigner !== undefined && head.seq > 0 ? this.signCurrent() : undefined)
  }

  /**
   * Master: validates, authorizes and orders one policy (put) or tombstone (delete).
   * Resolves with its entry once the store commit that holds it is durable. Concurrent calls
   * are batched into one store transaction (group commit).
   */
  async submit (op: LedgerOp): Promise<Entry> {
    if (this.masterSigner === undefined) {
      throw new LedgerMeshError('master_unreachable', 'this node is not the master: inserts go to the master')
    }
    validatePolicy(op.policy)
    this.refuseWhenFull()
    await this.insertVerifier.verify(op.policy, this.committing)
    this.refuseWhenFull()
    const { promise, resolve, reject } = Promise.withResolvers<Entry>()
    this.pending.push({ op, resolve, reject })
    if (!this.committing) void this.commitPending()
    return await promise
  }

  private refuseWhenFull (): void {
    if (this.pending.length < this.limits.maxPendingInserts) return
    throw new LedgerMeshError('overloaded', `the master has ${this.pending.length} inserts waiting to be committed (at most ${this.limits.maxPendingInserts}): try again shortly`, { retryAfterSeconds: 1 })
  }

  private async commitPending (): Promise<void> {
    this.committing = true
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_COMMIT_BATCH)
        await this.ordering.runExclusive(async () => { await this.commitBatch(batch) })
      }
    } finally {
      this.committing = false
    }
  }

  /**
   * Checks each op against the state (and the batch so far), then commits the accepted ones.
   * One bad op fails only its own insert: when the store refuses ids the state did not know
   * (ids of deleted policies stay retired in the log), those inserts are refused and the rest
   * of the batch is committed again.
   */
  private async commitBatch (batch: PendingInsert[]): Promise<void> {
    try {
      await this.reloadIfUncertain()
    } catch (err) {
      for (const insert of batch) insert.reject(err as Error)
      return
    }
    let accepted = this.acceptable(batch)
    for (let attempt = 0; accepted.length > 0; attempt++) {
      try {
        await this.commitAccepted(accepted)
        return
      } catch (err) {
        // another writer committed since this state's head (a takeover raced this commit):
        // the batch was checked against a stale state, so it is checked again, after a reload
        const moved = isHeadMoved(err) && attempt < MAX_COMMIT_RETRIES
        const refused = attempt < MAX_COMMIT_RETRIES ? refusedIds(err) : undefined
        if (refused === undefined && !moved) {
          // the store may or may not hold the batch: find out before ordering anything else
          this.storeUncertain = true
          this.log.error({ err: errorMessage(err), batch: accepted.length }, 'ledger commit failed')
          for (const { insert } of accepted) insert.reject(err as Error)
          return
        }
        // The store knows ids the state does not: see whether it moved on without us first.
        this.storeUncertain = true
        try {
          await this.reloadIfUncertain()
        } catch (reloadErr) {
          for (const { insert } of accepted) insert.reject(reloadErr as Error)
          return
        }
        const retry: PendingInsert[] = []
        for (const { insert, ops } of accepted) {
          const clash = ops.map(op => policyId(op.policy)).find(id => refused?.has(id) === true)
          if (clash === undefined) retry.push(insert)
          else insert.reject(this.state.has(clash) ? new LedgerMeshError('duplicate_id', `policy ${clash} is already in the ledger`, { id: clash }) : retiredIdError(clash))
        }
        accepted = this.acceptable(retry)
      }
    }
  }

  /** The inserts of `batch` that pass the state checks, each with the ops it expands to. */
  private acceptable (batch: PendingInsert[]): Accepted[] {
    return acceptBatch(this.state, this.trustedMasterKey, this.masterSigner!, batch)
  }

  /** One store transaction for the accepted inserts; each is answered with its own entry. */
  private async commitAccepted (accepted: Accepted[]): Promise<void> {
    const signer = this.masterSigner!
    let signed: SignedHead | undefined
    let extended: { entries: readonly Entry[], tree: TreeExtension, undo: StateUndo } | undefined
    const undoExtended = (): void => { if (extended !== undefined) this.currentStateRoot.revert(extended.undo) }
    // the store writes only after the head the batch was checked against (isHeadMoved otherwise)
    // the roots are the trees' with the batch, before the batch is known to be durable
    const sign = (head: Head, entries: readonly Entry[]): SignedHead => {
      undoExtended()
      const leaves = entries.map(entryLeafHash)
      extended = { entries, undo: this.currentStateRoot.apply(entries, leaves), tree: this.currentTree.extend(leaves) }
      const state = this.currentStateRoot.commitment(head.seq)
      return (signed = signHead({ ...head, root: extended.tree.root.toString('hex'), state }, signer, logOrigin(this.trustedMasterKey!)))
    }
    // a commit that fails drops the extensions: the trees never hold what the store may not
    const entries = await this.store.commit(accepted.flatMap(a => a.ops), sign, this.currentHead).catch((err: unknown) => { undoExtended(); throw err })
    const same = extended?.entries === entries
    if (!same) undoExtended()
    this.applyToState(entries, same ? extended!.tree : undefined, same)
    // the head the store signed with this commit is the ledger's new head
    this.currentSignedHead = signed !== undefined && signed.seq === this.currentHead.seq && signed.hash === this.currentHead.hash
      ? signed
      : this.signCurrent()
    answerEach(accepted, entries)
    this.emit('appended', entries, this.currentSignedHead)
  }

  /**
   * A master that just became the writer: the next commit first reads what the store holds
   * past this state's head (what the previous writer wrote since this master last followed).
   */
  markStoreUncertain (): void {
    this.storeUncertain = true
  }

  /**
   * After a failed or ambiguous commit: reads what the store holds past the state's head and
   * applies it (or folds the whole log again if the store no longer continues this head), so
   * the master never orders on a head or a state the store has moved past.
   */
  private async reloadIfUncertain (following = false): Promise<void> {
    if (!this.storeUncertain) return
    const past = await readPastHead(this.store, this.currentHead)
    if (past.continues && past.entries.length > 0) {
      this.applyToState(past.entries)
      this.currentSignedHead = past.signed ?? this.signCurrent()
      if (!following) this.log.warn({ applied: past.entries.length, head: this.currentHead.seq }, 'the store held entries of a commit reported as failed; applied them')
      this.emit('appended', past.entries, this.currentSignedHead)
    } else if (!past.continues) {
      const from = this.currentHead.seq
      await this.fold()
      this.log.warn({ from, to: this.currentHead.seq }, 'the store no longer continues the ledger head after a failed commit; folded the log again')
      this.emit('appended', [], this.currentSignedHead)
    }
    this.storeUncertain = false
  }

  /**
   * A standby master over a database another master writes: applies what the store holds
   * past this state's head and announces it ('appended'), so the standby serves current sync
   * and reads, and can take over from where the writer stopped. Skipped while this ledger
   * commits (its own commits keep it current). Answers how many entries it applied.
   */
  async followStore (): Promise<number> {
    if (this.committing || this.ordering.isLocked()) return 0
    return await this.ordering.runExclusive(async () => {
      const before = this.currentHead.seq
      this.storeUncertain = true
      await this.reloadIfUncertain(true)
      return this.currentHead.seq - before
    })
  }

  /** The master's checkpoint for the current head. */
  private signCurrent (): SignedHead {
    const state = this.currentStateRoot.commitment(this.currentHead.seq)
    return signHead({ ...this.currentHead, root: this.currentTree.root().toString('hex'), state }, this.masterSigner!, logOrigin(this.trustedMasterKey!))
  }

  /**
   * `grown`: the tree extended by these entries' leaves (hashed with the root signed for them);
   * `stateApplied`: the state root already holds them (applied to sign or check its root)
   */
  private applyToState (entries: Entry[], grown?: TreeExtension, stateApplied = false): void {
    // a head never moves back, nor is an entry at or below it applied again
    if (entries.length > 0 && (entries[0].seq !== this.currentHead.seq + 1 || entries[0].prevHash !== this.currentHead.hash)) {
      throw new LedgerMeshError('chain_broken', `entries from seq ${entries[0].seq} do not follow this ledger's head ${this.currentHead.seq}: not applied`)
    }
    for (const entry of entries) this.state.apply(entry)
    if (!stateApplied) this.currentStateRoot.apply(entries, entries.map(entryLeafHash))
    if (grown === undefined || !this.currentTree.appendExtension(grown)) {
      for (const entry of entries) this.currentTree.appendLeafHash(entryLeafHash(entry))
    }
    const last = entries[entries.length - 1]
    this.currentHead = { seq: last.seq, hash: last.hash }
  }

  /** Resolves once the head reaches `seq`, or after `timeoutMs` (false then). */
  async waitForSeq (seq: number, timeoutMs: number): Promise<boolean> { return await this.seqWaiters.wait(seq, timeoutMs) }

  /** A replica: a snapshot its caller checked (its entries against `base.state`: their state tree is built
   * from them on first use; trusting `rootKey` if none is pinned) in place of its log;
   * `state`: the live state the checks built from `entries` (sorted by seq). Reads see it at once;
   * `stored` settles once the store holds it (sync waits for it; a failure folds the store again). */
  async installSnapshot (base: StoreBase, entries: Entry[], state: LedgerState, signed: SignedHead, rootKey: string, opts: { replace?: boolean } = {}): Promise<{ stored: Promise<void> }> {
    const folded = foldSnapshot(base, entries, state, signed)
    const adopted = Promise.withResolvers<void>()
    const stored = this.applying.runExclusive(async () => {
      if (this.trustedMasterKey === undefined) await this.store.setMeta(MASTER_KEY_META, this.trustedMasterKey = rootKey)
      this.adopt(folded)
      adopted.resolve()
      this.emit('appended', [], signed)
      await this.store.installBase(base, entries, signed, opts).catch(async (err: unknown) => { await this.fold(); throw err })
    })
    await Promise.race([adopted.promise, stored])
    return { stored }
  }

  /**
   * Replica recovery: drops every entry after `seq` (where the replica's log stopped agreeing
   * with its source, or from zero) and re-folds the state from what is left.
   */
  async rewind (seq: number): Promise<void> {
    const from = this.currentHead.seq
    await this.store.truncate(seq)
    await this.fold()
    this.log.warn({ from, to: this.currentHead.seq }, 'replica rewound to re-sync from its source')
  }

  /**
   * Replica: applies a batch received from sync. Everything is checked before anything is
   * written: the chain links from the current head, the head signature by the trusted master
   * key, that the batch ends exactly at the signed head, and each policy's own signature and
   * authorization. A batch that fails any check is rejected whole; the replica stays put.
   */
  async applyBatch (entries: Entry[], head: SignedHead): Promise<void> {
    // one batch at a time: the checks read the head the previous batch left
    await this.applying.runExclusive(async () => { await this.applyBatchNow(entries, head) })
  }

  /** replica batches and snapshots one at a time; the master's commits and its following of a shared store likewise */
  private readonly applying = new Mutex()
  private readonly ordering = new Mutex()

  private readonly headCheck = new SignedHeadCheck()

  /** Throws bad_signature unless `head` is signed by a master key this ledger trusts (see SignedHeadCheck). */
  checkSignedHead (head: SignedHead, opts: { pending?: readonly Entry[] } = {}): void {
    this.headCheck.check(head, this.trustedMasterKey, this.state, opts.pending)
  }

  /** Every master key this ledger trusts: the first master's and those trusted masters declared. */
  get masterKeys (): string[] {
    return [...trustedMasterKeys(this.state, this.trustedMasterKey)]
  }

  private async applyBatchNow (entries: Entry[], head: SignedHead): Promise<void> {
    if (this.trustedMasterKey === undefined) {
      // Trust on first use: the first signed head this replica accepts pins the master key,
      // or, when a master declared that head's key, the first master's (see rootMasterKey).
      const root = rootMasterKey(head.publicKey, entries.map(e => e.policy))
      this.trustedMasterKey = root
      await this.store.setMeta(MASTER_KEY_META, root)
      this.log.info({ masterKey: root }, 'pinned the master key from the first signed head')
    }
    this.checkSignedHead(head, { pending: entries })
    const fresh = afterHeld(this.currentHead, entries)
    if (fresh === undefined) {
      // wholly at or before this ledger's head: nothing to do if it is the same chain
      const last = entries[entries.length - 1]
      if ((await this.store.range(last.seq, 1))[0]?.hash === last.hash) return
    } else if (fresh !== entries) {
      return await this.applyBatchNow(fresh, head)
    }
    if (entries.length === 0) return
    const broken = verifyChainLinks(this.currentHead, entries)
    if (broken !== undefined) throw new LedgerMeshError('chain_broken', `sync batch rejected: ${broken}`)
    const last = entries[entries.length - 1]
    if (last.seq !== head.seq || last.hash !== head.hash) {
      throw new LedgerMeshError('chain_broken', `sync batch ends at seq ${last.seq}, but the signed head is seq ${head.seq}`)
    }
    await verifyBatchAuthorization(this.state, this.trustedMasterKey, entries)
    const leaves = entries.map(entryLeafHash)
    const grown = this.currentTree.extend(leaves)
    const root = grown.root.toString('hex')
    if (root !== head.root) {
      throw new LedgerMeshError('chain_broken', `sync batch rejected: its entries lead to Merkle root ${root.slice(0, 12)}…, but the signed head at seq ${head.seq} names ${String(head.root).slice(0, 12)}…`)
    }
    const undo = this.currentStateRoot.apply(entries, leaves)
    try {
      checkStateLine(head, this.currentStateRoot.commitment(head.seq))
      await this.store.append(entries, head)
    } catch (err) {
      this.currentStateRoot.revert(undo)
      throw err
    }
    this.applyToState(entries, grown, true)
    this.currentSignedHead = head
    this.emit('appended', entries, head)
  }
}
