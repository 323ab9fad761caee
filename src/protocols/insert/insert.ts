import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { LengthPrefixedStream } from '@libp2p/utils'
import pTimeout from 'p-timeout'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import { type ProtocolComponents, RequestResponseProtocol, limitsOf } from '../../net/protocol.js'
import { remotePeerOf } from '../../net/stream.js'
import { canonicalJson } from '../../policies/canonical.js'
import { policyId } from '../../policies/policy.js'
import { parsePolicyJson } from '../../policies/validate.js'
import type { Entry, LedgerOp } from '../../ledger/entry.js'
import type { Ledger } from '../../ledger/ledger.js'
import type { SignedHead } from '../../ledger/head.js'
import { IDLE_STREAM_MS, LIMITS, WIRE_VERSION } from './constants.js'
import { INSERT_CODEC, type InsertRequest, type InsertResponse, encodeInsertResponse } from './messages.js'

export interface InsertComponents extends ProtocolComponents {
  ledger: Ledger
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

/** A submit the master ordered: its seq and id, and (from masters that send them) its chain link and signed head. */
export interface Submitted {
  seq: number
  id: string
  link?: { prevHash: string, hash: string }
  head?: SignedHead
}

/** Codes a master may answer with that this node maps to its own; anything else is `internal`. */
const REMOTE_CODES = new Set<string>([
  'bad_policy', 'bad_signature', 'duplicate_id', 'unauthorized', 'not_found', 'store_unavailable', 'bad_message',
  'master_unreachable', 'conflict', 'chain_broken', 'timeout', 'overloaded', 'not_active', 'internal'
])

function remoteCode (code: string): ErrorCode {
  if (REMOTE_CODES.has(code)) return code as ErrorCode
  return code === 'unsupported_version' ? 'bad_message' : 'internal'
}

/** What `f` returns; anything it throws that is not a LedgerMeshError is `bad_policy`. */
function asPolicy<T> (f: () => T): T {
  try {
    return f()
  } catch (err) {
    throw err instanceof LedgerMeshError ? err : new LedgerMeshError('bad_policy', errorMessage(err))
  }
}

/**
 * `/ledgermesh/insert/1.0.0`. The master serves it (start() registers the handler only when
 * the ledger is the master's): each request is parsed, then validated, authorized and
 * group-committed by `Ledger.submit`, and answered with its seq once the commit is durable,
 * or with the error's code and message. Any node submits with `submit()`.
 */
export class InsertProtocol extends RequestResponseProtocol<InsertRequest, InsertResponse, InsertComponents> {
  /** open streams to each master, kept between inserts (see exchange()) */
  private readonly idle = new Map<string, OpenStream[]>()

