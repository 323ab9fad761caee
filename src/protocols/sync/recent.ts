import type { Entry } from '../../ledger/entry.js'
import { encodeEntry } from './codec.js'

/** How many of the last appended entries are kept for the watch streams. */
export const RECENT_ENTRIES = 256

/**
 * The entries this node appended last, each encoded once: what every watch stream it serves
 * pushes next. Without it each stream read each new entry back from the store and encoded it
 * again (twice, with the check that its last entry still stands), once per stream and insert.
 * A run that does not follow the last one (the state was replaced, or the log rewound and
 * appended again) starts it anew; reads past the ledger's head (a rewind not yet followed by
 * an append) are left to the store.
 */
export class RecentEntries {
  /** (encoded on first use: a replica applying a catch-up may serve no one) */
  private entries: Array<{ entry: Entry, encoded?: Uint8Array }> = []

  /** Follows the ledger's 'appended' event (no entries: the state was replaced). */
  note (appended: readonly Entry[] | undefined): void {
    if (appended === undefined) return
    const last = this.entries[this.entries.length - 1]?.entry
    const first = appended[0]
    if (first === undefined || last === undefined || first.seq !== last.seq + 1 || first.prevHash !== last.hash) this.entries = []
    for (const entry of appended.slice(-RECENT_ENTRIES)) this.entries.push({ entry })
    if (this.entries.length > RECENT_ENTRIES) this.entries = this.entries.slice(-RECENT_ENTRIES)
  }

  /** The entry at `seq`, if kept and not past `head` (the ledger's head seq now). */
  get (seq: number, head: number): { entry: Entry, encoded: Uint8Array } | undefined {
    if (seq > head || this.entries.length === 0) return undefined
    const kept = this.entries[seq - this.entries[0].entry.seq]
    if (kept?.entry.seq !== seq) return undefined
    kept.encoded ??= encodeEntry(kept.entry)
    return kept as { entry: Entry, encoded: Uint8Array }
  }

  clear (): void { this.entries = [] }
}
