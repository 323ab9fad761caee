import { setTimeout as sleep } from 'node:timers/promises'
import pTimeout from 'p-timeout'
import { LedgerMeshError, errorMessage, isDefinitiveRefusal } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Entry, LedgerOp } from '../ledger/entry.js'
import type { Ledger } from '../ledger/ledger.js'
import type { Submitted } from '../protocols/insert/index.js'
import type { Ed25519Signer } from '../policies/keys.js'
import { policyBody, policyId, policyType } from '../policies/policy.js'
import type { InsertResult } from '../commands/port.js'
import { checkSealedForMaster } from '../policies/sealed-settings.js'
import { MasterList, tcpAddress, type MasterSource, type WithMasterOptions } from './master-list.js'
import type { NodeMetrics } from './metrics.js'
import type { ReplicaSync } from './replica-sync.js'

/** What the write path needs of the insert protocol: submitting an op to the master. */
export interface InsertSubmitter {
  submit: (target: ReturnType<typeof tcpAddress>, op: LedgerOp) => Promise<Submitted>
}

/** What the masters answered an insert: ordered now, or already on the ledger from an earlier try. */
export type MasterAnswer = { accepted: Submitted } | { already: LedgerMeshError }

/** The master refused an insert because this node's key is not admitted (yet): not the policy itself. */
export function notAdmittedRefusal (err: unknown): err is LedgerMeshError {
  return err instanceof LedgerMeshError && err.code === 'unauthorized' && err.details.reason === 'not_admitted'
}

/**
 * Whether an outbox insert is given up: the master refused the policy itself for good. A
 * refusal only because this node is not admitted yet is not one when the node waits for
 * `admit node` (`keepUnadmitted`: started without JOIN_TOKEN).
 */
export function givesUpInsert (err: unknown, keepUnadmitted: boolean): boolean {
  return isDefinitiveRefusal(err) && !(keepUnadmitted && notAdmittedRefusal(err))
}

/** A failure after which the master may have ordered the insert anyway (no answer, or a failed commit). */
function mayHaveLanded (err: unknown): boolean {
  return !(err instanceof LedgerMeshError) || ['master_unreachable', 'timeout', 'store_unavailable', 'internal'].includes(err.code)
}

/**
 * Submits `op` to the masters, rotating through them (MasterList.withMaster). The one place
 * that decides "already on the ledger": a `duplicate_id` refusal after a try whose outcome is
 * unknown (it may have reached a master: no answer, a timeout), or for an insert sent before
 * (`sentBefore`: the outbox's, which may have gone out before a restart), means that try
 * ordered it; it is answered `already`, and nothing is sent as a second entry (the master
 * refuses an id it holds). A duplicate_id on a first, clean try stays an error: the policy was
 * there before this insert.
 */
export async function submitToMasters (insert: InsertSubmitter, masters: MasterList, op: LedgerOp, opts: WithMasterOptions & { sentBefore?: boolean } = {}): Promise<MasterAnswer> {
  let unknownOutcome = opts.sentBefore === true
  try {
    const accepted = await masters.withMaster(async address => {
      try {
        return await insert.submit(tcpAddress(address), op)
      } catch (err) {
        if (mayHaveLanded(err)) unknownOutcome = true
        throw err
      }
    }, opts)
    return { accepted }
  } catch (err) {
    if (unknownOutcome && err instanceof LedgerMeshError && err.code === 'duplicate_id') return { already: err }
    throw err
  }
}

/** How long a replica's insert waits for its own replica to hold the new entry. */
const READ_YOUR_WRITES_MS = 3000
/** How long a standby master waits to learn the writer before refusing an insert `not_active`, and how often it looks. */
const WRITER_WAIT_MS = 5000
const WRITER_POLL_MS = 50
/**
 * How long a `local=true` insert waits for the masters before it is acknowledged from the
 * outbox: AnyLog's local=true means the node keeps the policy at once, and a master that is
 * cut off (its packets dropped, not refused) would otherwise hold the answer for the whole
 * retry budget across the masters. The attempt goes on behind the answer; the outbox's
 * re-submit then finds the policy on the ledger if it landed.
 */
const LOCAL_ACK_MS = 2000

/** What `standby` answers: undefined while this master writes (or is no master). */
type Standby = ReturnType<NonNullable<WritePathOptions['standby']>>

