import { setMaxListeners } from 'node:events'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { publicKeyHexOf } from '../../policies/keys.js'
import { deadlineSignal } from '../../net/deadline.js'
import { StreamSlots } from '../../net/slots.js'
import { openStream, type NetNode } from '../../net/stream.js'
import { type Entry, GENESIS_HASH, verifyChainLinks } from '../../ledger/entry.js'
import { type Head, type SignedHead, verifyHead } from '../../ledger/head.js'
import type { Ledger } from '../../ledger/ledger.js'
import {
  FRAME_RESERVE_BYTES, MAX_ENTRIES_PER_RESPONSE, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_OUTBOUND_STREAMS,
  READ_PAGE, SYNC_ERROR, SYNC_PROTOCOL, TIMEOUT_MS, WATCH_KEEPALIVE_MS, WATCH_MISSED_KEEPALIVES, WIRE_VERSION
} from './constants.js'
import {
  type EncodedResponse, type SyncError, type SyncRequest, type SyncResponse,
  decodeRequest, decodeResponse, encodeEntry, encodeFrame, encodeRequest, entryFrameSize, varintSize
} from './codec.js'

export interface SyncComponents {
  libp2p: NetNode
  ledger: Ledger
  log: Logger
  /** told of every sync refused because the peer is not admitted (for metrics) */
  onRefused?: (peer: string) => void
}

export interface SyncInit {
  /** concurrent inbound sync streams per connection (libp2p resets the ones over) */
  maxInboundStreams?: number
  /** concurrent outbound sync streams; further pulls wait for a slot */
  maxOutboundStreams?: number
  /** bound of a pull request/response, of a stalled peer, and of one blocked frame write */
  timeoutMs?: number
  /** most entries per response (served), and asked for per request (client) */
  maxEntriesPerResponse?: number
  /** largest frame, both ways */
  maxMessageBytes?: number
  /** how often a watch stream carries the head when nothing is appended */
  watchKeepaliveMs?: number
}

export type SyncTarget = Multiaddr | PeerId

export interface PullOptions {
  /** aborts the pull (it then fails with `timeout`) */
  signal?: AbortSignal
}

export interface PullResult {
  /** entries appended to the local ledger */
  applied: number
  /** the local head afterwards */
  head: Head
  /** frame bytes received for this pull, length prefixes included */
  bytesReceived: number
  /** streams opened: one per request, probes of a recovery included */
  requests: number
  /** set when the replica had diverged from the source and was rewound before catching up */
  recovered?: { from: number, to: number }
}

export interface WatchHandlers {
  /** after each run applied: how many entries, and the signed head they end at */
  onApplied: (count: number, head: SignedHead) => void
  /** once, when the watch ends: no error when close() or stop() ended it */
  onClose: (err?: Error) => void
}

export interface WatchHandle {
  close: () => void
}

export interface SyncStats {
  /** frame bytes read, served requests and client responses, length prefixes included */
  bytesIn: number
  /** frame bytes written */
  bytesOut: number
  /** entries received by pulls and watches (before verification) */
  entriesIn: number
  /** entries served */
  entriesOut: number
  /** responses refused: malformed, or failing the chain, signature or policy checks */
  rejected: number
}

interface Progress { bytesReceived: number, requests: number }

/** One request's answer, its entries already checked to link on from `after`. */
interface Answer { entries: Entry[], tip: Head, head?: SignedHead, more: boolean }

interface Recovery { rewound: boolean }

const isDiverged = (err: unknown): boolean => err instanceof LedgerMeshError && err.details.syncError === SYNC_ERROR.diverged
const short = (hash: string): string => `${hash.slice(0, 12)}…`

/** Error codes of the libp2p length-prefix reader for frames that break the framing. */
const FRAMING_ERRORS = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'UnexpectedEOFError'])

/** What an error frame from a source becomes on the client. */
function remoteError (error: SyncError, head: SignedHead | undefined): LedgerMeshError {
  const code: ErrorCode = error.code === SYNC_ERROR.diverged
    ? 'conflict'
    : error.code === SYNC_ERROR.timeout
      ? 'timeout'
      : error.code === SYNC_ERROR.internal ? 'internal' : error.code === SYNC_ERROR.unauthorized ? 'unauthorized' : 'bad_message'
  return new LedgerMeshError(code, `sync source says ${error.code}: ${error.message}`, { syncError: error.code, sourceHead: head?.seq })
}

