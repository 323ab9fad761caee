import type { Logger } from '../../base/logger.js'

/** At most this many (assignment, problem) pairs are remembered, whatever the ledger holds. */
export const MAX_REMEMBERED_WARNINGS = 1000

/**
 * The operator's problems with its assignments (a profile not in the replica yet, no runner
 * for its kind, ...), each logged once rather than at every reconcile. What is remembered
 * comes from outside input — assignment ids × problem texts — so it stays bounded: an
 * assignment's problems are forgotten when the assignment is gone (`retainOnly`), and past
 * `max` remembered problems a new one is neither remembered nor logged (one line says so)
 * until forgetting makes room.
 */
export class AssignmentWarnings {
  private readonly byAssignment = new Map<string, Set<string>>()
  private count = 0
  private saidFull = false

  constructor (private readonly log: Logger, private readonly max = MAX_REMEMBERED_WARNINGS) {}

  /** how many (assignment, problem) pairs are remembered */
  get size (): number { return this.count }

  /** Logs `text` about `assignmentId`, unless it was logged already. */
  warn (assignmentId: string, text: string, fields: Record<string, unknown>): void {
    const texts = this.byAssignment.get(assignmentId)
    if (texts?.has(text) === true) return
    if (this.count >= this.max) {
      if (!this.saidFull) {
        this.saidFull = true
        this.log.warn({ remembered: this.count }, `more than ${this.max} problems with this worker's assignments: further ones are not logged until some of those assignments are gone`)
      }
      return
    }
    if (texts === undefined) this.byAssignment.set(assignmentId, new Set([text]))
    else texts.add(text)
    this.count++
    this.log.warn({ assignment: assignmentId, ...fields }, text)
  }

  /** Forgets the problems of every assignment not in `present`. */
  retainOnly (present: ReadonlySet<string>): void {
    for (const [id, texts] of this.byAssignment) {
      if (present.has(id)) continue
      this.count -= texts.size
      this.byAssignment.delete(id)
    }
    if (this.count < this.max) this.saidFull = false
  }
}
