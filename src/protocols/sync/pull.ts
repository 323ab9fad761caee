import { LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import { type Entry, GENESIS_HASH } from '../../ledger/entry.js'
import type { Head, SignedHead } from '../../ledger/head.js'
import { type Progress, clientError, isDiverged, readResponse, reject, writeRequest } from './client.js'
import { WIRE_VERSION } from './constants.js'
import type { PullOptions, PullResult, SyncContext, SyncTarget } from './context.js'
import { type Recovery, type RunApplier, RunAssembler, link } from './run.js'
import type { SyncRequest } from './codec.js'
import type { Sessions } from './session.js'

/** One request's answer, its entries already checked to link on from `after` (no entries and no head: the source has nothing newer, or nothing signed). */
interface Answer { entries: Entry[], tip: Head, head?: SignedHead, more: boolean }

/**
 * The client's pull: catches the local replica up from a source, in as many requests as the
 * limit needs. A replica whose head is not on the source's chain finds the last seq it shares
 * with the source, and is rewound to it only once the source's run from there has verified.
 */
export class Puller {
  constructor (private readonly ctx: SyncContext, private readonly applier: RunApplier, private readonly sessions: Sessions) {}

  async pull (target: SyncTarget, opts: PullOptions = {}): Promise<PullResult> {
    const { ledger, log } = this.ctx.components
    const progress: Progress = { bytesReceived: 0, requests: 0 }
    try {
      const applied = await this.catchUp(target, ledger.head, progress, opts.signal)
      return { applied, head: ledger.head, ...progress }
    } catch (err) {
      if (!isDiverged(err)) throw err
    }
    const from = ledger.head.seq
    log.warn({ source: target.toString(), head: from }, 'this replica diverged from its sync source; looking for the last seq both agree on')
    const agreed = await this.findAgreement(target, progress, opts.signal)
    const recovery: Recovery = { rewound: false }
    let applied: number
    try {
      applied = await this.catchUp(target, agreed, progress, opts.signal, recovery)
    } catch (err) {
      if (isDiverged(err)) throw new LedgerMeshError('conflict', `sync source ${target.toString()} keeps answering diverged: ${errorMessage(err)}`)
      throw err
    }
    if (!recovery.rewound) return { applied, head: ledger.head, ...progress }
    log.warn({ source: target.toString(), from, to: agreed.seq, head: ledger.head.seq }, 'replica rewound to the last seq it shares with its source and re-synced')
    return { applied, head: ledger.head, ...progress, recovered: { from, to: agreed.seq } }
  }

  /** Requests from `start` until a signed head covers what was received; applies each such run. */
  private async catchUp (target: SyncTarget, start: Head, progress: Progress, signal?: AbortSignal, recovery?: Recovery): Promise<number> {
    const run = new RunAssembler(this.ctx, this.applier, start)
    let applied = 0
    let next: Promise<Answer> | undefined
    for (;;) {
      const answer = await (next ?? this.request(target, run.tip, this.ctx.maxEntries, progress, signal))
      next = undefined
      run.take(answer.entries, answer.tip)
      if (run.size === 0) {
        // Nothing after our head: the source is level with us, or behind, or has no signed head.
        const head = answer.head
        if (answer.more && head !== undefined && head.seq > run.tip.seq) {
          throw reject(this.ctx, new LedgerMeshError('bad_message', `sync source said more past seq ${run.tip.seq} but sent no entries`))
        }
        return applied
      }
      const head = run.endsAt(answer.head, answer.more)
      if (head === undefined) continue
      if (answer.more) {
        // Pipelined: the source reads and sends the next page while this run is verified and
        // written. Its links are checked against this run's tip, so a run that fails to apply
        // leaves the next answer unused (and its failure unobserved: the apply error is thrown).
        next = this.request(target, run.tip, this.ctx.maxEntries, progress, signal)
        next.catch(() => {})
      }
      applied += await run.apply(head, recovery)
      recovery = undefined
      if (next === undefined) return applied
    }
  }

  /**
   * One request: the entries after `after` (links checked), and the head, or only that the
   * head the replica holds is still the source's (current). It goes on the session stream
   * kept from the last request to `target` when there is one (once more on a new stream when
   * that one turns out closed before any answer), and leaves its stream there when the
   * source keeps it open.
   */
  private async request (target: SyncTarget, after: Head, limit: number, progress: Progress, callerSignal?: AbortSignal): Promise<Answer> {
    progress.requests++
    const signal = this.ctx.deadline(callerSignal)
    const held = this.ctx.components.ledger.signedHead
    const holdsHead = after.seq > 0 && held?.seq === after.seq && held.hash === after.hash
    const request: SyncRequest = { version: WIRE_VERSION, afterSeq: after.seq, afterHash: after.hash, limit, watch: false, keepOpen: true, holdsHead }
    for (let retry = true; ; retry = false) {
      const session = await this.sessions.take(target, signal)
      let answered = false
      try {
        await writeRequest(this.ctx, session.lp, request, signal)
        const entries: Entry[] = []
        let tip = after
        for (;;) {
          const response = await readResponse(this.ctx, session.lp, signal, progress)
          answered = true
          if (response.currentSeq !== undefined && (!holdsHead || response.currentSeq !== after.seq)) {
            throw reject(this.ctx, new LedgerMeshError('bad_message', `sync source says current at seq ${response.currentSeq}, but this replica holds no signed head there (it asked after seq ${after.seq})`))
          }
          tip = link(this.ctx, tip, response.entries)
          entries.push(...response.entries)
          if (entries.length > limit) {
            throw reject(this.ctx, new LedgerMeshError('bad_message', `sync source sent more than the ${limit} entries asked for`))
          }
          if (response.head !== undefined || response.entries.length === 0) {
            if (response.open === true) this.sessions.park(target, session)
            else await session.stream.close({ signal }).catch(() => {})
            return { entries, tip, head: response.head, more: response.more }
          }
        }
      } catch (err) {
        session.stream.abort(toError(err))
        // a kept stream the source closed (its idle timeout) just as this request went out
        if (retry && session.reused && !answered && !(err instanceof LedgerMeshError) && !signal.aborted) continue
        throw clientError(this.ctx, err, target, signal, callerSignal)
      } finally {
        session.release()
      }
    }
  }

  /**
   * The last seq at which the local log and the source agree: probes seq − 1, − 2, − 4, …
   * down to 0, then narrows between the last probe that agreed and the first that did not
   * (a hash that matches vouches for every entry before it).
   */
  private async findAgreement (target: SyncTarget, progress: Progress, signal?: AbortSignal): Promise<Head> {
    const { ledger } = this.ctx.components
    const from = ledger.head.seq
    const agreesAt = async (seq: number): Promise<Head | undefined> => {
      if (seq <= 0) return { seq: 0, hash: GENESIS_HASH }
      const [entry] = await ledger.store.range(seq, 1)
      if (entry === undefined || entry.seq !== seq) return undefined
      try {
        await this.request(target, { seq, hash: entry.hash }, 0, progress, signal)
        return { seq, hash: entry.hash }
      } catch (err) {
        if (isDiverged(err)) return undefined
        throw err
      }
    }
    let bad = from
    let good: Head | undefined
    for (let step = 1; good === undefined; step *= 2) {
      const seq = Math.max(0, from - step)
      good = await agreesAt(seq)
      if (good === undefined) bad = seq
    }
    while (bad - good.seq > 1) {
      const mid = Math.floor((good.seq + bad) / 2)
      const agreed = await agreesAt(mid)
      if (agreed !== undefined) good = agreed
      else bad = mid
    }
    return good
  }
}