/**
 * `/ledgermesh/sync/1.0.0`.
 *
 * Serving (any node with a ledger: the master, or a replica relaying to its workers): one
 * request, then the entries after the client's head in frames of at most maxMessageBytes and
 * at most maxEntriesPerResponse per request, then the master-signed head. A client whose head
 * is not on this node's chain gets a `diverged` error frame. In watch mode the stream stays
 * open and every append is pushed as a new run, with the head as a keepalive.
 *
 * Client: `pull` catches the local replica up, `watch` keeps it current. Entries are held in
 * memory until a signed head covers them exactly; then `Ledger.applyBatch` checks the
 * signature against the trusted master key, the links and every policy, and appends the run
 * atomically. Anything that fails is rejected whole and the replica stays at its last valid
 * head. A diverged replica finds the last seq it shares with the source, and is rewound to it
 * only once the source's run from there has verified.
 */
export class SyncProtocol {
  readonly protocol = SYNC_PROTOCOL
  readonly stats: SyncStats = { bytesIn: 0, bytesOut: 0, entriesIn: 0, entriesOut: 0, rejected: 0 }

  private readonly components: SyncComponents
  private readonly timeoutMs: number
  private readonly maxEntries: number
  private readonly maxMessageBytes: number
  private readonly keepaliveMs: number
  private readonly maxInboundStreams: number
  private readonly maxOutboundStreams: number
  private readonly outbound: StreamSlots
  private started = false
  private shutdown = new AbortController()
  /** streams this node is serving, aborted on stop() */
  private readonly serving = new Set<Stream>()
  /** this node's open watches (client side), closed on stop() */
  private readonly watches = new Set<WatchHandle>()
  /** serving watch streams waiting for the ledger to append */
  private readonly waiters = new Set<() => void>()
  /** runs are applied one at a time (a pull and a watch may both bring entries) */
  private applying: Promise<unknown> = Promise.resolve()

  constructor (components: SyncComponents, init: SyncInit = {}) {
    this.components = components
    this.timeoutMs = init.timeoutMs ?? TIMEOUT_MS
    this.maxEntries = Math.max(1, init.maxEntriesPerResponse ?? MAX_ENTRIES_PER_RESPONSE)
    this.maxMessageBytes = init.maxMessageBytes ?? MAX_MESSAGE_BYTES
    this.keepaliveMs = init.watchKeepaliveMs ?? WATCH_KEEPALIVE_MS
    this.maxInboundStreams = init.maxInboundStreams ?? MAX_INBOUND_STREAMS
    this.maxOutboundStreams = init.maxOutboundStreams ?? MAX_OUTBOUND_STREAMS
    this.outbound = new StreamSlots(this.maxOutboundStreams)
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/sync'

  isStarted (): boolean { return this.started }

  /** streams this node is serving right now (pulls in progress and open watches) */
  get servingStreams (): number { return this.serving.size }

  /** Serves the protocol. A node that only pulls need not start it (but every node can relay). */
  async start (): Promise<void> {
    if (this.started) return
    this.shutdown = new AbortController()
    setMaxListeners(Infinity, this.shutdown.signal)
    this.components.ledger.on('appended', this.onAppended)
    await this.components.libp2p.handle(SYNC_PROTOCOL, this.onStream, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: this.maxOutboundStreams
    })
    this.started = true
  }

  /** Stops serving, and ends every stream this protocol has open, served or watched. */
  async stop (): Promise<void> {
    this.started = false
    this.shutdown.abort(new LedgerMeshError('timeout', 'the sync protocol is stopping'))
    this.components.ledger.off('appended', this.onAppended)
    await this.components.libp2p.unhandle(SYNC_PROTOCOL).catch(() => {})
    for (const watch of [...this.watches]) watch.close()
    for (const stream of this.serving) stream.abort(new Error('sync protocol stopped'))
    this.serving.clear()
    for (const wake of this.waiters) wake()
  }

  private readonly onAppended = (): void => {
    for (const wake of this.waiters) wake()
  }

