import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { LedgerMeshError, errorMessage } from '../../errors.js'
import type { Logger } from '../../node/logger.js'
import { openStream, type P2PNode } from '../../services/p2p.js'
import { type Entry, verifyChainLinks } from '../entry.js'
import type { Head, SignedHead } from '../head.js'
import type { Ledger } from '../ledger.js'
import {
  MAX_ENTRIES_PER_RESPONSE, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_OUTBOUND_STREAMS, READ_PAGE,
  SYNC_PROTOCOL, TIMEOUT_MS, WATCH_KEEPALIVE_MS, WIRE_VERSION
} from './constants.js'
import { type SyncResponse, decodeRequest, decodeResponse, encodeRequest, encodeResponse, entryWireSize } from './messages.js'

export interface SyncComponents {
  libp2p: P2PNode
  ledger: Ledger
  log: Logger
}

export interface SyncInit {
  maxInboundStreams?: number
  maxOutboundStreams?: number
  timeoutMs?: number
  maxEntriesPerResponse?: number
  maxMessageBytes?: number
  watchKeepaliveMs?: number
}

export interface PullResult {
  applied: number
  head: Head
  bytesReceived: number
  requests: number
  /** set when the replica had diverged and was rewound before catching up */
  recovered?: { from: number, to: number }
}

export interface WatchHandlers {
  onApplied: (count: number, head: SignedHead) => void
  onClose: (err?: Error) => void
}

export interface SyncStats {
  bytesIn: number
  bytesOut: number
  entriesIn: number
  entriesOut: number
  /** batches that failed verification */
  rejected: number
}

type Target = Multiaddr | PeerId

/**
 * `/ledgermesh/sync/1.0.0`. Serving: any node with a ledger answers with entries after the
 * client's head and the master-signed head (slaves relay to their workers this way), and in
 * watch mode keeps pushing new entries as its ledger appends them. Client: `pull` catches
 * the replica up; `watch` keeps it current. Nothing is applied before a signed head covers
 * it, and `Ledger.applyBatch` verifies links, signature and policies first.
 */
export class SyncProtocol {
  readonly stats: SyncStats = { bytesIn: 0, bytesOut: 0, entriesIn: 0, entriesOut: 0, rejected: 0 }
  private readonly timeoutMs: number
  private readonly maxEntries: number
  private readonly maxMessageBytes: number
  private readonly keepaliveMs: number
  private readonly openStreams = new Set<Stream>()
  private started = false

  constructor (private readonly components: SyncComponents, private readonly init: SyncInit = {}) {
    this.timeoutMs = init.timeoutMs ?? TIMEOUT_MS
    this.maxEntries = init.maxEntriesPerResponse ?? MAX_ENTRIES_PER_RESPONSE
    this.maxMessageBytes = init.maxMessageBytes ?? MAX_MESSAGE_BYTES
    this.keepaliveMs = init.watchKeepaliveMs ?? WATCH_KEEPALIVE_MS
  }

  async start (): Promise<void> {
    await this.components.libp2p.handle(SYNC_PROTOCOL, (stream, connection) => {
      void this.serve(stream, connection)
    }, {
      maxInboundStreams: this.init.maxInboundStreams ?? MAX_INBOUND_STREAMS,
      maxOutboundStreams: this.init.maxOutboundStreams ?? MAX_OUTBOUND_STREAMS
    })
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    await this.components.libp2p.unhandle(SYNC_PROTOCOL).catch(() => {})
    for (const stream of this.openStreams) stream.abort(new Error('sync stopped'))
    this.openStreams.clear()
  }

