import { setMaxListeners } from 'node:events'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { canonicalJson } from '../../policies/canonical.js'
import { policyId } from '../../policies/policy.js'
import { parsePolicyJson } from '../../policies/validate.js'
import { deadlineSignal } from '../../net/deadline.js'
import { StreamSlots } from '../../net/slots.js'
import { openStream, type NetNode } from '../../net/stream.js'
import type { LedgerOp } from '../../ledger/entry.js'
import type { Ledger } from '../../ledger/ledger.js'
import { IDLE_STREAM_MS, INSERT_PROTOCOL, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_OUTBOUND_STREAMS, TIMEOUT_MS, WIRE_VERSION } from './constants.js'
import { type InsertResponse, decodeInsertRequest, decodeInsertResponse, encodeInsertRequest, encodeInsertResponse } from './messages.js'

export interface InsertComponents {
  libp2p: NetNode
  ledger: Ledger
  log: Logger
  /** told of every insert served: undefined when accepted, else the error code and its reason, if any (for metrics) */
  onServed?: (errorCode?: string, reason?: string) => void
  /** the master's own checks of an op before Ledger.submit (sealed profile settings); throws to refuse it */
  check?: (op: LedgerOp) => void
}

export interface InsertInit {
  /** concurrent inbound insert streams per connection at the master */
  maxInboundStreams?: number
  /** concurrent submits from this node; more wait for a slot */
  maxOutboundStreams?: number
  /** see TIMEOUT_MS */
  timeoutMs?: number
  maxMessageBytes?: number
}

export type InsertTarget = Multiaddr | PeerId

/** Codes a master may answer with that this node maps to its own; anything else is `internal`. */
const REMOTE_CODES = new Set<string>([
  'bad_policy', 'bad_signature', 'duplicate_id', 'unauthorized', 'not_found', 'store_unavailable', 'bad_message',
  'master_unreachable', 'conflict', 'chain_broken', 'timeout', 'overloaded', 'internal'
])

function remoteCode (code: string): ErrorCode {
  if (REMOTE_CODES.has(code)) return code as ErrorCode
  return code === 'unsupported_version' ? 'bad_message' : 'internal'
}

/**
 * `/ledgermesh/insert/1.0.0`. The master serves it (start() registers the handler only when
 * the ledger is the master's): each request is parsed, then validated, authorized and
 * group-committed by `Ledger.submit`, and answered with its seq once the commit is durable,
 * or with the error's code and message. Any node submits with `submit()`.
 */
export class InsertProtocol {
  readonly protocol = INSERT_PROTOCOL
  private readonly components: InsertComponents
  private readonly timeoutMs: number
  private readonly maxMessageBytes: number
  private readonly maxInboundStreams: number
  private readonly maxOutboundStreams: number
  private readonly outbound: StreamSlots
  private serving = false
  private shutdown = new AbortController()
  private readonly streams = new Set<Stream>()
  /** open streams to each master, kept between inserts (see exchange()) */
  private readonly idle = new Map<string, OpenStream[]>()

