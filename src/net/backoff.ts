/**
 * Exponential backoff with jitter: waits that double from `minMs` up to `maxMs`, each drawn
 * from the upper half of the current step ("equal jitter"). Nodes cut off together (a
 * partition, a master restart) then come back spread over that half instead of all in the
 * same millisecond, and a wait is never shorter than half its step.
 */
export class Backoff {
  private step: number

  constructor (private readonly minMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {
    this.step = minMs
  }

  /** The next wait, ms; the step after it doubles, up to maxMs. */
  next (): number {
    const wait = this.step / 2 + this.random() * (this.step / 2)
    this.step = Math.min(this.step * 2, this.maxMs)
    return Math.round(wait)
  }

  /** Back to the shortest wait (after a success). */
  reset (): void { this.step = this.minMs }

  /** whether the next wait is the shortest one */
  get atStart (): boolean { return this.step === this.minMs }
}