  // ---- serving ----

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const { log } = this.components
    this.openStreams.add(stream)
    const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
    try {
      const request = decodeRequest((await lp.read({ signal: AbortSignal.timeout(this.timeoutMs) })).subarray())
      this.stats.bytesIn += request.afterHash.length / 2 + 16
      if (request.version !== WIRE_VERSION) {
        await this.sendError(lp, 'unsupported_version', `sync wire version ${request.version} is not supported (this node speaks ${WIRE_VERSION})`)
        return
      }
      const problem = await this.divergence(request.afterSeq, request.afterHash)
      if (problem !== undefined) {
        await this.sendError(lp, 'diverged', problem)
        return
      }
      const sent = await this.sendRange(lp, request.afterSeq, request.watch ? Number.MAX_SAFE_INTEGER : Math.min(request.limit, this.maxEntries))
      if (!request.watch) {
        await stream.close({ signal: AbortSignal.timeout(this.timeoutMs) })
        return
      }
      await this.serveWatch(lp, stream, sent)
    } catch (err) {
      if (this.started) log.debug({ peer: connection.remotePeer.toString(), err: errorMessage(err) }, 'sync stream ended with an error')
      if (err instanceof LedgerMeshError && err.code === 'bad_message') {
        await this.sendError(lp, 'bad_message', err.message).catch(() => {})
      }
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.openStreams.delete(stream)
    }
  }

  /** Why the client's head is not on this node's chain, or undefined when it is (or cannot be told). */
  private async divergence (afterSeq: number, afterHash: string): Promise<string | undefined> {
    if (afterSeq === 0) return undefined
    const { ledger } = this.components
    if (afterSeq > ledger.head.seq) return undefined
    const [entry] = await ledger.store.range(afterSeq, 1)
    if (entry === undefined || entry.hash === afterHash) return undefined
    return `the entry at seq ${afterSeq} has hash ${entry.hash.slice(0, 12)}… here, not ${afterHash.slice(0, 12)}…`
  }

  /** Sends entries after `afterSeq` (at most `limit`) in frames, then the signed head. Returns the last seq sent. */
  private async sendRange (lp: LengthPrefixedStream, afterSeq: number, limit: number): Promise<number> {
    const { ledger } = this.components
    const head = ledger.signedHead
    if (head === undefined) {
      await this.write(lp, { entries: [], more: false })
      return afterSeq
    }
    const last = Math.min(head.seq, afterSeq + limit)
    let batch: Entry[] = []
    let batchBytes = 0
    let next = afterSeq + 1
    while (next <= last) {
      const page = await ledger.store.range(next, Math.min(READ_PAGE, last - next + 1))
      if (page.length === 0) break
      for (const entry of page) {
        const size = entryWireSize(entry)
        if (batch.length > 0 && batchBytes + size > this.maxMessageBytes - 1024) {
          await this.write(lp, { entries: batch, more: false })
          batch = []
          batchBytes = 0
        }
        batch.push(entry)
        batchBytes += size
      }
      next = page[page.length - 1].seq + 1
    }
    await this.write(lp, { entries: batch, head, more: last < head.seq })
    return last
  }

  /** Watch mode: push what the ledger appends, and the head as a keepalive when idle. */
  private async serveWatch (lp: LengthPrefixedStream, stream: Stream, sentUpTo: number): Promise<number> {
    const { ledger } = this.components
    let wake: (() => void) | undefined
    const onAppended = (): void => { wake?.() }
    ledger.on('appended', onAppended)
    const closed = new Promise<void>(resolve => {
      stream.addEventListener('close', () => { resolve() }, { once: true })
    })
    try {
      while (this.started && stream.status === 'open') {
        if (ledger.head.seq > sentUpTo) {
          sentUpTo = await this.sendRange(lp, sentUpTo, Number.MAX_SAFE_INTEGER)
          continue
        }
        const woke = await Promise.race([
          new Promise<boolean>(resolve => { wake = () => { resolve(true) } }),
          new Promise<boolean>(resolve => setTimeout(() => { resolve(false) }, this.keepaliveMs).unref()),
          closed.then(() => false)
        ])
        wake = undefined
        if (stream.status !== 'open') break
        if (!woke && ledger.signedHead !== undefined) await this.write(lp, { entries: [], head: ledger.signedHead, more: false })
      }
    } finally {
      ledger.off('appended', onAppended)
    }
    return sentUpTo
  }

  private async write (lp: LengthPrefixedStream, response: SyncResponse): Promise<void> {
    const frame = encodeResponse(response)
    this.stats.bytesOut += frame.length
    this.stats.entriesOut += response.entries.length
    // A peer that does not read for timeoutMs stalls us: the write aborts and the stream closes.
    await lp.write(frame, { signal: AbortSignal.timeout(this.timeoutMs) })
  }

  private async sendError (lp: LengthPrefixedStream, code: string, message: string): Promise<void> {
    await this.write(lp, { entries: [], more: false, error: { code, message } })
    await lp.unwrap().close({ signal: AbortSignal.timeout(this.timeoutMs) }).catch(() => {})
  }

  // ---- client ----

  /**
   * Catches the replica up from `target`. A replica whose head is not on the source's chain
   * is rewound to the last seq both agree on, then caught up.
   */
  async pull (target: Target): Promise<PullResult> {
    try {
      return await this.pullRun(target)
    } catch (err) {
      if (!(err instanceof LedgerMeshError && err.code === 'conflict')) throw err
    }
    const recovered = await this.recover(target)
    return { ...await this.pullRun(target), recovered }
  }

  private async pullRun (target: Target): Promise<PullResult> {
    const { ledger } = this.components
    let pending: Entry[] = []
    let tip: Head = ledger.head
    let applied = 0
    let bytesReceived = 0
    let requests = 0
    for (;;) {
      requests++
      const stream = await this.dial(target)
      const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
      let head: SignedHead | undefined
      let more = false
      try {
        const signal = AbortSignal.timeout(this.timeoutMs)
        await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: tip.seq, afterHash: tip.hash, limit: this.maxEntries, watch: false }), { signal })
        for (;;) {
          const frame = (await lp.read({ signal })).subarray()
          bytesReceived += frame.length
          const response = this.receive(frame)
          tip = this.extend(pending, tip, response.entries)
          if (response.head !== undefined || response.entries.length === 0) {
            head = response.head
            more = response.more
            break
          }
        }
        await stream.close({ signal }).catch(() => {})
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
      if (head === undefined || head.seq <= ledger.head.seq) return { applied, head: ledger.head, bytesReceived, requests }
      if (tip.seq === head.seq) {
        if (tip.hash !== head.hash) throw this.reject(new LedgerMeshError('chain_broken', `entries end at seq ${tip.seq} with a hash the signed head does not have`))
        await this.apply(pending, head)
        applied += pending.length
        pending = []
        if (!more) return { applied, head: ledger.head, bytesReceived, requests }
      } else if (tip.seq > head.seq || !more) {
        throw this.reject(new LedgerMeshError('bad_message', `source sent entries up to seq ${tip.seq} under a signed head at seq ${head.seq}`))
      }
    }
  }

  /** Verifies that `entries` continue the pending run; returns the new tip. */
  private extend (pending: Entry[], tip: Head, entries: Entry[]): Head {
    if (entries.length === 0) return tip
    const broken = verifyChainLinks(tip, entries)
    if (broken !== undefined) throw this.reject(new LedgerMeshError('chain_broken', `sync batch rejected: ${broken}`))
    pending.push(...entries)
    this.stats.entriesIn += entries.length
    const last = entries[entries.length - 1]
    return { seq: last.seq, hash: last.hash }
  }

  private receive (frame: Uint8Array): SyncResponse {
    this.stats.bytesIn += frame.length
    const response = decodeResponse(frame)
    if (response.error !== undefined) {
      const code = response.error.code === 'diverged' ? 'conflict' : response.error.code === 'unsupported_version' ? 'bad_message' : 'bad_message'
      throw new LedgerMeshError(code, `sync source says ${response.error.code}: ${response.error.message}`)
    }
    return response
  }

  private async apply (entries: Entry[], head: SignedHead): Promise<void> {
    try {
      await this.components.ledger.applyBatch(entries, head)
    } catch (err) {
      throw this.reject(err)
    }
  }

  private reject (err: unknown): Error {
    this.stats.rejected++
    this.components.log.warn({ err: errorMessage(err) }, 'sync batch rejected; the replica stays at its last valid head')
    return err instanceof Error ? err : new Error(String(err))
  }

  /** Finds the last seq the source agrees with (probing back 1, 2, 4, ...) and rewinds to it. */
  private async recover (target: Target): Promise<{ from: number, to: number }> {
    const { ledger, log } = this.components
    const from = ledger.head.seq
    let seq = from - 1
    let step = 1
    while (seq > 0) {
      const [entry] = await ledger.store.range(seq, 1)
      if (entry !== undefined && await this.agrees(target, entry)) break
      seq = Math.max(0, seq - step)
      step *= 2
    }
    log.warn({ from, to: seq }, 'replica diverged from its source: rewinding to the last matching seq')
    await ledger.rewind(seq)
    return { from, to: seq }
  }

  private async agrees (target: Target, entry: Entry): Promise<boolean> {
    const stream = await this.dial(target)
    const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
    try {
      const signal = AbortSignal.timeout(this.timeoutMs)
      await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: entry.seq, afterHash: entry.hash, limit: 0, watch: false }), { signal })
      this.receive((await lp.read({ signal })).subarray())
      await stream.close({ signal }).catch(() => {})
      return true
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (err instanceof LedgerMeshError && err.code === 'conflict') return false
      throw err
    }
  }

  /**
   * Keeps a stream open to `target` and applies each run of entries it pushes. The handle's
   * close() ends it; onClose reports why it ended (undefined when closed by us).
   */
  watch (target: Target, handlers: WatchHandlers): { close: () => void } {
    const controller = new AbortController()
    let stream: Stream | undefined
    const run = async (): Promise<void> => {
      const { ledger } = this.components
      stream = await this.dial(target)
      const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
      let tip: Head = ledger.head
      let pending: Entry[] = []
      await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: tip.seq, afterHash: tip.hash, limit: this.maxEntries, watch: true }), { signal: AbortSignal.timeout(this.timeoutMs) })
      while (!controller.signal.aborted) {
        const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(this.keepaliveMs * 3)])
        const response = this.receive((await lp.read({ signal })).subarray())
        tip = this.extend(pending, tip, response.entries)
        const head = response.head
        if (head === undefined || tip.seq < head.seq || head.seq <= ledger.head.seq) continue
        if (tip.seq > head.seq || tip.hash !== head.hash) throw this.reject(new LedgerMeshError('bad_message', `pushed entries up to seq ${tip.seq} do not end at the signed head seq ${head.seq}`))
        await this.apply(pending, head)
        handlers.onApplied(pending.length, head)
        pending = []
      }
    }
    run().then(
      () => { handlers.onClose() },
      (err: unknown) => {
        stream?.abort(err instanceof Error ? err : new Error(String(err)))
        handlers.onClose(controller.signal.aborted ? undefined : (err instanceof Error ? err : new Error(String(err))))
      }
    )
    return {
      close: () => {
        controller.abort()
        stream?.abort(new Error('watch closed'))
      }
    }
  }

  private async dial (target: Target): Promise<Stream> {
    try {
      return await openStream(this.components.libp2p, target, SYNC_PROTOCOL, AbortSignal.timeout(this.timeoutMs))
    } catch (err) {
      throw new LedgerMeshError('master_unreachable', `cannot open a sync stream to ${target.toString()}: ${errorMessage(err)}`)
    }
  }
}