  constructor (components: InsertComponents, init: InsertInit = {}) {
    super(components, limitsOf(LIMITS, init), INSERT_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/insert'

  /** true while this node serves inserts (it is the master and start() ran) */
  isServing (): boolean { return this.handles() }

  async start (): Promise<void> {
    this.renewShutdown()
    if (!this.components.ledger.isMaster) return
    await this.handle()
  }

  async stop (): Promise<void> {
    await this.stopServing(new LedgerMeshError('timeout', 'the insert protocol is stopping'))
    for (const open of [...this.idle.values()].flat()) {
      clearTimeout(open.idleTimer)
      open.stream.abort(new Error('insert protocol stopped'))
    }
    this.idle.clear()
  }

  // ---- serving (master) ----

  protected override async serveStream (stream: Stream, connection: Connection): Promise<void> {
    const { log } = this.components
    const peer = connection.remotePeer.toString()
    const lp = this.frames(stream)
    try {
      // A client may send further requests on the same stream, each after the previous answer
      // (a stream per insert costs more than the insert); it closes its side when done.
      for (let first = true; ; first = false) {
        const response = await this.next(lp, stream, connection, first)
        if (response === undefined) return
        this.components.onServed?.(response.ok ? undefined : response.errorCode, response.reason)
        await lp.write(encodeInsertResponse(response), { signal: this.deadline() })
      }
    } catch (err) {
      log.debug({ peer, err: errorMessage(err) }, 'insert stream ended with an error')
      stream.abort(toError(err))
    }
  }

  /** The answer to the next request on `stream`, or undefined when the stream is done (closed or aborted). */
  private async next (lp: LengthPrefixedStream, stream: Stream, connection: Connection, first: boolean): Promise<InsertResponse | undefined> {
    const peer = connection.remotePeer.toString()
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
      if (signal.aborted) return this.refusal(new LedgerMeshError('timeout', `no insert request within ${this.timeoutMs} ms`), peer)
      if (err instanceof Error && err.name === 'UnexpectedEOFError') return this.refusal(new LedgerMeshError('bad_message', `truncated insert request: ${err.message}`), peer)
      // an oversized length prefix and the like: the framing is lost
      this.components.log.debug({ peer, err: errorMessage(err) }, 'unreadable insert request; stream aborted')
      stream.abort(toError(err))
      return undefined
    }
    if (frame.byteLength === 0) return this.refusal(new LedgerMeshError('bad_message', 'empty insert request'), peer)
    return await this.answer(frame, connection)
  }

  protected async respond (request: InsertRequest, connection: Connection): Promise<InsertResponse> {
    const { ledger, log } = this.components
    const op: LedgerOp = { op: request.op, policy: asPolicy(() => parsePolicyJson(request.policy)) }
    const id = asPolicy(() => policyId(op.policy))
    let entry: Entry
    try {
      // Bounded: a commit slower than timeoutMs is answered `timeout` (it may still land:
      // a retry then gets duplicate_id, which an outbox treats as done).
      this.components.check?.(op)
      const message = new LedgerMeshError('timeout', `the commit did not complete within ${this.timeoutMs} ms`)
      entry = await pTimeout(ledger.submit(op), { milliseconds: this.timeoutMs, message })
    } catch (err) {
      throw err instanceof LedgerMeshError ? err : new LedgerMeshError('internal', errorMessage(err))
    }
    const { seq, prevHash, hash } = entry
    log.info({ peer: connection.remotePeer.toString(), id, seq }, 'policy accepted')
    // the signed head, when it is this entry's own (the entry ended its commit)
    const head = ledger.signedHead
    return { ok: true, seq, id, errorCode: '', errorMessage: '', link: { prevHash, hash }, ...(head?.seq === seq && head.hash === hash ? { head } : {}) }
  }

  protected refusal (err: LedgerMeshError, peer: string): InsertResponse {
    const code = typeof err.details.insertError === 'string' ? err.details.insertError : err.code
    const reason = typeof err.details.reason === 'string' ? err.details.reason : undefined
    this.components.log.warn({ peer, code, reason, err: err.message }, 'insert refused')
    // a standby that knows the active master says where it is (MasterList goes there next)
    const active = err.code === 'not_active' && typeof err.details.active === 'string' ? { active: err.details.active } : {}
    return { ok: false, seq: 0, id: '', errorCode: code, errorMessage: err.message, reason, ...active }
  }

  protected override refused (response: InsertResponse): LedgerMeshError {
    const active = response.active === undefined ? {} : { active: response.active }
    const reason = response.reason === undefined ? {} : { reason: response.reason }
    return new LedgerMeshError(remoteCode(response.errorCode), response.errorMessage, { remoteCode: response.errorCode, ...active, ...reason })
  }

  // ---- client ----

  /**
   * Sends one put or delete to the master; resolves with its seq and id once the master holds
   * it durably. Throws LedgerMeshError with the master's code and message when it refuses,
   * or `master_unreachable` when it cannot be reached or does not answer within timeoutMs.
   */
  async submit (target: InsertTarget, op: LedgerOp): Promise<Submitted> {
    let policy: string
    try {
      policy = canonicalJson(op.policy)
    } catch (err) {
      throw new LedgerMeshError('bad_policy', `the policy has no canonical JSON form: ${errorMessage(err)}`)
    }
    const request: InsertRequest = { version: WIRE_VERSION, op: op.op, policy }
    const signal = this.deadline()
    const release = await this.slot(signal, () => new LedgerMeshError('master_unreachable', `no free insert stream (${this.maxOutboundStreams} in flight) within ${this.timeoutMs} ms`))
    try {
      let idle = this.takeIdle(target)
      // a stream kept from before this node trusted a master key is checked again, like a dial
      const peer = idle === undefined ? undefined : remotePeerOf(idle.stream)
      if (idle !== undefined && peer !== undefined && this.components.checkPeer?.(peer) !== undefined) {
        idle.stream.abort(new Error('the peer is no longer one to talk to'))
        idle = undefined
      }
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
      const stream = await this.dial(target, signal, this.unreachable(target).unreachable)
      return await this.exchange({ stream, lp: this.frames(stream) }, target, request, signal)
    } finally {
      release()
    }
  }

  /** One request and its answer on `open`; the stream goes back to the idle ones afterwards. */
  private async exchange (open: OpenStream, target: InsertTarget, request: InsertRequest, signal: AbortSignal): Promise<Submitted> {
    let response: InsertResponse
    try {
      response = await this.roundTrip(open.lp, request, signal)
    } catch (err) {
      open.stream.abort(toError(err))
      if (err instanceof LedgerMeshError) throw err
      // a reused stream that fails before its answer (a malformed answer is a LedgerMeshError) was closed by the master
      if (open.reused === true && !signal.aborted) throw new StaleStreamError(errorMessage(err))
      throw this.noAnswer(target, '', signal, err)
    }
    this.putIdle(target, open)
    if (!response.ok) throw this.refused(response)
    return { seq: response.seq, id: response.id, ...(response.link === undefined ? {} : { link: response.link }), ...(response.head === undefined ? {} : { head: response.head }) }
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