  /** The bound of one request, write or response: timeoutMs, stop(), and the caller's signal. */
  private deadline (...signals: Array<AbortSignal | undefined>): AbortSignal {
    return deadlineSignal(this.timeoutMs, this.shutdown.signal, ...signals)
  }

  // ---- serving ----

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    void this.serve(stream, connection)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const log = this.components.log
    const peer = connection.remotePeer.toString()
    this.serving.add(stream)
    const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
    try {
      const request = await this.readRequest(lp, stream, peer)
      if (request === undefined) return
      const key = publicKeyHexOf(connection.remotePeer)
      if (!this.components.ledger.admits(key)) {
        log.warn({ peer, key }, 'sync refused: the peer\'s key is not admitted')
        this.components.onRefused?.(peer)
        await this.sendError(lp, stream, { code: SYNC_ERROR.unauthorized, message: `key ${key ?? '(none)'} is not admitted to this network: start the node with JOIN_TOKEN=<a token from 'create join token' on the master>` })
        return
      }
      const problem = await this.divergence(request)
      if (problem !== undefined) {
        log.info({ peer, afterSeq: request.afterSeq, head: this.components.ledger.head.seq }, 'sync client diverged from this node\'s chain')
        await this.sendError(lp, stream, { code: SYNC_ERROR.diverged, message: problem }, this.components.ledger.signedHead)
        return
      }
      if (request.watch) {
        await this.serveWatch(lp, stream, request)
        return
      }
      const signal = this.deadline()
      await this.sendRun(lp, request.afterSeq, Math.min(request.limit, this.maxEntries), signal)
      await this.finish(stream, signal)
    } catch (err) {
      // A peer that stopped reading (backpressure), a reset, stop(), or a store failure.
      log.debug({ peer, err: errorMessage(err) }, 'sync stream ended with an error')
      if (err instanceof LedgerMeshError && err.code !== 'timeout' && stream.writeStatus === 'writable') {
        await this.sendError(lp, stream, { code: SYNC_ERROR.internal, message: err.message }).catch(() => {})
      }
      stream.abort(toError(err))
    } finally {
      this.serving.delete(stream)
    }
  }

  /** The request, or undefined once a bad one has been answered (error frame) or cut off. */
  private async readRequest (lp: LengthPrefixedStream, stream: Stream, peer: string): Promise<SyncRequest | undefined> {
    const log = this.components.log
    const signal = this.deadline()
    let frame: Uint8Array
    try {
      frame = (await lp.read({ signal })).subarray()
    } catch (err) {
      if (this.shutdown.signal.aborted) {
        stream.abort(toError(err))
      } else if (signal.aborted) {
        log.debug({ peer }, 'sync client sent no request in time')
        await this.sendError(lp, stream, { code: SYNC_ERROR.timeout, message: `no sync request within ${this.timeoutMs} ms` })
      } else if (err instanceof Error && err.name === 'UnexpectedEOFError') {
        await this.sendError(lp, stream, { code: SYNC_ERROR.badMessage, message: `truncated sync request: ${err.message}` })
      } else {
        // An oversized length prefix and the like: the framing is lost, nothing more can be read.
        log.debug({ peer, err: errorMessage(err) }, 'unreadable sync request; stream aborted')
        stream.abort(toError(err))
      }
      return undefined
    }
    this.stats.bytesIn += frame.byteLength + varintSize(frame.byteLength)
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
    const { ledger } = this.components
    if (request.afterSeq === 0 || request.afterSeq > ledger.head.seq) return undefined
    const [entry] = await ledger.store.range(request.afterSeq, 1)
    if (entry === undefined || entry.seq !== request.afterSeq || entry.hash === request.afterHash) return undefined
    return `entry ${request.afterSeq} has hash ${short(entry.hash)} here, not ${short(request.afterHash)}; this node's head is seq ${ledger.head.seq}`
  }

  private async writeFrame (lp: LengthPrefixedStream, response: EncodedResponse, signal: AbortSignal): Promise<void> {
    const frame = encodeFrame(response)
    if (frame.byteLength > this.maxMessageBytes) {
      throw new LedgerMeshError('internal', `a sync frame of ${frame.byteLength} bytes is over the ${this.maxMessageBytes}-byte message limit`)
    }
    this.stats.bytesOut += frame.byteLength + varintSize(frame.byteLength)
    this.stats.entriesOut += response.entries.length
    // Backpressure: a peer that does not read for timeoutMs makes this throw, and the stream closes.
    await lp.write(frame, { signal })
  }

  /** Error frame, then close. */
  private async sendError (lp: LengthPrefixedStream, stream: Stream, error: SyncError, head?: SignedHead): Promise<void> {
    const signal = this.deadline()
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
    const timer = setTimeout(() => { stream.abort(new Error('sync peer did not close the stream')) }, this.timeoutMs)
    timer.unref()
    stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
  }

  /**
   * Sends the entries in (afterSeq, min(head, afterSeq + limit)] in frames under the size
   * limit, then the signed head with `more` when it stopped short of it. Returns the last seq
   * sent (and its hash).
   */
  private async sendRun (lp: LengthPrefixedStream, afterSeq: number, limit: number, signal: AbortSignal): Promise<Head | undefined> {
    const { ledger } = this.components
    const head = ledger.signedHead
    if (head === undefined) {
      // Nothing signed here yet: an empty answer with no head.
      await this.writeFrame(lp, { entries: [], more: false }, signal)
      return undefined
    }
    const last = Math.min(head.seq, afterSeq + limit)
    const budget = this.maxMessageBytes - FRAME_RESERVE_BYTES
    let batch: Uint8Array[] = []
    let batchBytes = 0
    let sent: Head = { seq: afterSeq, hash: '' }
    for (let next = afterSeq + 1; next <= last;) {
      const page = await ledger.store.range(next, Math.min(READ_PAGE, last - next + 1))
      if (page.length === 0 || page[0].seq !== next) {
        throw new LedgerMeshError('internal', `this node's store has no entry ${next} below its head ${head.seq}`)
      }
      for (const entry of page) {
        if (entry.seq > last) break
        const encoded = encodeEntry(entry)
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
    await this.writeFrame(lp, { entries: batch, head, more: last < head.seq }, signal)
    return sent.seq === afterSeq ? undefined : sent
  }

  /**
   * Watch mode: what the client misses, then every append as it happens, and the head every
   * keepaliveMs when idle. Ends when the client closes, on stop(), when a write stays blocked
   * for timeoutMs (a client too far behind re-syncs by pull), or when this node's own chain
   * no longer holds what it sent (a relay that was rewound): the client then re-syncs by pull.
   */
  private async serveWatch (lp: LengthPrefixedStream, stream: Stream, request: SyncRequest): Promise<void> {
    const { ledger, log } = this.components
    const limit = request.limit > 0 ? Math.min(request.limit, this.maxEntries) : this.maxEntries
    let sent: Head = { seq: request.afterSeq, hash: request.afterHash }
    let wake = (): void => {}
    const onEvent = (): void => { wake() }
    this.waiters.add(onEvent)
    stream.addEventListener('close', onEvent)
    stream.addEventListener('remoteCloseWrite', onEvent)
    const open = (): boolean => this.started && stream.status === 'open' && stream.remoteWriteStatus === 'writable'
    // only what a signed head covers is served (a relay just rewound has entries but no head yet)
    const servable = (): number => ledger.signedHead?.seq ?? 0
    try {
      let keepaliveDue = false
      while (open()) {
        if (servable() > sent.seq) {
          if (sent.seq > 0) {
            const [entry] = await ledger.store.range(sent.seq, 1)
            if (entry?.hash !== sent.hash) {
              log.warn({ seq: sent.seq }, 'this node\'s chain changed under a watch stream; closing it')
              await this.sendError(lp, stream, { code: SYNC_ERROR.diverged, message: `this node's entry ${sent.seq} changed while you watched` }, ledger.signedHead)
              return
            }
          }
          sent = await this.sendRun(lp, sent.seq, limit, this.deadline()) ?? sent
          continue
        }
        if (keepaliveDue) {
          const head = ledger.signedHead
          await this.writeFrame(lp, { entries: [], more: false, ...(head !== undefined ? { head } : {}) }, this.deadline())
          keepaliveDue = false
        }
        await new Promise<void>(resolve => {
          const timer = setTimeout(() => { keepaliveDue = true; resolve() }, this.keepaliveMs)
          wake = () => { clearTimeout(timer); resolve() }
          // an append or a close may have happened while the last frame was written
          if (!open() || servable() > sent.seq) wake()
        })
        wake = () => {}
      }
      if (stream.status === 'open') await this.finish(stream, this.deadline())
    } finally {
      this.waiters.delete(onEvent)
      stream.removeEventListener('close', onEvent)
      stream.removeEventListener('remoteCloseWrite', onEvent)
    }
  }

  // ---- client ----

  /**
   * Catches the local replica up from `target`, in as many requests as the limit needs. A
   * replica whose head is not on the source's chain is rewound to the last seq both agree on
   * and caught up from there (`recovered` in the result).
   */
  async pull (target: SyncTarget, opts: PullOptions = {}): Promise<PullResult> {
    const { ledger, log } = this.components
    const progress: Progress = { bytesReceived: 0, requests: 0 }
    try {
      const applied = await this.catchUp(target, ledger.head, progress, opts.signal)
      return { applied, head: ledger.head, ...progress }
    } catch (err) {
      if (!isDiverged(err)) throw err
    }
    const from = ledger.head.seq
    log.warn({ source: target.toString(), head: from }, 'this replica diverged from its sync source; looking for the last seq both agree on')
    const agreed = await this.findAgreement(target, progress, opts.signal)
    const recovery: Recovery = { rewound: false }
    let applied: number
    try {
      applied = await this.catchUp(target, agreed, progress, opts.signal, recovery)
    } catch (err) {
      if (isDiverged(err)) throw new LedgerMeshError('conflict', `sync source ${target.toString()} keeps answering diverged: ${errorMessage(err)}`)
      throw err
    }
    if (!recovery.rewound) return { applied, head: ledger.head, ...progress }
    log.warn({ source: target.toString(), from, to: agreed.seq, head: ledger.head.seq }, 'replica rewound to the last seq it shares with its source and re-synced')
    return { applied, head: ledger.head, ...progress, recovered: { from, to: agreed.seq } }
  }

  /** Requests from `start` until a signed head covers what was received; applies each such run. */
  private async catchUp (target: SyncTarget, start: Head, progress: Progress, signal?: AbortSignal, recovery?: Recovery): Promise<number> {
    let runStart = start
    let tip = start
    let pending: Entry[] = []
    let applied = 0
    let next: Promise<Answer> | undefined
    for (;;) {
      const answer = await (next ?? this.request(target, tip, this.maxEntries, progress, signal))
      next = undefined
      pending.push(...answer.entries)
      tip = answer.tip
      const head = answer.head
      if (pending.length === 0) {
        // Nothing after our head: the source is level with us, or behind, or has no signed head.
        if (answer.more && head !== undefined && head.seq > tip.seq) {
          throw this.reject(new LedgerMeshError('bad_message', `sync source said more past seq ${tip.seq} but sent no entries`))
        }
        return applied
      }
      if (head === undefined) throw this.reject(new LedgerMeshError('bad_message', `sync source sent entries up to seq ${tip.seq} and no signed head`))
      if (tip.seq > head.seq) {
        throw this.reject(new LedgerMeshError('bad_message', `sync source sent entries up to seq ${tip.seq}, beyond its signed head at seq ${head.seq}`))
      }
      if (tip.seq < head.seq) {
        if (!answer.more) throw this.reject(new LedgerMeshError('bad_message', `sync source stopped at seq ${tip.seq}, short of its signed head at seq ${head.seq}`))
        // Held in memory until the head: check now that the head is the master's, so a source
        // cannot make this replica collect entries toward a made-up seq.
        this.checkHeadEarly(head)
        continue
      }
      if (tip.hash !== head.hash) {
        throw this.reject(new LedgerMeshError('chain_broken', `sync entries end at seq ${tip.seq} with hash ${short(tip.hash)}, but the signed head has ${short(head.hash)}`))
      }
      if (answer.more) {
        // Pipelined: the source reads and sends the next page while this run is verified and
        // written. Its links are checked against this run's tip, so a run that fails to apply
        // leaves the next answer unused (and its failure unobserved: the apply error is thrown).
        next = this.request(target, tip, this.maxEntries, progress, signal)
        next.catch(() => {})
      }
      applied += await this.applyRun(pending, runStart, head, recovery)
      pending = []
      runStart = tip
      recovery = undefined
      if (next === undefined) return applied
    }
  }

  /** One request on its own stream: the entries after `after` (links checked), and the head. */
  private async request (target: SyncTarget, after: Head, limit: number, progress: Progress, callerSignal?: AbortSignal): Promise<Answer> {
    progress.requests++
    const signal = this.deadline(callerSignal)
    const { stream, release } = await this.open(target, signal)
    try {
      const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
      await this.writeRequest(lp, { version: WIRE_VERSION, afterSeq: after.seq, afterHash: after.hash, limit, watch: false }, signal)
      const entries: Entry[] = []
      let tip = after
      for (;;) {
        const response = await this.readResponse(lp, signal, progress)
        tip = this.extend(entries, tip, response.entries)
        if (entries.length > limit) {
          throw this.reject(new LedgerMeshError('bad_message', `sync source sent more than the ${limit} entries asked for`))
        }
        if (response.head !== undefined || response.entries.length === 0) {
          await stream.close({ signal }).catch(() => {})
          return { entries, tip, head: response.head, more: response.more }
        }
      }
    } catch (err) {
      stream.abort(toError(err))
      throw this.clientError(err, target, signal, callerSignal)
    } finally {
      release()
    }
  }

  private async writeRequest (lp: LengthPrefixedStream, request: SyncRequest, signal: AbortSignal): Promise<void> {
    const frame = encodeRequest(request)
    this.stats.bytesOut += frame.byteLength + varintSize(frame.byteLength)
    await lp.write(frame, { signal })
  }

  /** The next frame from a source; an error frame throws (`details.syncError` names it). */
  private async readResponse (lp: LengthPrefixedStream, signal: AbortSignal, progress?: Progress): Promise<SyncResponse> {
    const frame = (await lp.read({ signal })).subarray()
    const size = frame.byteLength + varintSize(frame.byteLength)
    this.stats.bytesIn += size
    if (progress !== undefined) progress.bytesReceived += size
    let response: SyncResponse
    try {
      response = decodeResponse(frame)
    } catch (err) {
      throw this.reject(err)
    }
    if (response.error !== undefined) throw remoteError(response.error, response.head)
    return response
  }

  /** Appends `entries` to `run` after checking that they link on from `tip`; returns the new tip. */
  private extend (run: Entry[], tip: Head, entries: Entry[]): Head {
    if (entries.length === 0) return tip
    this.stats.entriesIn += entries.length
    let broken: string | undefined
    try {
      broken = verifyChainLinks(tip, entries)
    } catch (err) {
      // a policy with no canonical form cannot be hashed
      broken = `an entry cannot be hashed: ${errorMessage(err)}`
    }
    if (broken !== undefined) throw this.reject(new LedgerMeshError('chain_broken', `sync batch rejected: ${broken}`))
    run.push(...entries)
    const last = entries[entries.length - 1]
    return { seq: last.seq, hash: last.hash }
  }

  /**
   * Applies a run of entries that starts after `runStart` and ends at `head`, one run at a
   * time. When another pull or watch moved the ledger meanwhile, only the part it lacks is
   * applied. In a recovery the replica is first rewound to `runStart`, once the run's head has
   * verified and is not older than the replica's own.
   */
  private async applyRun (run: Entry[], runStart: Head, head: SignedHead, recovery?: Recovery): Promise<number> {
    const { ledger } = this.components
    const task = this.applying.then(async () => {
      if (recovery !== undefined) {
        const key = ledger.masterKey
        if (key !== undefined && !verifyHead(head, key)) {
          throw this.reject(new LedgerMeshError('bad_signature', `signed head at seq ${head.seq} is not signed by the trusted master key`))
        }
        const ours = ledger.signedHead
        if (ours !== undefined && Date.parse(head.time) < Date.parse(ours.time)) {
          throw this.reject(new LedgerMeshError('conflict', `the source's chain (head seq ${head.seq}, signed ${head.time}) is older than this replica's (head seq ${ours.seq}, signed ${ours.time}): not rewinding to it`))
        }
        await ledger.rewind(runStart.seq)
        recovery.rewound = true
      }
      let entries = run
      const current = ledger.head
      if (current.seq !== runStart.seq || current.hash !== runStart.hash) {
        if (current.seq >= head.seq) return 0
        const index = current.seq - runStart.seq - 1
        if (index < 0 || run[index].hash !== current.hash) {
          throw new LedgerMeshError('conflict', `the replica moved to seq ${current.seq} while a run after seq ${runStart.seq} was fetched, and the run does not continue it`)
        }
        entries = run.slice(index + 1)
      }
      try {
        await ledger.applyBatch(entries, head)
      } catch (err) {
        throw this.reject(err)
      }
      return entries.length
    })
    this.applying = task.catch(() => {})
    return await task
  }

  /** A head that runs are collected toward must be signed by the trusted master key (when one is pinned). */
  private checkHeadEarly (head: SignedHead): void {
    const key = this.components.ledger.masterKey
    if (key !== undefined && !verifyHead(head, key)) {
      throw this.reject(new LedgerMeshError('bad_signature', `signed head at seq ${head.seq} is not signed by the trusted master key`))
    }
  }

  /** Counts and logs a refused response; returns the error to throw. */
  private reject (err: unknown): Error {
    this.stats.rejected++
    const code = err instanceof LedgerMeshError ? err.code : 'internal'
    this.components.log.warn({ code, err: errorMessage(err) }, 'sync response rejected; the replica stays at its last valid head')
    return toError(err)
  }

  /**
   * The last seq at which the local log and the source agree: probes seq − 1, − 2, − 4, …
   * down to 0, then narrows between the last probe that agreed and the first that did not
   * (a hash that matches vouches for every entry before it).
   */
  private async findAgreement (target: SyncTarget, progress: Progress, signal?: AbortSignal): Promise<Head> {
    const { ledger } = this.components
    const from = ledger.head.seq
    const agreesAt = async (seq: number): Promise<Head | undefined> => {
      if (seq <= 0) return { seq: 0, hash: GENESIS_HASH }
      const [entry] = await ledger.store.range(seq, 1)
      if (entry === undefined || entry.seq !== seq) return undefined
      try {
        await this.request(target, { seq, hash: entry.hash }, 0, progress, signal)
        return { seq, hash: entry.hash }
      } catch (err) {
        if (isDiverged(err)) return undefined
        throw err
      }
    }
    let bad = from
    let good: Head | undefined
    for (let step = 1; good === undefined; step *= 2) {
      const seq = Math.max(0, from - step)
      good = await agreesAt(seq)
      if (good === undefined) bad = seq
    }
    while (bad - good.seq > 1) {
      const mid = Math.floor((good.seq + bad) / 2)
      const agreed = await agreesAt(mid)
      if (agreed !== undefined) good = agreed
      else bad = mid
    }
    return good
  }

  /**
   * Keeps the replica current from `target`: a pull first (catch-up, recovery), then a stream
   * on which the source pushes every append. Each run is applied once its signed head arrives.
   * The watch ends on close(), stop(), a rejected run, or a source silent for three keepalives.
   */
  watch (target: SyncTarget, handlers: WatchHandlers): WatchHandle {
    const controller = new AbortController()
    setMaxListeners(Infinity, controller.signal)
    let stream: Stream | undefined
    const handle: WatchHandle = {
      close: () => {
        controller.abort(new LedgerMeshError('timeout', 'watch closed'))
        stream?.abort(new Error('watch closed'))
      }
    }
    this.watches.add(handle)
    const run = async (): Promise<void> => {
      const { ledger } = this.components
      const pulled = await this.pull(target, { signal: controller.signal })
      if (pulled.applied > 0 && ledger.signedHead !== undefined) handlers.onApplied(pulled.applied, ledger.signedHead)
      const openSignal = this.deadline(controller.signal)
      const opened = await this.open(target, openSignal)
      stream = opened.stream
      try {
        if (controller.signal.aborted) return
        const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
        const start = ledger.head
        await this.writeRequest(lp, { version: WIRE_VERSION, afterSeq: start.seq, afterHash: start.hash, limit: this.maxEntries, watch: true }, openSignal)
        let runStart = start
        let tip = start
        let pending: Entry[] = []
        let sinceHead = 0
        const silence = this.keepaliveMs * WATCH_MISSED_KEEPALIVES
        while (!controller.signal.aborted) {
          const signal = deadlineSignal(silence, controller.signal, this.shutdown.signal)
          let response: SyncResponse
          try {
            response = await this.readResponse(lp, signal)
          } catch (err) {
            throw this.clientError(err, target, signal, controller.signal, `no frame from the sync source in ${silence} ms`)
          }
          tip = this.extend(pending, tip, response.entries)
          sinceHead += response.entries.length
          if (sinceHead > this.maxEntries) {
            throw this.reject(new LedgerMeshError('bad_message', `sync source pushed more than ${this.maxEntries} entries without a signed head`))
          }
          const head = response.head
          if (head === undefined) continue
          sinceHead = 0
          if (pending.length === 0) continue // a keepalive
          if (tip.seq > head.seq) {
            throw this.reject(new LedgerMeshError('bad_message', `sync source pushed entries up to seq ${tip.seq}, beyond its signed head at seq ${head.seq}`))
          }
          if (tip.seq < head.seq) {
            if (response.more) { this.checkHeadEarly(head); continue }
            throw this.reject(new LedgerMeshError('bad_message', `sync source pushed entries up to seq ${tip.seq}, short of its signed head at seq ${head.seq}`))
          }
          if (tip.hash !== head.hash) {
            throw this.reject(new LedgerMeshError('chain_broken', `pushed entries end at seq ${tip.seq} with a hash the signed head does not have`))
          }
          const applied = await this.applyRun(pending, runStart, head)
          pending = []
          runStart = tip
          if (applied > 0) handlers.onApplied(applied, head)
        }
      } finally {
        opened.release()
        stream.abort(new Error('watch ended'))
      }
    }
    run().then(
      () => { handlers.onClose() },
      (err: unknown) => { handlers.onClose(controller.signal.aborted || this.shutdown.signal.aborted ? undefined : toError(err)) }
    ).catch((err: unknown) => {
      this.components.log.error({ err: errorMessage(err) }, 'a sync watch handler threw')
    }).finally(() => { this.watches.delete(handle) })
    return handle
  }

  /** A stream to `target` within an outbound slot; dial failures are `master_unreachable`. */
  private async open (target: SyncTarget, signal: AbortSignal): Promise<{ stream: Stream, release: () => void }> {
    let release: () => void
    try {
      release = await this.outbound.acquire(signal)
    } catch {
      throw new LedgerMeshError('timeout', `no free outbound sync stream (${this.maxOutboundStreams} in use) within ${this.timeoutMs} ms`)
    }
    try {
      const stream = await openStream(this.components.libp2p, target, SYNC_PROTOCOL, signal)
      return { stream, release }
    } catch (err) {
      release()
      throw new LedgerMeshError('master_unreachable', `cannot open a sync stream to ${target.toString()}: ${errorMessage(err)}`)
    }
  }

  /** What a client-side failure is reported as. */
  private clientError (err: unknown, target: SyncTarget, signal: AbortSignal, callerSignal?: AbortSignal, silent?: string): LedgerMeshError {
    if (err instanceof LedgerMeshError) return err
    if (callerSignal?.aborted === true || this.shutdown.signal.aborted) {
      return new LedgerMeshError('timeout', `sync with ${target.toString()} was aborted`)
    }
    if (signal.aborted) {
      return new LedgerMeshError('timeout', silent ?? `sync source ${target.toString()} did not answer within ${this.timeoutMs} ms`)
    }
    if (err instanceof Error && FRAMING_ERRORS.has(err.name)) {
      return this.reject(new LedgerMeshError('bad_message', `bad frame from sync source ${target.toString()}: ${err.message}`)) as LedgerMeshError
    }
    return new LedgerMeshError('master_unreachable', `sync stream to ${target.toString()} failed: ${errorMessage(err)}`)
  }
}

/** The protocol as a libp2p-style service factory: `syncProtocol(init)(components)`. */
export function syncProtocol (init: SyncInit = {}): (components: SyncComponents) => SyncProtocol {
  return (components) => new SyncProtocol(components, init)
}
