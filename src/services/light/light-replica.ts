import { EventEmitter } from 'node:events'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { headFromNote, logOrigin } from '../../ledger/head.js'
import { type VerifiedLight, verifyLightAnswer } from '../../ledger/light.js'
import { rootMasterKey, trustedMasterKeys } from '../../ledger/ledger-rules.js'
import type { LedgerState } from '../../ledger/state.js'
import { cosignersOf, witnessSetOf } from '../../ledger/witnessed.js'
import { type Policy, policyBody, policyType } from '../../policies/policy.js'
import type { StreamTarget } from '../../net/stream.js'
import { type LeaseGrant, type LeaseRequest, verifyLeaseAnswer } from '../../protocols/lease/index.js'
import type { LightProtocol, LightQuery, LightResponse } from '../../protocols/light/index.js'
import type { ReplicaView } from '../operator/replica-view.js'

/** Where a light worker keeps the first master's key it pinned (its local store's meta). */
const ROOT_KEY_META = 'light.master_public_key'
/** rounds over the sources before a fetch waits for the next grant or retry */
const MAX_ROUNDS = 8
/** soon enough for an entry the witnesses are cosigning (tens of ms) to be proven at the next try */
const RETRY_MS = 250

/** A server of the light protocol: the worker's slave first, then the masters. */
export interface LightSource { name: string, target: StreamTarget }

/** An answer refused, as `get status` shows the last one. */
export interface LightRefusal { source: string, reason: string, at: Date }

export interface LightSummary {
  policies: number
  /** the tree size of the last signed lease answer whose policies are all held (0: none yet) */
  checkpoint_size: number
  complete: boolean
  root_key: string | null
  /** the master keys it trusts: the first master's, and those its proven master_key policies declare */
  master_keys: string[]
  refused: number
  last_refusal: LightRefusal | null
  /** the latest checkpoint it verified that a quorum of the network policy's witnesses cosigned */
  witnessed: { size: number, cosigners: number, quorum: number } | null
}

/**
 * A light worker's ledger (LEDGER_MODE=light): only the policies it needs, each an entry an
 * inclusion proof places in a tree whose checkpoint a trusted master signed. The set comes
 * from the master's signed lease answers (checkGrant): exactly those ids, fetched by id from
 * the slave first, then the masters, over /ledgermesh/light/1.0.0. Its head is the size of
 * the last answer's checkpoint once every policy of that answer is held, 0 meanwhile: the
 * Operator starts nothing until it reaches the grant's minSeq. Anything that does not verify
 * is refused (logged, counted, in `get status`) and the next source is asked.
 *
 * Kept in memory (the node's local ledger's state object, so `blockchain get` on the worker
 * reads what it holds): a light worker refetches its few policies at start, in one round
 * trip; only the pinned first master's key and the drain are kept on disk, in its store's meta.
 */
export class LightReplica extends EventEmitter<{ appended: [] }> implements ReplicaView {
  private root?: string
  /** the last signed answer: the ids to hold and the checkpoint's size */
  private wanted?: { size: number, ids: Set<string> }
  private complete = false
  private version = 0
  private fetching?: Promise<void>
  private stopped = false
  refused = 0
  lastRefusal?: LightRefusal
  /** the latest witnessed checkpoint seen in a verified answer (a lease answer's or a light answer's) */
  private witnessed?: { size: number, cosigners: number, quorum: number, note: string }

  constructor (private readonly opts: {
    worker: string
    /** the policies held: the local ledger's (never synced) state */
    state: LedgerState
    store: ReplicaView['store']
    light: LightProtocol
    /** the sources to ask, in order: the worker's slave first (from its held declaration), then the masters */
    sources: () => LightSource[]
    log: Logger
    onRefused?: (what: 'light' | 'lease') => void
  }) {
    super()
    this.setMaxListeners(0)
  }

  get state (): LedgerState { return this.opts.state }
  get store (): ReplicaView['store'] { return this.opts.store }
  get head (): { seq: number, hash: string } {
    return { seq: this.complete && this.wanted !== undefined ? this.wanted.size : 0, hash: String(this.version) }
  }

  get masterKey (): string | undefined { return this.root }
  get masterKeys (): string[] { return this.root === undefined ? [] : [...trustedMasterKeys(this.state, this.root)] }

