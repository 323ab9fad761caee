/** One line of the event or the error log. */
export interface LogEntry {
  time: string
  /** the script and line, or how the command came in */
  where: string
  text: string
}

/**
 * AnyLog's `get event log` and `get error log`: the last commands run and the last errors
 * met, newest last, bounded (a node runs for months; its logs must not grow with it).
 */
export class CommandLog {
  private readonly entries: LogEntry[] = []

  constructor (private readonly limit = 200) {}

  add (where: string, text: string): void {
    this.entries.push({ time: new Date().toISOString(), where, text: text.length > 500 ? text.slice(0, 497) + '...' : text })
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit)
  }

  list (): LogEntry[] {
    return [...this.entries]
  }

  clear (): void {
    this.entries.length = 0
  }
}
