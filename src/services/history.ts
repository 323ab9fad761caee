import type { NodePort } from '../commands/port.js'

/** Samples kept: one every HISTORY_EVERY_MS over the last ten minutes. */
export const HISTORY_EVERY_MS = 5000
export const HISTORY_SAMPLES = 120

/** What the console's charts draw, sampled: counters (rates come from two samples) and the lag. */
export interface HistorySample {
  /** ms since the epoch */
  t: number
  /** the ledger head: its growth is the insert rate */
  head: number
  /** sync entries received and served so far */
  entries_in: number
  entries_out: number
  /** a replica: how far behind its source; a master: the largest lag among its replicas */
  lag: number
}

/** The node's figures now. */
export function sampleNode (node: NodePort): HistorySample {
  const status = node.status()
  const sync = status.sync as { entriesIn?: number, entriesOut?: number, lag?: { seq?: number } } | undefined
  const lag = node.role === 'master'
    ? Math.max(0, ...node.network().nodes.map(n => n.lag ?? 0))
    : sync?.lag?.seq ?? 0
  return { t: Date.now(), head: node.hasLedger ? node.ledger.head.seq : 0, entries_in: sync?.entriesIn ?? 0, entries_out: sync?.entriesOut ?? 0, lag }
}

/**
 * A ring of samples taken every `everyMs` (`GET /v1/history`): the last minutes of the node's
 * insert and sync rates and lag, there as soon as the console opens.
 */
export class History {
  private readonly samples: HistorySample[] = []
  private timer?: NodeJS.Timeout

  constructor (private readonly sample: () => HistorySample, readonly everyMs = HISTORY_EVERY_MS, private readonly size = HISTORY_SAMPLES) {}

  start (): void {
    if (this.timer !== undefined) return
    this.take()
    this.timer = setInterval(() => { this.take() }, this.everyMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  list (): HistorySample[] { return [...this.samples] }

  private take (): void {
    try {
      this.samples.push(this.sample())
    } catch { return } // no ledger yet: nothing to sample
    if (this.samples.length > this.size) this.samples.shift()
  }
}