export interface WritePathOptions {
  /** the node's ledger; throws store_unavailable while no store is connected */
  ledger: () => Ledger
  /** the node's key (the master checks sealed settings against it) */
  signer: () => Ed25519Signer
  /** the node's Blockchain Sync, once `run blockchain sync` started it */
  sync: () => ReplicaSync | undefined
  /** the insert protocol, once `run blockchain sync` started it */
  insert: () => InsertSubmitter | undefined
  /** the masters' p2p addresses, ip:port (LEDGER_CONN's list); the node's MasterList is built from them */
  masterConns: string[]
  /** MASTERS_FROM_LEDGER: add the masters the ledger declares to masterConns (default true) */
  learnMasters?: boolean
  /** where declared masters are learnt from when not the ledger (a light worker's LightReplica) */
  masterSource?: () => MasterSource | undefined
  /** false on a light worker, whose ledger never holds the log: no waiting to read its writes */
  readYourWrites?: boolean
  metrics: Pick<NodeMetrics, 'inserts'>
  log: Logger
  /**
   * `local=true` inserts the master refuses only because this node's key is not admitted yet
   * wait in the outbox (until `admit node` on the master), instead of failing: a node started
   * without JOIN_TOKEN, so that its start-up script's declaration goes out once it is admitted.
   */
  keepUnadmitted?: boolean
  /**
   * A master among several that stands by: the active master's address its writes go to
   * (null when none holds the writer lease). Undefined while this master writes.
   */
  standby?: () => { address: string | null, trusted: boolean, defer: (op: LedgerOp) => void } | undefined
}

/**
 * The node's write path: `blockchain insert`, `blockchain delete policy` and `POST
 * /v1/policies` all come here. On the master the write is ordered on its own ledger; on a
 * replica it goes to the master over `/ledgermesh/insert/1.0.0`, waits in the durable outbox
 * when asked to (`local=true`) and the master cannot take it now, and returns once the
 * replica holds it (read-your-writes). The result comes once the write is durable.
 */
export class WritePath {
  /**
   * The node's masters, shared by every client path (the outbox, sync from the master, the
   * lease, the join): it learns the masters the node's ledger declares.
   */
  readonly masters: MasterList
  /** the list an explicit `master=` named last: reused, so its rotation holds across inserts */
  private named?: { text: string, list: MasterList }

  /** where the masters' lists learn declared masters from (none when MASTERS_FROM_LEDGER=false) */
  private readonly declaredMasters: (() => MasterSource | undefined) | undefined

  constructor (private readonly opts: WritePathOptions) {
    this.declaredMasters = opts.learnMasters === false ? undefined : opts.masterSource ?? (() => opts.ledger())
    this.masters = new MasterList(opts.masterConns, this.declaredMasters)
  }

  /**
   * The masters `run blockchain sync where connection=...` names: the node's own list when it
   * knows them all (the scripts pass LEDGER_CONN), else a list of those first (learning from
   * the ledger too), so a connection given by hand is where sync goes.
   */
  mastersAt (connection: string): MasterList {
    const named = MasterList.parse(connection, 'connection', this.declaredMasters)
    const known = this.masters.addresses
    return named.addresses.every(address => known.includes(address)) ? this.masters : named
  }

  /** `master=` of the command, used alone (no learning, no LEDGER_CONN), else the node's masters. */
  private mastersFor (master: string | undefined): MasterList {
    if (master === undefined) return this.masters
    if (this.named?.text !== master) this.named = { text: master, list: MasterList.parse(master, 'master') }
    return this.named.list
  }

  /** Inserts a put or delete through the master. On the master it is ordered here. */
  async insert (op: LedgerOp, opts: { local: boolean, master?: string }): Promise<InsertResult> {
    const { log, metrics } = this.opts
    const id = policyId(op.policy)
    const type = policyType(op.policy)
    try {
      const ledger = this.opts.ledger()
      const standby = ledger.isMaster ? await this.standbyWithWriter() : undefined
      if (standby !== undefined && !standby.trusted) return this.deferUntilTrusted(op, opts, standby.defer)
      if (standby !== undefined) return await this.insertThroughActive(ledger, op, standby.address)
      if (ledger.isMaster) {
        checkSealedForMaster(op, this.opts.signer())
        const entry = await this.submitHere(ledger, op)
        if ('ledger' in entry) return entry
        log.info({ id, type, op: op.op, seq: entry.seq }, 'policy accepted')
        metrics.inserts.inc({ result: 'accepted', reason: '' })
        return { id, seq: entry.seq, ledger: 'global' }
      }
      const result = await this.insertThroughMaster(ledger, op, opts)
      metrics.inserts.inc({ result: result.ledger === 'local' ? 'queued' : 'accepted', reason: '' })
      return result
    } catch (err) {
      metrics.inserts.inc({ result: 'rejected', reason: err instanceof LedgerMeshError ? err.code : 'internal' })
      log.warn({ id, type, op: op.op, code: (err as LedgerMeshError).code, err: errorMessage(err) }, 'policy rejected')
      throw err
    }
  }

