import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { entryBytes } from '../ledger/entry.js'
import { headNote } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import { type SnapshotCapture, captureSnapshot } from '../ledger/snapshot/capture.js'
import type { SnapshotFiles } from '../ledger/snapshot/files.js'
import { encodeManifest } from '../ledger/snapshot/manifest.js'
import { encodeBundle } from '../ledger/tlog/tiles.js'
import { leafHash } from '../ledger/tlog/rfc6962.js'
import { type ChunkHash, rootFromChunks, subtreeRoot } from '../ledger/state-tree/snapshot-chunks.js'
import { type WitnessedView, witnessSetOf } from '../ledger/witnessed.js'
import type { Compactor } from './compactor.js'

/** How often the builder looks whether a snapshot is due (SNAPSHOT_INTERVAL bounds how often one is taken). */
const TICK_MS = 1000
/** Entries read from the store at once while a chunk is written. */
const READ_BATCH = 1024

export interface SnapshotBuilderOptions {
  ledger: () => Ledger | undefined
  files: SnapshotFiles
  /** the latest witnessed checkpoint this node holds */
  witnessed: () => WitnessedView | undefined
  /** SNAPSHOT_INTERVAL */
  intervalMs: number
  /** whether the node follows the log now (not after a fork) */
  following: () => boolean
  /** a replica's compaction, to the snapshots taken (RETAIN) */
  compactor?: Compactor
  log: Logger
}

/**
 * Every full node takes snapshots of the state it holds, for new nodes to start from: at most
 * once per SNAPSHOT_INTERVAL, at a head the network vouches for (on a network with witnesses,
 * only at the size of a witnessed checkpoint, whose cosignatures the manifest carries; else at
 * the master-signed head). The capture is instant (captureSnapshot); the chunks are then
 * written from the store in the background, and the snapshot is served once all are written.
 */
export class SnapshotBuilder {
  private timer?: NodeJS.Timeout
  private building = false
  private last?: { size: number, at: number, witnessed: boolean }
  /** the first snapshot waits an interval too: a node that just started has better things to do */
  private startedAt = 0

  constructor (private readonly opts: SnapshotBuilderOptions) {}

  start (): void {
    this.startedAt = Date.now()
    this.timer = setInterval(() => { void this.tick() }, TICK_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** The snapshot served: its size and whether witnesses cosigned its checkpoint. */
  get latest (): { size: number, witnessed: boolean } | undefined {
    return this.last === undefined ? undefined : { size: this.last.size, witnessed: this.last.witnessed }
  }

  /** Takes a snapshot when one is due, then compacts when RETAIN allows; answers the size taken. */
  async tick (): Promise<number | undefined> {
    const taken = await this.take()
    await this.opts.compactor?.run()
    return taken
  }

  private async take (): Promise<number | undefined> {
    const ledger = this.opts.ledger()
    if (ledger === undefined || this.building || !this.opts.following()) return undefined
    const head = ledger.head.seq
    const witnessed = this.opts.witnessed()
    if (this.last !== undefined && witnessed?.size === this.last.size && !this.last.witnessed) return await this.upgrade(witnessed)
    if (head === 0 || head === this.last?.size) return undefined
    if (Date.now() - (this.last?.at ?? this.startedAt) < this.opts.intervalMs) return undefined
    const onWitnessedNetwork = witnessSetOf(ledger) !== undefined
    // a network with witnesses: only where they vouched, so a new node checks all against them
    if (onWitnessedNetwork && witnessed?.size !== head) return undefined
    this.building = true
    const started = Date.now()
    let capture: SnapshotCapture
    try {
      capture = await captureSnapshot(ledger)
    } catch (err) {
      this.building = false
      this.opts.log.warn({ err: errorMessage(err), head }, 'no snapshot taken')
      return undefined
    }
    try {
      const note = onWitnessedNetwork ? witnessed!.note : headNote(capture.head)
      await this.write(ledger, capture, note)
      this.last = { size: capture.head.seq, at: Date.now(), witnessed: onWitnessedNetwork }
      this.opts.compactor?.note(capture, note, onWitnessedNetwork)
      this.opts.log.info({ size: capture.head.seq, policies: capture.head.state?.size, chunks: capture.chunks.length, witnessed: onWitnessedNetwork, ms: Date.now() - started }, 'snapshot taken')
      return capture.head.seq
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err), size: capture.head.seq }, 'the snapshot could not be written')
      await this.opts.files.discard(capture.head.seq).catch(() => {})
      return undefined
    } finally {
      this.building = false
    }
  }

  /**
   * Writes each chunk from the entries its seqs name (read from the store, never changed once
   * logged), with its subtree hash from those bytes; then checks the chunks lead to the signed
   * state root before the manifest names them.
   */
  private async write (ledger: Ledger, capture: SnapshotCapture, note: string): Promise<ChunkHash[]> {
    const size = capture.head.seq
    const hashes: ChunkHash[] = []
    for (const [index, chunk] of capture.chunks.entries()) {
      const texts: string[] = []
      const leaves: Array<{ path: Buffer, valueHash: Buffer }> = []
      for (let i = 0; i < chunk.seqs.length; i += READ_BATCH) {
        const entries = await ledger.store.entriesAt(chunk.seqs.slice(i, i + READ_BATCH))
        entries.forEach((entry, j) => {
          const text = entryBytes(entry)
          texts.push(text)
          leaves.push({ path: chunk.paths[i + j], valueHash: leafHash(text) })
        })
      }
      hashes.push({ hash: subtreeRoot(leaves, capture.depth), count: leaves.length })
      await this.opts.files.writeChunk(size, index, encodeBundle(texts))
    }
    if (rootFromChunks(hashes, capture.depth).toString('hex') !== capture.head.state?.root) {
      throw new LedgerMeshError('internal', `the snapshot at seq ${size} does not lead to its signed state root`)
    }
    await this.writeManifest(capture, hashes, note)
    await this.opts.files.publish(size)
    return hashes
  }

  private async writeManifest (capture: SnapshotCapture, chunks: ChunkHash[], note: string): Promise<void> {
    const manifest = { checkpoint: note, headHash: capture.head.hash, depth: capture.depth, chunks, frontier: capture.frontier }
    await this.opts.files.writeManifest(capture.head.seq, encodeManifest(manifest))
    // only the snapshot served needs its manifest kept (to add cosignatures to it)
    this.manifest = { capture, chunks }
  }

  private manifest?: { capture: SnapshotCapture, chunks: ChunkHash[] }

  /** The witnesses cosigned the snapshot's checkpoint since: its manifest carries their cosignatures. */
  private async upgrade (witnessed: WitnessedView): Promise<number | undefined> {
    const kept = this.manifest
    if (kept === undefined || kept.capture.head.seq !== witnessed.size || this.last === undefined) return undefined
    await this.writeManifest(kept.capture, kept.chunks, witnessed.note)
    this.last.witnessed = true
    this.opts.compactor?.noteWitnessed(witnessed.size, witnessed.note)
    return witnessed.size
  }
}