  constructor (components: InsertComponents, init: InsertInit = {}) {
    this.components = components
    this.timeoutMs = init.timeoutMs ?? TIMEOUT_MS
    this.maxMessageBytes = init.maxMessageBytes ?? MAX_MESSAGE_BYTES
    this.maxInboundStreams = init.maxInboundStreams ?? MAX_INBOUND_STREAMS
    this.maxOutboundStreams = init.maxOutboundStreams ?? MAX_OUTBOUND_STREAMS
    this.outbound = new StreamSlots(this.maxOutboundStreams)
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/insert'

  /** true while this node serves inserts (it is the master and start() ran) */
  isServing (): boolean { return this.serving }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    setMaxListeners(Infinity, this.shutdown.signal)
    if (!this.components.ledger.isMaster || this.serving) return
    await this.components.libp2p.handle(INSERT_PROTOCOL, this.onStream, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: this.maxOutboundStreams
    })
    this.serving = true
  }

  async stop (): Promise<void> {
    this.shutdown.abort(new LedgerMeshError('timeout', 'the insert protocol is stopping'))
    if (this.serving) await this.components.libp2p.unhandle(INSERT_PROTOCOL).catch(() => {})
    this.serving = false
    for (const stream of this.streams) stream.abort(new Error('insert protocol stopped'))
    this.streams.clear()
    for (const open of [...this.idle.values()].flat()) {
      clearTimeout(open.idleTimer)
      open.stream.abort(new Error('insert protocol stopped'))
    }
    this.idle.clear()
  }

  private deadline (): AbortSignal {
    return deadlineSignal(this.timeoutMs, this.shutdown.signal)
  }

  // ---- serving (master) ----

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    void this.serve(stream, connection)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const { log } = this.components
    const peer = connection.remotePeer.toString()
    this.streams.add(stream)
    const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
    try {
      // A client may send further requests on the same stream, each after the previous answer
      // (a stream per insert costs more than the insert); it closes its side when done.
      for (let first = true; ; first = false) {
        const response = await this.answer(lp, stream, peer, first)
        if (response === undefined) return
        this.components.onServed?.(response.ok ? undefined : response.errorCode, response.reason)
        await lp.write(encodeInsertResponse(response), { signal: this.deadline() })
      }
    } catch (err) {
      log.debug({ peer, err: errorMessage(err) }, 'insert stream ended with an error')
      stream.abort(toError(err))
    } finally {
      this.streams.delete(stream)
    }
  }

  /** The answer to the request on `stream`, or undefined when the stream had to be aborted. */
  private async answer (lp: LengthPrefixedStream, stream: Stream, peer: string, first: boolean): Promise<(InsertResponse & { reason?: string }) | undefined> {
    const { ledger, log } = this.components
    const refuse = (code: string, message: string, reason?: string): InsertResponse & { reason?: string } => {
      log.warn({ peer, code, reason, err: message }, 'insert refused')
      return { ok: false, seq: 0, id: '', errorCode: code, errorMessage: message, reason }
    }
    const signal = this.deadline()
    let frame: Uint8Array
    try {
      frame = (await lp.read({ signal })).subarray()
    } catch (err) {
      if (this.shutdown.signal.aborted) {
        stream.abort(toError(err))
        return undefined
      }
      if (!first && (signal.aborted || (err instanceof Error && err.name === 'UnexpectedEOFError'))) {
        // after an answer: the client closed its side, or kept the stream idle too long
        await stream.close({ signal: this.deadline() }).catch(() => { stream.abort(toError(err)) })
        return undefined
      }
      if (signal.aborted) return refuse('timeout', `no insert request within ${this.timeoutMs} ms`)
      if (err instanceof Error && err.name === 'UnexpectedEOFError') return refuse('bad_message', `truncated insert request: ${err.message}`)
      // an oversized length prefix and the like: the framing is lost
      log.debug({ peer, err: errorMessage(err) }, 'unreadable insert request; stream aborted')
      stream.abort(toError(err))
      return undefined
    }
    let op: LedgerOp
    try {
      if (frame.byteLength === 0) throw new LedgerMeshError('bad_message', 'empty insert request')
      const request = decodeInsertRequest(frame)
      op = { op: request.op, policy: parsePolicyJson(request.policy) }
    } catch (err) {
      if (err instanceof LedgerMeshError) {
        return refuse(typeof err.details.insertError === 'string' ? err.details.insertError : err.code, err.message)
      }
      return refuse('bad_policy', errorMessage(err))
    }
    let id: string
    try {
      id = policyId(op.policy)
    } catch (err) {
      return refuse('bad_policy', errorMessage(err))
    }
    try {
      // Bounded: a commit slower than timeoutMs is answered `timeout` (it may still land:
      // a retry then gets duplicate_id, which an outbox treats as done).
      this.components.check?.(op)
      const entry = await this.withinTimeout(ledger.submit(op), `the commit did not complete within ${this.timeoutMs} ms`)
      log.info({ peer, id, seq: entry.seq }, 'policy accepted')
      return { ok: true, seq: entry.seq, id, errorCode: '', errorMessage: '' }
    } catch (err) {
      const reason = err instanceof LedgerMeshError && typeof err.details.reason === 'string' ? err.details.reason : undefined
      return refuse(err instanceof LedgerMeshError ? err.code : 'internal', errorMessage(err), reason)
    }
  }

  private async withinTimeout<T> (promise: Promise<T>, message: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new LedgerMeshError('timeout', message)) }, this.timeoutMs)
        })
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  // ---- client ----

  /**
   * Sends one put or delete to the master; resolves with its seq and id once the master holds
   * it durably. Throws LedgerMeshError with the master's code and message when it refuses,
   * or `master_unreachable` when it cannot be reached or does not answer within timeoutMs.
   */
  async submit (target: InsertTarget, op: LedgerOp): Promise<{ seq: number, id: string }> {
    let policy: string
    try {
      policy = canonicalJson(op.policy)
    } catch (err) {
      throw new LedgerMeshError('bad_policy', `the policy has no canonical JSON form: ${errorMessage(err)}`)
    }
    const request = encodeInsertRequest({ version: WIRE_VERSION, op: op.op, policy })
    const signal = this.deadline()
    let release: () => void
    try {
      release = await this.outbound.acquire(signal)
    } catch {
      throw new LedgerMeshError('master_unreachable', `no free insert stream (${this.maxOutboundStreams} in flight) within ${this.timeoutMs} ms`)
    }
    try {
      const idle = this.takeIdle(target)
      if (idle !== undefined) {
        try {
          return await this.exchange(idle, target, request, signal)
        } catch (err) {
          // The master closed the idle stream (it restarted, or the connection dropped): once
          // more on a new stream. If it had committed the insert, that gives duplicate_id,
          // which an outbox treats as done.
          if (!(err instanceof StaleStreamError)) throw err
        }
      }
      let stream: Stream
      try {
        stream = await openStream(this.components.libp2p, target, INSERT_PROTOCOL, signal)
      } catch (err) {
        throw new LedgerMeshError('master_unreachable', `cannot reach the master at ${target.toString()}: ${errorMessage(err)}`)
      }
      return await this.exchange({ stream, lp: lpStream(stream, { maxDataLength: this.maxMessageBytes }) }, target, request, signal)
    } finally {
      release()
    }
  }

  /** One request and its answer on `open`; the stream goes back to the idle ones afterwards. */
  private async exchange (open: OpenStream, target: InsertTarget, request: Uint8Array, signal: AbortSignal): Promise<{ seq: number, id: string }> {
    const { stream, lp } = open
    let response: InsertResponse
    let answered = false
    try {
      await lp.write(request, { signal })
      const frame = await lp.read({ signal })
      answered = true
      response = decodeInsertResponse(frame.subarray())
    } catch (err) {
      stream.abort(toError(err))
      if (err instanceof LedgerMeshError) throw err
      if (open.reused === true && !answered && !signal.aborted) throw new StaleStreamError(errorMessage(err))
      const why = signal.aborted ? `no answer within ${this.timeoutMs} ms` : errorMessage(err)
      throw new LedgerMeshError('master_unreachable', `the master at ${target.toString()} did not answer: ${why}`)
    }
    this.putIdle(target, open)
    if (!response.ok) {
      throw new LedgerMeshError(remoteCode(response.errorCode), response.errorMessage, { remoteCode: response.errorCode })
    }
    return { seq: response.seq, id: response.id }
  }

  private takeIdle (target: InsertTarget): OpenStream | undefined {
    const streams = this.idle.get(target.toString())
    for (let open = streams?.pop(); open !== undefined; open = streams?.pop()) {
      clearTimeout(open.idleTimer)
      if (open.stream.status === 'open' && open.stream.writeStatus === 'writable' && open.stream.readStatus === 'readable') {
        return { ...open, reused: true }
      }
      open.stream.abort(new Error('insert stream no longer open'))
    }
    return undefined
  }

  private putIdle (target: InsertTarget, open: OpenStream): void {
    if (this.shutdown.signal.aborted) {
      void open.stream.close().catch(() => {})
      return
    }
    const key = target.toString()
    let streams = this.idle.get(key)
    if (streams === undefined) { streams = []; this.idle.set(key, streams) }
    const entry: OpenStream = { stream: open.stream, lp: open.lp }
    // closed well before the master's own wait for a next request (timeoutMs) runs out
    entry.idleTimer = setTimeout(() => {
      const i = streams.indexOf(entry)
      if (i >= 0) streams.splice(i, 1)
      void open.stream.close().catch(() => { open.stream.abort(new Error('idle insert stream')) })
    }, Math.min(IDLE_STREAM_MS, this.timeoutMs / 2))
    entry.idleTimer.unref()
    streams.push(entry)
  }
}

/** A stream to the master this node keeps between inserts. */
interface OpenStream {
  stream: Stream
  lp: LengthPrefixedStream
  reused?: boolean
  idleTimer?: NodeJS.Timeout
}

/** A reused stream failed before its answer began: the master had closed it. */
class StaleStreamError extends Error {}

/** The protocol as a libp2p-style service factory: `insertProtocol(init)(components)`. */
export function insertProtocol (init: InsertInit = {}): (components: InsertComponents) => InsertProtocol {
  return (components) => new InsertProtocol(components, init)
}