  /**
   * The active master's own commit. When the writer lease moved between this master's last
   * look and its commit, the database's fence refuses the commit (`not_active`) and nothing
   * was written: the insert then goes to the master that writes now, or is ordered here again
   * if this master holds the lease once more.
   */
  private async submitHere (ledger: Ledger, op: LedgerOp): Promise<Entry | InsertResult> {
    try {
      return await ledger.submit(op)
    } catch (err) {
      if (!(err instanceof LedgerMeshError && err.code === 'not_active') || this.opts.standby === undefined) throw err
      const standby = await this.standbyWhile(s => s === undefined || s.address === null)
      this.opts.log.info({ id: policyId(op.policy), active: standby?.address }, 'the writer lease moved before this master\'s commit: the insert goes to the active master')
      if (standby === undefined) return await ledger.submit(op)
      if (!standby.trusted) throw err
      return await this.insertThroughActive(ledger, op, standby.address)
    }
  }

  /**
   * A replica's insert: sent to the master over `/ledgermesh/insert/1.0.0`. With local=true
   * and the master unreachable, it waits in the durable outbox (visible here as "local") and
   * goes out when the master is back. On success the call returns once the replica itself
   * holds the entry (read-your-writes), or after a short wait if sync is slow.
   */
  private async insertThroughMaster (ledger: Ledger, op: LedgerOp, opts: { local: boolean, master?: string }): Promise<InsertResult> {
    const { log } = this.opts
    const id = policyId(op.policy)
    const insert = this.opts.insert()
    const sync = this.opts.sync()
    if (insert === undefined || sync?.keepsReplica !== true) {
      throw new LedgerMeshError('master_unreachable', 'blockchain sync is not running on this node (run blockchain sync first)')
    }
    const masters = this.mastersFor(opts.master)
    try {
      const attempt = submitToMasters(insert, masters, op, {
        onRetry: (failed, err, next) => { log.info({ id, master: failed, next, code: (err as LedgerMeshError).code, err: errorMessage(err) }, 'the master did not take the insert; trying the next') }
      })
      // local=true: a timeout past LOCAL_ACK_MS keeps it in the outbox (below); the attempt goes on
      const answer = opts.local
        ? await pTimeout(attempt, { milliseconds: LOCAL_ACK_MS, message: new LedgerMeshError('timeout', `no master answered within ${LOCAL_ACK_MS} ms (local=true: kept here, sent on from the outbox)`) })
        : await attempt
      if ('already' in answer) return await this.alreadyHere(ledger, op, answer.already)
      const seq = answer.accepted.seq
      log.info({ id, type: policyType(op.policy), seq }, 'policy accepted by the master')
      await this.applyAnswered(ledger, op, answer.accepted)
      if (this.opts.readYourWrites !== false) await ledger.waitForSeq(seq, READ_YOUR_WRITES_MS)
      return { id, seq, ledger: 'global' }
    } catch (err) {
      // local=true: anything but a refusal of this policy (the master unreachable, slow,
      // overloaded, its store failing) keeps the insert in the durable outbox. The master may
      // have committed it anyway; the outbox's re-submit then finds it already on the ledger.
      // A node without JOIN_TOKEN that is not admitted yet keeps it too, for `admit node`.
      const keepUnadmitted = this.opts.keepUnadmitted === true
      if (!opts.local || !(err instanceof LedgerMeshError) || err.code === 'duplicate_id' || givesUpInsert(err, keepUnadmitted)) throw err
      const waitsForAdmission = keepUnadmitted && notAdmittedRefusal(err)
      await sync.keepLocal(op)
      log.warn({ id, type: policyType(op.policy), code: err.code, err: err.message }, waitsForAdmission
        ? 'this node is not admitted yet: the insert waits in the outbox and goes out once the master admits it'
        : 'the master did not take the insert now: kept in the outbox')
      void sync.flushOutbox()
      return { id, ledger: 'local' }
    }
  }

  /**
   * A master whose key the ledger does not trust yet (MASTER_APPROVAL=manual, or the active
   * master has not declared it yet): its writes would be refused, so `local=true` ones (its
   * own declaration in the start-up script) wait in memory and go out once it is trusted.
   */
  private deferUntilTrusted (op: LedgerOp, opts: { local: boolean }, defer: (op: LedgerOp) => void): InsertResult {
    if (!opts.local) throw new LedgerMeshError('not_active', 'this master\'s key is not declared on the ledger yet (with MASTER_APPROVAL=manual an admin runs `approve master where key = ...` on the active master): it cannot write until then')
    defer(op)
    this.opts.log.info({ id: policyId(op.policy), type: policyType(op.policy) }, 'this master is not trusted yet: the insert goes out once it is')
    return { id: policyId(op.policy), ledger: 'local' }
  }

