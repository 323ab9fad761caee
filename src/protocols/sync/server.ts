import type { Connection, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import { LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import type { Head, SignedHead } from '../../ledger/head.js'
import { publicKeyHexOf } from '../../policies/keys.js'
import { deadlineSignal } from '../../net/deadline.js'
import { FRAME_RESERVE_BYTES, READ_PAGE, SYNC_ERROR } from './constants.js'
import { answerProof } from './prove.js'
import { type EncodedResponse, type ProofQuery, type SyncError, type SyncRequest, decodeRequest, encodeEntry, encodeFrame, entryFrameSize, varintSize } from './codec.js'
import { type SyncContext, short } from './context.js'
import { RecentEntries } from './recent.js'
import type { Entry } from '../../ledger/entry.js'

/**
 * The serving side of `/ledgermesh/sync/1.0.0` (any node with a ledger: the master, or a
 * replica relaying to its workers): one request, then the entries after the client's head in
 * frames of at most maxMessageBytes and at most maxEntries per request, then the
 * master-signed head (or, to a client that holds that very head, only its seq). A client
 * that asks to keep the stream open (a session) sends its next request on it, until it
 * closes it or stays silent for sessionIdleMs. A client whose head is not on this node's chain gets a `diverged`
 * error frame. In watch mode the stream stays open and every append is pushed as a new run,
 * with the head as a keepalive.
 */
export class SyncServer {
  /** serving watch streams waiting for the ledger to append */
  private readonly waiters = new Set<() => void>()

  /** this node's own key: a node whose own key is revoked serves no one */
  private readonly selfKey: string | undefined

  constructor (private readonly ctx: SyncContext) {
    this.selfKey = publicKeyHexOf(ctx.components.libp2p.peerId)
  }

  /** the last appended entries, encoded once for every watch stream */
  private readonly recent = new RecentEntries()

  /** Wakes every watch stream being served (an append, with its entries, or stop()). */
  readonly wake = (appended?: Entry[]): void => {
    this.recent.note(appended)
    for (const wake of this.waiters) wake()
  }

  async serve (stream: Stream, connection: Connection): Promise<void> {
    const log = this.ctx.components.log
    const peer = connection.remotePeer.toString()
    const lp = this.ctx.frames(stream)
    try {
      // One request, or a session's requests one after another (keep_open): each is checked
      // (admission, divergence) and answered on its own.
      for (let idle = false; ; idle = true) {
        const request = await this.readRequest(lp, stream, peer, idle)
        if (request === undefined) return
        const key = publicKeyHexOf(connection.remotePeer)
        if (await this.refused(lp, stream, peer, key)) return
        if (request.prove !== undefined) {
          await this.sendProof(lp, stream, request.prove)
          return
        }
        const start = this.ctx.components.ledger.logStart
        if (request.afterSeq < start) {
          await this.sendError(lp, stream, { code: SYNC_ERROR.compacted, message: `this node keeps the log whole only after seq ${start} (a snapshot of the state there, which it serves over the snapshot protocol, or a compaction): ask it for its snapshot, or sync entries before it from a node that holds the whole log` }, this.ctx.components.ledger.signedHead)
          return
        }
        const problem = await this.divergence(request)
        if (problem !== undefined) {
          log.info({ peer, afterSeq: request.afterSeq, head: this.ctx.components.ledger.head.seq }, 'sync client diverged from this node\'s chain')
          await this.sendError(lp, stream, { code: SYNC_ERROR.diverged, message: problem }, this.ctx.components.ledger.signedHead)
          return
        }
        this.ctx.peers.note(peer, request.afterSeq)
        if (request.watch) {
          await this.serveWatch(lp, stream, request, peer, key)
          return
        }
        const signal = this.ctx.deadline()
        const open = request.keepOpen === true && this.ctx.started()
        if (this.holdsCurrentHead(request)) {
          // The client verified this very head already: say so instead of sending it again.
          await this.writeFrame(lp, { entries: [], more: false, currentSeq: request.afterSeq, open }, signal)
        } else {
          await this.sendRun(lp, request.afterSeq, Math.min(request.limit, this.ctx.maxEntries), signal, open)
        }
        if (!open) {
          await this.finish(stream, signal)
          return
        }
      }
    } catch (err) {
      // A peer that stopped reading (backpressure), a reset, stop(), or a store failure.
      log.debug({ peer, err: errorMessage(err) }, 'sync stream ended with an error')
      if (err instanceof LedgerMeshError && err.code !== 'timeout' && stream.writeStatus === 'writable') {
        await this.sendError(lp, stream, { code: SYNC_ERROR.internal, message: err.message }).catch(() => {})
      }
      stream.abort(toError(err))
    }
  }

  /**
   * Whether the client may not be served (its key not admitted, or revoked; or this node
   * itself revoked): if so it is told why, the stream is closed, and true is returned. Checked
   * on every request and, on a watch, before every run: a revocation cuts an open stream at
   * the append that applies it.
   */
  private async refused (lp: LengthPrefixedStream, stream: Stream, peer: string, key: string | undefined): Promise<boolean> {
    const { ledger, log } = this.ctx.components
    const self = this.selfKey
    const own = this.ctx.components.servingRefused?.() ?? (self !== undefined && ledger.isRevoked(self) ? `this node's own key ${self} is revoked` : undefined)
    if (own !== undefined) {
      log.warn({ peer, key, reason: own }, 'sync refused: this node may not serve')
      await this.sendError(lp, stream, { code: SYNC_ERROR.unauthorized, message: `this node serves no one: ${own}` })
      return true
    }
    if (ledger.admits(key)) return false
    log.warn({ peer, key }, 'sync refused: the peer\'s key is not admitted')
    this.ctx.components.onRefused?.(peer)
    await this.sendError(lp, stream, { code: SYNC_ERROR.unauthorized, message: `key ${key ?? '(none)'} is not admitted to this network (never admitted, or revoked): start the node with JOIN_TOKEN=<a token from 'create join token' on the master>` })
    return true
  }

  /** Whether the client holds (holds_head) the very head this node has signed: then only current_seq is sent. */
  private holdsCurrentHead (request: SyncRequest): boolean {
    const head = this.ctx.components.ledger.signedHead
    return request.holdsHead === true && head !== undefined && head.seq === request.afterSeq && head.hash === request.afterHash
  }

  /**
   * The request, or undefined once a bad one has been answered (error frame) or cut off. On a
   * session (`idle`: a run was answered with open), a client that closes the stream or sends
   * nothing for sessionIdleMs ends it quietly.
   */
  private async readRequest (lp: LengthPrefixedStream, stream: Stream, peer: string, idle: boolean): Promise<SyncRequest | undefined> {
    const log = this.ctx.components.log
    const signal = idle ? deadlineSignal(this.ctx.sessionIdleMs, this.ctx.shutdown()) : this.ctx.deadline()
    let frame: Uint8Array
    try {
      frame = (await lp.read({ signal })).subarray()
    } catch (err) {
      if (this.ctx.shutdown().aborted) {
        stream.abort(toError(err))
      } else if (idle && (signal.aborted || stream.remoteWriteStatus !== 'writable')) {
        log.debug({ peer, timedOut: signal.aborted }, 'sync session ended')
        await this.finish(stream, this.ctx.deadline()).catch(() => { stream.abort(toError(err)) })
      } else if (signal.aborted) {
        log.debug({ peer }, 'sync client sent no request in time')
        await this.sendError(lp, stream, { code: SYNC_ERROR.timeout, message: `no sync request within ${this.ctx.timeoutMs} ms` })
      } else if (err instanceof Error && err.name === 'UnexpectedEOFError') {
        await this.sendError(lp, stream, { code: SYNC_ERROR.badMessage, message: `truncated sync request: ${err.message}` })
      } else {
        // An oversized length prefix and the like: the framing is lost, nothing more can be read.
        log.debug({ peer, err: errorMessage(err) }, 'unreadable sync request; stream aborted')
        stream.abort(toError(err))
      }
      return undefined
    }
    this.ctx.stats.bytesIn += frame.byteLength + varintSize(frame.byteLength)
    try {
      if (frame.byteLength === 0) throw new LedgerMeshError('bad_message', 'empty sync request')
      return decodeRequest(frame)
    } catch (err) {
      const code = err instanceof LedgerMeshError && typeof err.details.syncError === 'string' ? err.details.syncError : SYNC_ERROR.badMessage
      log.debug({ peer, code, err: errorMessage(err) }, 'bad sync request')
      await this.sendError(lp, stream, { code, message: errorMessage(err) })
      return undefined
    }
  }

  /** Why the client's head is not on this node's chain; undefined when it is, or cannot be told here. */
  private async divergence (request: SyncRequest): Promise<string | undefined> {
    const { ledger } = this.ctx.components
    if (request.afterSeq === 0 || request.afterSeq > ledger.head.seq) return undefined
    const [entry] = await ledger.store.range(request.afterSeq, 1)
    if (entry === undefined || entry.seq !== request.afterSeq || entry.hash === request.afterHash) return undefined
    return `entry ${request.afterSeq} has hash ${short(entry.hash)} here, not ${short(request.afterHash)}; this node's head is seq ${ledger.head.seq}`
  }

  private async writeFrame (lp: LengthPrefixedStream, response: EncodedResponse, signal: AbortSignal): Promise<void> {
    const frame = encodeFrame(response)
    if (frame.byteLength > this.ctx.maxMessageBytes) {
      throw new LedgerMeshError('internal', `a sync frame of ${frame.byteLength} bytes is over the ${this.ctx.maxMessageBytes}-byte message limit`)
    }
    this.ctx.stats.bytesOut += frame.byteLength + varintSize(frame.byteLength)
    this.ctx.stats.entriesOut += response.entries.length
    // Backpressure: a peer that does not read for timeoutMs makes this throw, and the stream closes.
    await lp.write(frame, { signal })
  }

  /** A proof and the signed head it is against, or an error frame naming why there is none; then close. */
  private async sendProof (lp: LengthPrefixedStream, stream: Stream, query: ProofQuery): Promise<void> {
    let answer: Awaited<ReturnType<typeof answerProof>>
    try {
      answer = await answerProof(this.ctx.components.ledger, query)
    } catch (err) {
      if (!(err instanceof LedgerMeshError)) throw err
      await this.sendError(lp, stream, { code: SYNC_ERROR.badMessage, message: err.message })
      return
    }
    const signal = this.ctx.deadline()
    await this.writeFrame(lp, { entries: [], more: false, head: answer.head, proof: answer.proof }, signal)
    await this.finish(stream, signal)
  }

  /** Error frame, then close. */
  private async sendError (lp: LengthPrefixedStream, stream: Stream, error: SyncError, head?: SignedHead): Promise<void> {
    const signal = this.ctx.deadline()
    try {
      await this.writeFrame(lp, { entries: [], more: false, error, ...(head !== undefined ? { head } : {}) }, signal)
      await this.finish(stream, signal)
    } catch (err) {
      stream.abort(toError(err))
    }
  }

  /** Closes our end; a peer that never closes its own is cut off after timeoutMs. */
  private async finish (stream: Stream, signal: AbortSignal): Promise<void> {
    await stream.close({ signal })
    if (stream.status !== 'open') return
    const timer = setTimeout(() => { stream.abort(new Error('sync peer did not close the stream')) }, this.ctx.timeoutMs)
    timer.unref()
    stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
  }

  /**
   * Sends the entries in (afterSeq, min(head, afterSeq + limit)] in frames under the size
   * limit, then the signed head with `more` when it stopped short of it. Returns the last seq
   * sent (and its hash).
   */
  private async sendRun (lp: LengthPrefixedStream, afterSeq: number, limit: number, signal: AbortSignal, open = false): Promise<Head | undefined> {
    const { ledger } = this.ctx.components
    const head = ledger.signedHead
    if (head === undefined) {
      // Nothing signed here yet: an empty answer with no head.
      await this.writeFrame(lp, { entries: [], more: false, open }, signal)
      return undefined
    }
    const last = Math.min(head.seq, afterSeq + limit)
    const budget = this.ctx.maxMessageBytes - FRAME_RESERVE_BYTES
    let batch: Uint8Array[] = []
    let batchBytes = 0
    let sent: Head = { seq: afterSeq, hash: '' }
    for (let next = afterSeq + 1; next <= last;) {
      const page = this.kept(next, last) ?? await ledger.store.range(next, Math.min(READ_PAGE, last - next + 1))
      if (page.length === 0 || page[0].seq !== next) {
        throw new LedgerMeshError('internal', `this node's store has no entry ${next} below its head ${head.seq}`)
      }
      for (const entry of page) {
        if (entry.seq > last) break
        const encoded = this.recent.get(entry.seq, ledger.head.seq)?.encoded ?? encodeEntry(entry)
        const size = entryFrameSize(encoded)
        if (batch.length > 0 && batchBytes + size > budget) {
          await this.writeFrame(lp, { entries: batch, more: false }, signal)
          batch = []
          batchBytes = 0
        }
        batch.push(encoded)
        batchBytes += size
        sent = { seq: entry.seq, hash: entry.hash }
      }
      next = page[page.length - 1].seq + 1
    }
    await this.writeFrame(lp, { entries: batch, head, more: last < head.seq, open }, signal)
    return sent.seq === afterSeq ? undefined : sent
  }

  /** Entries next..last from those kept in memory, when every one of them is (else undefined: read them from the store). */
  private kept (next: number, last: number): Entry[] | undefined {
    const head = this.ctx.components.ledger.head.seq
    if (this.recent.get(next, head) === undefined || this.recent.get(last, head) === undefined) return undefined
    const entries: Entry[] = []
    for (let seq = next; seq <= last; seq++) entries.push(this.recent.get(seq, head)!.entry)
    return entries
  }

  /**
   * Watch mode: what the client misses, then every append as it happens, and the head every
   * keepaliveMs when idle. Ends when the client closes, on stop(), when a write stays blocked
   * for timeoutMs (a client too far behind re-syncs by pull), or when this node's own chain
   * no longer holds what it sent (a relay that was rewound): the client then re-syncs by pull.
   */
  private async serveWatch (lp: LengthPrefixedStream, stream: Stream, request: SyncRequest, peer: string, key: string | undefined): Promise<void> {
    const { ledger, log } = this.ctx.components
    const limit = request.limit > 0 ? Math.min(request.limit, this.ctx.maxEntries) : this.ctx.maxEntries
    let sent: Head = { seq: request.afterSeq, hash: request.afterHash }
    let wake = (): void => {}
    const onEvent = (): void => { wake() }
    this.waiters.add(onEvent)
    stream.addEventListener('close', onEvent)
    stream.addEventListener('remoteCloseWrite', onEvent)
    this.ctx.peers.watchStarted(peer)
    const open = (): boolean => this.ctx.started() && stream.status === 'open' && stream.remoteWriteStatus === 'writable'
    // only what a signed head covers is served (a relay just rewound has entries but no head yet)
    const servable = (): number => ledger.signedHead?.seq ?? 0
    try {
      let keepaliveDue = false
      while (open()) {
        if (servable() > sent.seq) {
          if (await this.refused(lp, stream, peer, key)) return
          if (sent.seq > 0) {
            const entry = this.recent.get(sent.seq, ledger.head.seq)?.entry ?? (await ledger.store.range(sent.seq, 1))[0]
            if (entry?.hash !== sent.hash) {
              log.warn({ seq: sent.seq }, 'this node\'s chain changed under a watch stream; closing it')
              await this.sendError(lp, stream, { code: SYNC_ERROR.diverged, message: `this node's entry ${sent.seq} changed while you watched` }, ledger.signedHead)
              return
            }
          }
          sent = await this.sendRun(lp, sent.seq, limit, this.ctx.deadline()) ?? sent
          this.ctx.peers.note(peer, sent.seq)
          continue
        }
        if (keepaliveDue) {
          if (await this.refused(lp, stream, peer, key)) return
          const head = ledger.signedHead
          // a client that holds the head sent last (holds_head) is told only its seq
          const current = request.holdsHead === true && head !== undefined && head.seq === sent.seq && head.hash === sent.hash
          await this.writeFrame(lp, current ? { entries: [], more: false, currentSeq: head.seq } : { entries: [], more: false, ...(head !== undefined ? { head } : {}) }, this.ctx.deadline())
          keepaliveDue = false
        }
        await new Promise<void>(resolve => {
          const timer = setTimeout(() => { keepaliveDue = true; resolve() }, this.ctx.keepaliveMs)
          wake = () => { clearTimeout(timer); resolve() }
          // an append or a close may have happened while the last frame was written
          if (!open() || servable() > sent.seq) wake()
        })
        wake = () => {}
      }
      if (stream.status === 'open') await this.finish(stream, this.ctx.deadline())
    } finally {
      this.ctx.peers.watchEnded(peer)
      this.waiters.delete(onEvent)
      stream.removeEventListener('close', onEvent)
      stream.removeEventListener('remoteCloseWrite', onEvent)
    }
  }
}