  summary (): LightSummary {
    return {
      policies: this.state.size,
      checkpoint_size: this.head.seq,
      complete: this.complete,
      root_key: this.root ?? null,
      master_keys: this.masterKeys,
      refused: this.refused,
      last_refusal: this.lastRefusal ?? null,
      witnessed: this.witnessed === undefined ? null : { size: this.witnessed.size, cosigners: this.witnessed.cosigners, quorum: this.witnessed.quorum }
    }
  }

  /** Reads the pinned key, then fetches what this worker needs from the first source that proves it. */
  async start (): Promise<void> {
    this.stopped = false
    this.root = await this.store.getMeta(ROOT_KEY_META).catch(() => undefined)
    await this.bootstrap()
  }

  /** One round over the sources for what this worker needs (its first answer pins the first master's key). */
  private async bootstrap (): Promise<void> {
    for (const source of this.opts.sources()) {
      if (this.stopped) return
      const verified = await this.ask(source, { worker: this.opts.worker })
      if (verified === undefined) continue
      for (const { policy, seq } of verified.policies) this.put(policy, seq)
      this.changed()
      this.opts.log.info({ source: source.name, policies: verified.policies.length, size: verified.head.seq }, 'light worker: policies fetched with their proofs')
      return
    }
    this.opts.log.warn('light worker: no source proved this worker\'s policies yet; the lease answers will name them')
  }

  stop (): void { this.stopped = true }

  /**
   * The Operator's check of a grant: signed for this request by a trusted master, at a
   * checkpoint that master signed, whose size is the grant's minSeq. Then the held set becomes
   * the answer's: policies not named are dropped at once, missing ones fetched with proofs.
   */
  readonly checkGrant = (grant: LeaseGrant, request: Omit<LeaseRequest, 'version'>): void => {
    try {
      if (this.root === undefined) {
        // no source answered at start: try again now, for the next renewal
        this.fetching ??= this.bootstrap().finally(() => { this.fetching = undefined })
        throw new LedgerMeshError('bad_signature', 'this light worker trusts no master key yet (no source proved its policies): it cannot check the lease answer')
      }
      verifyLeaseAnswer(request, grant, grant.signed, this.masterKeys)
      const head = headFromNote(grant.signed!.checkpoint, logOrigin(this.root), this.masterKeys)
      if (head.seq !== grant.minSeq) throw new LedgerMeshError('bad_signature', `the lease answer names a checkpoint of size ${head.seq} but min_seq ${grant.minSeq}`)
      this.noteWitnessed(grant.signed!.checkpoint, head.seq)
    } catch (err) {
      this.refuse('lease', 'the master', errorMessage(err))
      throw err
    }
    this.adopt(grant.minSeq, grant.signed!.policyIds)
  }

  private adopt (size: number, ids: string[]): void {
    const wanted = new Set(ids)
    const same = this.wanted !== undefined && this.wanted.ids.size === wanted.size && ids.every(id => this.wanted!.ids.has(id))
    this.wanted = { size, ids: wanted }
    if (same && this.complete) { this.changed(); return }
    // what the master no longer names is gone (deleted, moved): no proof is needed to drop it
    for (const policy of [...this.state.all()]) {
      const id = String(policyBody(policy).id)
      if (!wanted.has(id)) this.state.apply({ seq: 0, op: 'delete', policy: { delete: { policy_id: id } }, prevHash: '', hash: '' })
    }
    this.complete = this.missing().length === 0
    this.changed()
    if (!this.complete) this.fetching ??= this.fetchMissing().finally(() => { this.fetching = undefined })
  }

  private missing (): string[] {
    return this.wanted === undefined ? [] : [...this.wanted.ids].filter(id => !this.state.has(id))
  }

