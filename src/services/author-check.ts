import { setImmediate as yieldToEvents } from 'node:timers/promises'
import { errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Entry } from '../ledger/entry.js'
import { verifyPool } from '../policies/verify-pool.js'
import { policyBody } from '../policies/policy.js'

/**
 * Policies handed to the verify pool at once: large enough that its threads are kept busy (it
 * waits for a batch's last share), small enough that the calling thread's share (about a tenth
 * of a second) leaves the node answering between batches.
 */
const BATCH = 2048

export interface AuthorCheckStatus {
  verified: number
  total: number
  done: boolean
  /** the policy whose author signature did not verify, when one did not */
  failed?: { id: string, seq: number }
}

/**
 * A node that started from a snapshot holds its policies checked against the state root the
 * master signed and the witnesses cosigned, but has not checked each author's signature: it
 * does so in the background, on every core (the verify pool), and reports progress. A bad
 * signature means the master (and any witnesses) vouched for a state no honest history holds:
 * `onInvalid` raises the fork alarm and the node stops following.
 */
export class AuthorCheck {
  private verified = 0
  private done = false
  private failed?: { id: string, seq: number }
  private stopped = false

  constructor (private readonly opts: { entries: Entry[], log: Logger, onInvalid: (reason: string) => Promise<void> }) {}

  get status (): AuthorCheckStatus {
    return { verified: this.verified, total: this.opts.entries.length, done: this.done, ...(this.failed !== undefined ? { failed: this.failed } : {}) }
  }

  async run (): Promise<void> {
    const { entries, log } = this.opts
    const started = Date.now()
    for (let i = 0; i < entries.length && !this.stopped; i += BATCH) {
      const batch = entries.slice(i, i + BATCH)
      const invalid = await verifyPool.firstInvalid(batch.map(e => e.policy))
      if (invalid >= 0) {
        const entry = batch[invalid]
        this.failed = { id: String(policyBody(entry.policy).id), seq: entry.seq }
        const reason = `policy ${this.failed.id} (seq ${entry.seq}) in the snapshot this node started from has an author signature that does not verify`
        await this.opts.onInvalid(reason).catch(err => { log.error({ err: errorMessage(err) }, 'could not raise the fork alarm') })
        return
      }
      this.verified += batch.length
      await yieldToEvents()
    }
    if (this.stopped) return
    this.done = true
    log.info({ policies: this.verified, ms: Date.now() - started }, 'every author signature of the snapshot verified')
  }

  stop (): void { this.stopped = true }
}
