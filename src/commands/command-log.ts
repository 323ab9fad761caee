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
  // A ring of plain columns, formatted only when listed: a node logs every command it runs,
  // and an entry object with its time as text for each was garbage that lived through a few
  // of V8's young collections before the log let go of it.
  private readonly times: Float64Array
  private readonly sources: string[] = []
  private readonly lines: Int32Array
  private readonly texts: string[] = []
  /** entries added since the last clear */
  private added = 0

  constructor (private readonly limit = 200) {
    this.times = new Float64Array(limit)
    this.lines = new Int32Array(limit)
  }

  /** A command from `source` (a script, or how it came in) at `line` (0: no line to name). */
  add (source: string, line: number, text: string): void {
    const at = this.added++ % this.limit
    this.times[at] = Date.now()
    this.sources[at] = source
    this.lines[at] = line
    this.texts[at] = text.length > 500 ? text.slice(0, 497) + '...' : text
  }

  list (): LogEntry[] {
    const count = Math.min(this.added, this.limit)
    const entries: LogEntry[] = []
    for (let i = this.added - count; i < this.added; i++) {
      const at = i % this.limit
      entries.push({ time: new Date(this.times[at]!).toISOString(), where: this.lines[at] === 0 ? this.sources[at]! : `${this.sources[at]!}:${this.lines[at]!}`, text: this.texts[at]! })
    }
    return entries
  }

  clear (): void {
    this.added = 0
    this.sources.length = 0
    this.texts.length = 0
  }
}
