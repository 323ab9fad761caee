import { EventEmitter } from 'node:events'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { headFromNote, headNote, logOrigin } from './head.js'
import type { Ledger } from './ledger.js'
import { type ProofFrom, compareWithTree } from './tlog/tree-check.js'

/** Where a node keeps the fork it detected: the store's meta, so a restart keeps reporting it. */
export const FORK_META_KEY = 'fork_detected'
/** The checkpoints of forks an operator cleared (`reset fork`): shown again, they raise nothing. */
export const FORK_ACKNOWLEDGED_META_KEY = 'fork_acknowledged'
const MAX_ACKNOWLEDGED = 16
/** Checkpoints larger than this node's tree, waiting for the tree to grow: at most this many. */
const MAX_AHEAD = 32

/**
 * Two checkpoints of this network's log, both signed by its master keys, that no one history
 * holds: a split view, a rewritten history or a stolen master key. Both notes are kept whole,
 * so anyone can check the evidence with the master keys alone.
 */
export interface ForkReport {
  origin: string
  detected_at: string
  reason: string
  /** who showed this node the second checkpoint (a peer id, `sync`, `witness`, `rest`) */
  source: string
  /** the checkpoint this node holds (its verified log), then the one it was shown */
  checkpoints: [string, string]
}

/** What checking one presented checkpoint concluded. */
export type CheckOutcome = 'consistent' | 'ahead' | 'fork' | 'refused'

interface ForkWatchEvents { fork: [report: ForkReport] }

/**
 * A node's watch over the checkpoints it is shown (gossip, sync, witness requests). Each is
 * checked against the tree this node verified: one at or below its size must have the same
 * root there, a larger one must come with a consistency proof or wait (bounded) until the
 * tree grows. A fork is reported once, persisted, and from then on the node stops following
 * (the sync applier asks `current`); it keeps serving reads of what it had.
 */
export class ForkWatch extends EventEmitter<ForkWatchEvents> {
  private report?: ForkReport
  /** evidence an operator has seen and cleared: other nodes may go on showing it */
  private acknowledged: string[] = []
  private readonly ahead = new Map<number, { note: string, root: Buffer, source: string }>()

  constructor (private readonly ledger: Ledger) {
    super()
  }

  /** The fork detected, if any (this run or an earlier one). */
  get current (): ForkReport | undefined { return this.report }

  async load (): Promise<void> {
    const stored = await this.ledger.store.getMeta(FORK_META_KEY)
    if (stored !== undefined && stored !== '') this.report = JSON.parse(stored) as ForkReport
    const acknowledged = await this.ledger.store.getMeta(FORK_ACKNOWLEDGED_META_KEY)
    if (acknowledged !== undefined) this.acknowledged = JSON.parse(acknowledged) as string[]
    this.ledger.on('appended', () => { void this.checkAhead() })
  }

  /** This network's origin and master keys, once the ledger knows its first master. */
  private trust (): { origin: string, keys: string[] } | undefined {
    const root = this.ledger.masterKey
    return root === undefined ? undefined : { origin: logOrigin(root), keys: this.ledger.masterKeys }
  }

  /**
   * Checks a checkpoint note someone presented. Throws bad_signature (a LedgerMeshError
   * naming why) when it is not a checkpoint of this network signed by one of its master keys:
   * such a note proves nothing, so it is no fork either.
   */
  async check (noteText: string, source: string, proof?: ProofFrom): Promise<CheckOutcome> {
    const trust = this.trust()
    if (trust === undefined || this.ledger.signedHead === undefined) return 'refused'
    const head = headFromNote(noteText, trust.origin, trust.keys)
    const presented = { size: head.seq, root: Buffer.from(head.root, 'hex') }
    const verdict = compareWithTree(this.ledger.tree, presented, proof)
    if (verdict.kind === 'fork') {
      await this.detected(noteText, source, verdict.reason)
      return 'fork'
    }
    if (verdict.kind === 'ahead') {
      const known = this.ahead.get(presented.size)
      if (known !== undefined && !known.root.equals(presented.root)) {
        // two signed checkpoints of one size with different roots: no need to wait for the tree
        await this.detected(noteText, source, `two checkpoints of ${presented.size} entries with different roots`, known.note)
        return 'fork'
      }
      if (known === undefined && this.ahead.size < MAX_AHEAD) this.ahead.set(presented.size, { note: noteText, root: presented.root, source })
    }
    return verdict.kind
  }

  /** Reports a fork found elsewhere (the sync applier, the witness): both notes are signed checkpoints. */
  async detected (presented: string, source: string, reason: string, ours?: string): Promise<void> {
    if (this.report !== undefined || this.acknowledged.includes(presented)) return
    const signed = this.ledger.signedHead
    const held = ours ?? (signed === undefined ? '' : headNote(signed))
    this.report = { origin: this.trust()?.origin ?? '', detected_at: new Date().toISOString(), reason, source, checkpoints: [held, presented] }
    await this.ledger.store.setMeta(FORK_META_KEY, JSON.stringify(this.report)).catch(() => {})
    this.emit('fork', this.report)
  }

  /**
   * Clears the report (`reset fork`): the node follows again. The cleared evidence raises
   * nothing when shown again (nodes that hold it keep gossiping it until they are reset too);
   * a new second history does. Answers the report cleared.
   */
  async reset (): Promise<ForkReport | undefined> {
    const cleared = this.report
    this.report = undefined
    this.ahead.clear()
    if (cleared !== undefined) {
      this.acknowledged = [...this.acknowledged, ...cleared.checkpoints.filter(n => n !== '')].slice(-MAX_ACKNOWLEDGED)
      await this.ledger.store.setMeta(FORK_ACKNOWLEDGED_META_KEY, JSON.stringify(this.acknowledged))
    }
    await this.ledger.store.setMeta(FORK_META_KEY, '')
    return cleared
  }

  /** Throws `fork_detected` once a fork was detected: what the sync applier calls before applying. */
  assertFollowing (): void {
    if (this.report !== undefined) {
      throw new LedgerMeshError('fork_detected', `this node detected a fork of the log (${this.report.reason}) and stopped following it; it still serves reads of what it had (see get status)`)
    }
  }

  /** The waiting checkpoints the tree has now reached. */
  private async checkAhead (): Promise<void> {
    const size = this.ledger.tree.size
    for (const [at, waiting] of [...this.ahead]) {
      if (at > size) continue
      this.ahead.delete(at)
      try {
        await this.check(waiting.note, waiting.source)
      } catch (err) {
        // its signature was checked when it came: only a change of master keys gets here
        void errorMessage(err)
      }
    }
  }
}
