import { errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { parseDuration } from '../base/duration.js'
import type { StateCommitment } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import type { SnapshotCapture } from '../ledger/snapshot/capture.js'
import type { StoreBase } from '../ledger/store.js'

/**
 * RETAIN: how much of the log a replica keeps whole. `witnessed` (the default): compact to
 * each snapshot whose checkpoint the witnesses cosigned (on a network without witnesses,
 * nothing is compacted); `all`: never; a number of entries, or a duration: compact to the
 * newest snapshot at least that far behind the head.
 */
export type Retain = { kind: 'witnessed' } | { kind: 'all' } | { kind: 'entries', entries: number } | { kind: 'duration', ms: number }

/** RETAIN as written: undefined when it is none of the forms. */
export function parseRetain (text: string): Retain | undefined {
  const value = text.trim().toLowerCase()
  if (value === 'witnessed' || value === 'all') return { kind: value }
  if (/^[1-9][0-9]{0,15}$/.test(value)) return { kind: 'entries', entries: Number(value) }
  const duration = parseDuration(value)
  return duration === undefined ? undefined : { kind: 'duration', ms: duration.ms }
}

/** Snapshots kept as points compaction may move to (the newest that qualifies is used). */
const MAX_POINTS = 4

interface Point {
  size: number
  hash: string
  state: StateCommitment
  checkpoint: string
  at: number
  witnessed: boolean
  /** the seqs of the entries live at `size`: what the store keeps at or before it */
  keep: Set<number>
}

/**
 * Compaction of a replica's store: at a snapshot point, the entries dead there (deleted or
 * replaced policies) are dropped, the live ones and every leaf hash kept, so proofs and
 * consistency checks still work and the state folds from what is left. The points are the
 * snapshots the node took (their live entries are known exactly then), so every snapshot a
 * node serves can still be built from what it keeps.
 */
export class Compactor {
  private readonly points: Point[] = []
  private running = false

  constructor (private readonly opts: { ledger: () => Ledger | undefined, retain: Retain, log: Logger }) {}

  /** A snapshot was taken: a point compaction may move to. */
  note (capture: SnapshotCapture, checkpoint: string, witnessed: boolean): void {
    if (this.opts.retain.kind === 'all' || capture.head.state === undefined) return
    const keep = new Set<number>()
    for (const chunk of capture.chunks) for (const seq of chunk.seqs) keep.add(seq)
    this.points.push({ size: capture.head.seq, hash: capture.head.hash, state: capture.head.state, checkpoint, at: Date.now(), witnessed, keep })
    if (this.points.length > MAX_POINTS) this.points.shift()
  }

  /** The witnesses cosigned the checkpoint of the point at `size` since it was taken. */
  noteWitnessed (size: number, checkpoint: string): void {
    const point = this.points.find(p => p.size === size)
    if (point !== undefined) Object.assign(point, { witnessed: true, checkpoint })
  }

  /** Compacts to the newest point RETAIN allows, if any is past the store's base; answers it. */
  async run (): Promise<number | undefined> {
    const ledger = this.opts.ledger()
    if (ledger === undefined || ledger.isMaster || ledger.store.kind !== 'level' || this.running) return undefined
    const point = this.points.filter(p => p.size > ledger.logStart && this.allows(p, ledger.head.seq)).pop()
    if (point === undefined) return undefined
    this.running = true
    try {
      // the point must still be on this node's log (a replica may have been rewound since)
      const [entry] = await ledger.store.range(point.size, 1)
      if (entry?.seq !== point.size || entry.hash !== point.hash) return undefined
      const from = ledger.logStart
      const leaves = Buffer.alloc(32 * (point.size - from))
      for (let seq = from + 1; seq <= point.size; seq++) ledger.tree.leafHash(seq - 1).copy(leaves, 32 * (seq - from - 1))
      const old = await ledger.store.base()
      const base: StoreBase = { seq: point.size, hash: point.hash, state: point.state, checkpoint: point.checkpoint, frontier: old?.frontier ?? [], frontierSize: old === undefined ? 0 : (old.frontierSize ?? old.seq) }
      const started = Date.now()
      await ledger.store.compact(base, point.keep, leaves)
      ledger.logStart = point.size
      this.opts.log.info({ through: point.size, kept: point.keep.size, ms: Date.now() - started }, 'compacted the log: entries dead at the snapshot dropped, leaf hashes kept')
      this.points.splice(0, this.points.indexOf(point) + 1)
      return point.size
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err), through: point.size }, 'compaction failed; the log is kept as it was')
      return undefined
    } finally {
      this.running = false
    }
  }

  private allows (point: Point, head: number): boolean {
    const retain = this.opts.retain
    switch (retain.kind) {
      case 'all': return false
      case 'witnessed': return point.witnessed
      case 'entries': return head - point.size >= retain.entries
      case 'duration': return Date.now() - point.at >= retain.ms
    }
  }
}
