import { EventEmitter } from 'node:events'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { policyBody } from '../policies/policy.js'
import { headFromNote, logOrigin } from './head.js'
import type { Ledger } from './ledger.js'
import type { LedgerState } from './state.js'
import { cosignerKey, parseNote, verifyNote } from './tlog/note.js'

/** A witness as the network policy names it: its key and where its p2p server listens. */
export interface WitnessEntry {
  /** Ed25519 public key, hex */
  key: string
  /** ip:port of its TCP (libp2p) server */
  address: string
}

/** The witnesses of a network and how many must cosign a checkpoint. */
export interface WitnessSet {
  witnesses: WitnessEntry[]
  quorum: number
}

/** A witness's key name in its cosignatures (c2sp.org/signed-note: a schema-less URL-like name). */
export const witnessName = (publicKey: string): string => `ledgermesh-witness/${publicKey.slice(0, 16)}`

/** Where a node keeps the latest witnessed checkpoint it holds: the store's meta. */
export const WITNESSED_META_KEY = 'witnessed_checkpoint'

/** The witness set the ledger's live network policy names, if any. */
export function witnessSetOf (ledger: { readonly state: LedgerState }): WitnessSet | undefined {
  for (const policy of ledger.state.policiesOfType('network')) {
    const body = policyBody(policy) as { witnesses?: WitnessEntry[], witness_quorum?: number }
    if (body.witnesses !== undefined && body.witness_quorum !== undefined) return { witnesses: body.witnesses, quorum: body.witness_quorum }
  }
  return undefined
}

/** The witnesses of `set` whose cosignatures on the note verify (their keys). */
export function cosignersOf (noteText: string, set: WitnessSet): string[] {
  const note = parseNote(noteText)
  try {
    return [...new Set(verifyNote(note, set.witnesses.map(w => cosignerKey(witnessName(w.key), w.key))).map(v => v.verifier.publicKey))]
  } catch (err) {
    // signed by none of them is no cosignature; one that does not verify is a bad note
    if (/signed by none/.test(errorMessage(err))) return []
    throw err
  }
}

export interface WitnessedView {
  size: number
  cosigners: string[]
  note: string
}

/**
 * The latest checkpoint this node holds that a quorum of the network's witnesses cosigned
 * (the master collects it; every other node learns it by gossip). It is kept only when the
 * master keys signed it, the witnesses of the live network policy cosigned it, and this node's
 * tree has the same root at its size: what a light client may trust without the whole log.
 */
export class WitnessedCheckpoint extends EventEmitter<{ witnessed: [view: WitnessedView] }> {
  private current?: WitnessedView
  /** the largest witnessed checkpoint past this node's tree: accepted once the tree reaches it */
  private waiting?: { size: number, note: string }

  constructor (private readonly ledger: Ledger) {
    super()
    ledger.on('appended', () => {
      const waiting = this.waiting
      if (waiting === undefined || waiting.size > ledger.tree.size) return
      this.waiting = undefined
      this.accept(waiting.note).catch(() => {})
    })
  }

  get latest (): WitnessedView | undefined { return this.current }

  async load (): Promise<void> {
    const stored = await this.ledger.store.getMeta(WITNESSED_META_KEY)
    if (stored !== undefined) this.current = JSON.parse(stored) as WitnessedView
  }

  /**
   * Keeps `noteText` when it is a witnessed checkpoint newer than the one held; answers
   * whether it did. Throws bad_signature when a signature in it does not verify.
   */
  async accept (noteText: string): Promise<boolean> {
    const set = witnessSetOf(this.ledger)
    const root = this.ledger.masterKey
    if (set === undefined || root === undefined) return false
    const head = headFromNote(noteText, logOrigin(root), this.ledger.masterKeys)
    if (this.current !== undefined && head.seq <= this.current.size) return false
    const cosigners = cosignersOf(noteText, set)
    if (cosigners.length < set.quorum) return false
    if (head.seq > this.ledger.tree.size) {
      if (head.seq > (this.waiting?.size ?? 0)) this.waiting = { size: head.seq, note: noteText }
      return false
    }
    if (this.ledger.tree.root(head.seq).toString('hex') !== head.root) return false
    this.current = { size: head.seq, cosigners, note: noteText }
    await this.ledger.store.setMeta(WITNESSED_META_KEY, JSON.stringify(this.current)).catch((err: unknown) => {
      throw new LedgerMeshError('store_unavailable', `could not keep the witnessed checkpoint: ${errorMessage(err)}`)
    })
    this.emit('witnessed', this.current)
    return true
  }
}