  /** Asks each source in turn for what is missing, a few rounds at most; a later grant starts again. */
  private async fetchMissing (): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS && !this.stopped; round++) {
      for (const source of this.opts.sources()) {
        const missing = this.missing()
        if (missing.length === 0 || this.stopped) break
        const verified = await this.ask(source, { ids: missing })
        if (verified === undefined) continue
        const wanted = new Set(missing)
        for (const { policy, seq } of verified.policies) if (wanted.has(String(policyBody(policy).id))) this.put(policy, seq)
        this.changed()
      }
      if (this.missing().length === 0) {
        this.complete = true
        this.changed()
        this.opts.log.info({ size: this.wanted?.size, policies: this.state.size }, 'light worker: holds every policy of the master\'s answer, each proven')
        return
      }
      await new Promise(resolve => setTimeout(resolve, RETRY_MS).unref())
    }
    this.opts.log.warn({ missing: this.missing().length }, 'light worker: no source proved every policy the master named; trying again at the next renewal')
  }

  /** One fetch from `source`, verified; undefined when it failed or was refused (logged). */
  private async ask (source: LightSource, query: LightQuery): Promise<VerifiedLight | undefined> {
    let answer: LightResponse
    try {
      answer = await this.opts.light.fetch(source.target, query)
    } catch (err) {
      this.opts.log.debug({ source: source.name, err: errorMessage(err) }, 'light fetch failed')
      return undefined
    }
    try {
      const root = this.root ?? firstRoot(answer)
      const verified = verifyLightAnswer(answer, { rootKey: root, held: this.state })
      this.requireWitnessed(verified.note)
      if (this.root === undefined) {
        this.root = root
        await this.store.setMeta(ROOT_KEY_META, root)
        this.opts.log.info({ masterKey: root }, 'light worker: pinned the first master\'s key from the first proven answer')
      }
      this.noteWitnessed(verified.note, verified.head.seq)
      return verified
    } catch (err) {
      this.refuse('light', source.name, errorMessage(err))
      return undefined
    }
  }

  /**
   * On a network whose (held) network policy names witnesses, policies are taken only from
   * answers proven against a checkpoint a quorum of them cosigned: a master key signing a
   * second history for this worker alone would need the witnesses to cosign it too.
   */
  private requireWitnessed (note: string): void {
    const set = witnessSetOf(this)
    if (set === undefined) return
    const cosigners = cosignersOf(note, set)
    if (cosigners.length < set.quorum) throw new LedgerMeshError('bad_signature', `its checkpoint is cosigned by ${cosigners.length} of the network's witnesses, ${set.quorum} needed (WITNESS_QUORUM)`)
  }

  /**
   * Keeps `note` (its master signature already verified) as the latest witnessed checkpoint
   * when a quorum of the witnesses the held network policy names cosigned it (`get status`).
   */
  private noteWitnessed (note: string, size: number): void {
    const set = witnessSetOf(this)
    if (set === undefined || size < (this.witnessed?.size ?? 0)) return
    let cosigners: string[]
    try { cosigners = cosignersOf(note, set) } catch { return }
    if (cosigners.length >= set.quorum) this.witnessed = { size, cosigners: cosigners.length, quorum: set.quorum, note }
  }

  private refuse (what: 'light' | 'lease', source: string, reason: string): void {
    this.refused++
    this.lastRefusal = { source, reason, at: new Date() }
    this.opts.onRefused?.(what)
    this.opts.log.warn({ source, what, reason }, what === 'lease' ? 'light worker: lease answer refused' : `light worker: answer from ${source} refused: it does not verify`)
  }

  private put (policy: Policy, seq: number): void {
    this.state.apply({ seq, op: 'put', policy, prevHash: '', hash: '' })
  }

  private changed (): void {
    this.version++
    this.emit('appended')
  }
}

/**
 * Trust on first use, as a replica pins the first signed head's key: the first master's key
 * is the one that names the checkpoint's origin, among the keys the answer's master
 * declarations were signed by (`master` policies are signed by the master itself) and the
 * keys `master_key` policies declare, followed back to the key that began the ledger.
 */
function firstRoot (answer: LightResponse): string {
  const origin = answer.checkpoint.split('\n')[0]
  const policies: Policy[] = []
  for (const item of answer.entries) {
    const text = /^[0-9a-f]{64}:[0-9]+:\{"op":"put","policy":(\{[\s\S]*\})\}$/.exec(item.entry)?.[1]
    if (text === undefined) continue
    try { policies.push(JSON.parse(text) as Policy) } catch { /* verifyLightAnswer says why */ }
  }
  const masterPolicies = policies.filter(p => policyType(p) === 'master_key' || policyType(p) === 'master')
  const candidates = masterPolicies.flatMap(p => [policyBody(p).public_key, policyBody(p).key]).filter((k): k is string => typeof k === 'string')
  for (const candidate of candidates) {
    const root = rootMasterKey(candidate, masterPolicies)
    if (logOrigin(root) === origin) return root
  }
  throw new LedgerMeshError('bad_signature', `no master declaration in the answer names the checkpoint's origin ${JSON.stringify(origin.slice(0, 80))}: nothing to pin`)
}