  /**
   * The standby state of this master, once it knows a writer to forward to. A trusted standby
   * may know none for a moment: before its first read of the writer lease, or while another
   * master takes over. It waits for one (or to become the writer itself) rather than refuse
   * its own start-up script's insert; past WRITER_WAIT_MS it answers with what it knows.
   */
  private async standbyWithWriter (): Promise<Standby> {
    return await this.standbyWhile(s => s !== undefined && s.trusted && s.address === null)
  }

  /** The standby state, polled every WRITER_POLL_MS while `waiting` holds, for WRITER_WAIT_MS at most. */
  private async standbyWhile (waiting: (standby: Standby) => boolean): Promise<Standby> {
    const until = performance.now() + WRITER_WAIT_MS
    let standby = this.opts.standby?.()
    while (waiting(standby) && performance.now() < until) {
      await sleep(WRITER_POLL_MS)
      standby = this.opts.standby?.()
    }
    return standby
  }

  /**
   * A standby master's insert: sent to the active master, and answered once this master,
   * following the database, holds the entry.
   */
  private async insertThroughActive (ledger: Ledger, op: LedgerOp, active: string | null): Promise<InsertResult> {
    const insert = this.opts.insert()
    if (active === null) throw new LedgerMeshError('not_active', 'this master stands by and no master holds the writer lease right now: try again shortly', { retryAfterSeconds: 1 })
    if (insert === undefined) throw new LedgerMeshError('master_unreachable', 'blockchain sync is not running on this node (run blockchain sync first)')
    const { seq } = await insert.submit(tcpAddress(active), op)
    this.opts.log.info({ id: policyId(op.policy), type: policyType(op.policy), seq, active }, 'policy accepted by the active master')
    this.opts.metrics.inserts.inc({ result: 'accepted', reason: '' })
    await ledger.waitForSeq(seq, READ_YOUR_WRITES_MS)
    return { id: policyId(op.policy), seq, ledger: 'global' }
  }

  /**
   * A retried insert the master says it holds already (submitToMasters): done, once this
   * replica shows it (a put: the policy with its seq; a delete: the policy gone). A replica
   * that does not within the read-your-writes wait answers the master's duplicate_id.
   */
  private async alreadyHere (ledger: Ledger, op: LedgerOp, duplicate: LedgerMeshError): Promise<InsertResult> {
    const id = policyId(op.policy)
    const target = op.op === 'delete' ? String(policyBody(op.policy).policy_id) : id
    const done = (): boolean => op.op === 'put' ? ledger.state.seqOf(id) !== undefined : !ledger.state.has(target)
    if (!done() && this.opts.readYourWrites !== false) {
      const { promise, resolve } = Promise.withResolvers<void>()
      const check = (): void => { if (done()) resolve() }
      const timer = setTimeout(resolve, READ_YOUR_WRITES_MS)
      ledger.on('appended', check)
      try {
        await promise
      } finally {
        clearTimeout(timer)
        ledger.off('appended', check)
      }
    }
    if (!done()) throw duplicate
    this.opts.log.info({ id, seq: ledger.state.seqOf(id) }, 'a retried insert was on the ledger already (an earlier try reached the master)')
    return op.op === 'put' ? { id, seq: ledger.state.seqOf(id), ledger: 'global' } : { id, ledger: 'global' }
  }

  /**
   * Read-your-writes without waiting for sync: when the master's answer carries the entry's
   * chain link and its own signed head, and this replica's head is the entry's predecessor,
   * the entry is applied here at once, through the same checks as any sync batch (chain link,
   * the master's signature on the head, the policy's signature and authorization). Anything
   * else (a batched commit, a replica behind, a check failing) leaves it to sync.
   */
  private async applyAnswered (ledger: Ledger, op: LedgerOp, answer: Submitted): Promise<void> {
    const { link, head, seq } = answer
    if (link === undefined || head === undefined || head.seq !== seq || head.hash !== link.hash) return
    const current = ledger.head
    if (current.seq !== seq - 1 || current.hash !== link.prevHash) return
    try {
      await ledger.applyBatch([{ seq, op: op.op, policy: op.policy, prevHash: link.prevHash, hash: link.hash }], head)
    } catch (err) {
      this.opts.log.debug({ seq, err: errorMessage(err) }, 'the answered entry was not applied here; sync brings it')
    }
  }
}
