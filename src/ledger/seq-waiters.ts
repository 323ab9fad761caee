import { LedgerMeshError } from '../base/errors.js'
import type { EventEmitter } from 'node:events'

/** What SeqWaiters watches: a ledger, whose head moves with each 'appended' event. */
type HeadEmitter = Pick<EventEmitter, 'on' | 'off'> & { readonly head: { seq: number } }

/** Callers waiting at once for the head to reach a seq (blocking reads, read-your-writes). */
export const MAX_SEQ_WAITERS = 1000

/**
 * Callers waiting for a ledger's head to reach a seq (blocking reads, read-your-writes), each
 * listening to 'appended' until it does or its time is up. Their number is capped: past the
 * cap a caller is told `overloaded` rather than queued.
 */
export class SeqWaiters {
  private waiting = 0

  constructor (private readonly ledger: HeadEmitter, private readonly max: number) {}

  /** Resolves once the head reaches `seq`, or after `timeoutMs` (false then). */
  async wait (seq: number, timeoutMs: number): Promise<boolean> {
    const { ledger } = this
    if (ledger.head.seq >= seq) return true
    if (this.waiting >= this.max) {
      throw new LedgerMeshError('overloaded', `${this.waiting} callers already wait for the ledger head (at most ${this.max}): try again shortly`, { retryAfterSeconds: 1 })
    }
    this.waiting++
    return await new Promise<boolean>(resolve => {
      const onAppended = (): void => {
        if (ledger.head.seq < seq) return
        clearTimeout(timer)
        ledger.off('appended', onAppended)
        resolve(true)
      }
      const timer = setTimeout(() => { ledger.off('appended', onAppended); resolve(false) }, timeoutMs)
      ledger.on('appended', onAppended)
    }).finally(() => { this.waiting-- })
  }
}
