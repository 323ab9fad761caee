import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { type Multiaddr, isMultiaddr } from '@multiformats/multiaddr'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { deadlineSignal, shutdownController } from './deadline.js'
import { StreamSlots } from './slots.js'
import type { Outcome } from './wire.js'
import { openStream, type NetNode, type StreamTarget } from './stream.js'

/** What every protocol receives from the node (a protocol may ask for more). */
export interface ProtocolComponents {
  libp2p: NetNode
  log: Logger
  /**
   * The client side's check of whom it reached, before anything is sent: why the peer (its
   * noise-authenticated identity) is not one to talk to, or undefined. A node's insert and
   * lease clients refuse a peer whose key is not a master key its ledger trusts.
   */
  checkPeer?: (peer: PeerId) => string | undefined
}

/** A protocol's id and bounds: each protocol's constants.ts holds its defaults. */
export interface ProtocolLimits {
  /** `/ledgermesh/<name>/<version>` */
  protocol: string
  /** the short name logs and errors use: `lease`, `join`, `insert`, `sync` */
  name: string
  /** the bound of a request and its answer, of a stalled peer, and of one blocked write */
  timeoutMs: number
  /** the largest length-prefixed frame, both ways */
  maxMessageBytes: number
  /** concurrent inbound streams per connection (libp2p resets the ones over) */
  maxInboundStreams: number
  /** concurrent outbound streams from this node; more wait for a slot, within their deadline */
  maxOutboundStreams: number
}

/**
 * The skeleton of every ledgermesh protocol, in the shape of js-libp2p's ping: a class that
 * receives its components, serves its protocol between handle() and stop(), and bounds every
 * stream, inbound or outbound, by a deadline (timeoutMs, or stop()) and by the protocol's
 * stream limits. Subclasses say what serving a stream means (serveStream()).
 */
export abstract class StreamProtocol<C extends ProtocolComponents = ProtocolComponents> {
  readonly protocol: string
  protected readonly name: string
  protected readonly timeoutMs: number
  protected readonly maxMessageBytes: number
  protected readonly maxInboundStreams: number
  protected readonly maxOutboundStreams: number
  /** aborted by stop(): ends every deadline taken from it */
  protected shutdown = shutdownController()
  /** inbound streams being served, aborted on stop() */
  protected readonly serving = new Set<Stream>()
  private readonly outbound: StreamSlots
  private handling = false

  constructor (protected readonly components: C, limits: ProtocolLimits) {
    this.protocol = limits.protocol
    this.name = limits.name
    this.timeoutMs = limits.timeoutMs
    this.maxMessageBytes = limits.maxMessageBytes
    this.maxInboundStreams = limits.maxInboundStreams
    this.maxOutboundStreams = limits.maxOutboundStreams
    this.outbound = new StreamSlots(limits.maxOutboundStreams)
  }

  /** What serving one inbound stream means; the stream is tracked (and aborted on stop()) meanwhile. */
  protected abstract serveStream (stream: Stream, connection: Connection): Promise<void>

  /** true while this node serves the protocol */
  protected handles (): boolean { return this.handling }

  /** Serves the protocol on this node, within its inbound and outbound stream limits. */
  protected async handle (): Promise<void> {
    if (this.handling) return
    await this.components.libp2p.handle(this.protocol, (stream, connection) => { void this.track(stream, connection) }, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: this.maxOutboundStreams
    })
    this.handling = true
  }

  private async track (stream: Stream, connection: Connection): Promise<void> {
    this.serving.add(stream)
    try {
      await this.serveStream(stream, connection)
    } finally {
      this.serving.delete(stream)
    }
  }

  /** Aborts every deadline with `reason`, stops serving, and aborts the streams being served. */
  protected async stopServing (reason: Error): Promise<void> {
    this.shutdown.abort(reason)
    if (this.handling) {
      this.handling = false
      await this.components.libp2p.unhandle(this.protocol).catch(() => {})
    }
    for (const stream of this.serving) stream.abort(new Error(`${this.name} protocol stopped`))
    this.serving.clear()
  }

  /** A new shutdown signal (after stop(), for a protocol that runs again). */
  protected renewShutdown (): void {
    this.shutdown = shutdownController()
  }

  /** The bound of one request, write or answer: timeoutMs, stop(), and any of `signals`. */
  protected deadline (...signals: Array<AbortSignal | undefined>): AbortSignal {
    return deadlineSignal(this.timeoutMs, this.shutdown.signal, ...signals)
  }

  /** Length-prefixed frames of at most maxMessageBytes on `stream`. */
  protected frames (stream: Stream): LengthPrefixedStream {
    return lpStream(stream, { maxDataLength: this.maxMessageBytes })
  }

  /** An outbound slot, waiting for one until `signal` (then `busy()` is thrown); call the release once done. */
  protected async slot (signal: AbortSignal, busy: () => Error): Promise<() => void> {
    try {
      return await this.outbound.acquire(signal)
    } catch {
      throw busy()
    }
  }

  /** A new stream to `target`; a failed dial throws `unreachable(err)`. */
  protected async dial (target: StreamTarget, signal: AbortSignal, unreachable: (err: unknown) => Error): Promise<Stream> {
    try {
      return await openStream(this.components.libp2p, target, this.protocol, signal, this.components.checkPeer)
    } catch (err) {
      throw unreachable(err)
    }
  }

  /** A new stream to `target` within an outbound slot; `release` gives the slot back. */
  protected async open (target: StreamTarget, signal: AbortSignal, errors: { busy: () => Error, unreachable: (err: unknown) => Error }): Promise<{ stream: Stream, release: () => void }> {
    const release = await this.slot(signal, errors.busy)
    try {
      return { stream: await this.dial(target, signal, errors.unreachable), release }
    } catch (err) {
      release()
      throw err
    }
  }
}

/** A request/response protocol's four message codecs. */
export interface MessageCodec<Req, Res> {
  encodeRequest: (request: Req) => Uint8Array
  decodeRequest: (data: Uint8Array) => Req
  encodeResponse: (response: Res) => Uint8Array
  decodeResponse: (data: Uint8Array) => Res
}

/**
 * One request and one answer per stream (lease, join; insert keeps its streams for more).
 * Serving: read one length-prefixed request, answer it (respond(), or refusal() for a
 * LedgerMeshError), close. Client: request() opens a stream in an outbound slot, writes,
 * reads the answer, closes; an unreachable or silent master is `master_unreachable`, and a
 * refusal is thrown with the master's code.
 */
export abstract class RequestResponseProtocol<Req, Res extends Outcome, C extends ProtocolComponents = ProtocolComponents> extends StreamProtocol<C> {
  constructor (components: C, limits: ProtocolLimits, protected readonly codec: MessageCodec<Req, Res>) {
    super(components, limits)
  }

  /** The answer to one request from the peer on `connection`; a LedgerMeshError thrown is answered by refusal(). */
  protected abstract respond (request: Req, connection: Connection): Promise<Res>

  /** The answer that refuses a request with `err`. */
  protected abstract refusal (err: LedgerMeshError, peer: string): Res

  /** What a refusal from the master is thrown as. */
  protected refused (response: Res): LedgerMeshError {
    return new LedgerMeshError(response.errorCode as ErrorCode, response.errorMessage)
  }

  protected async serveStream (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const signal = this.deadline()
    const lp = this.frames(stream)
    try {
      const response = await this.answer((await lp.read({ signal })).subarray(), connection)
      await lp.write(this.codec.encodeResponse(response), { signal })
      await stream.close({ signal })
    } catch (err) {
      this.components.log.debug({ peer, err: errorMessage(err) }, `${this.name} stream ended with an error`)
      stream.abort(toError(err))
    }
  }

  /** The answer to one request frame: respond(), or refusal() of the LedgerMeshError that decoding or answering threw. */
  protected async answer (frame: Uint8Array, connection: Connection): Promise<Res> {
    try {
      return await this.respond(this.codec.decodeRequest(frame), connection)
    } catch (err) {
      if (!(err instanceof LedgerMeshError)) throw err
      return this.refusal(err, connection.remotePeer.toString())
    }
  }

  /** Writes `request` and reads its answer on `lp` (a malformed answer throws bad_message). */
  protected async roundTrip (lp: LengthPrefixedStream, request: Req, signal: AbortSignal): Promise<Res> {
    await lp.write(this.codec.encodeRequest(request), { signal })
    return this.codec.decodeResponse((await lp.read({ signal })).subarray())
  }

  /** A dial that failed, or no free outbound stream in time: the master cannot be reached. */
  protected unreachable (target: StreamTarget): { busy: () => Error, unreachable: (err: unknown) => Error } {
    return {
      busy: () => new LedgerMeshError('master_unreachable', `no free ${this.name} stream within ${this.timeoutMs} ms`),
      unreachable: err => new LedgerMeshError('master_unreachable', `cannot reach the master at ${target.toString()}: ${errorMessage(err)}`)
    }
  }

  /** What a stream that failed before its answer is reported as. */
  protected noAnswer (target: StreamTarget, what: string, signal: AbortSignal, err: unknown): LedgerMeshError {
    const why = signal.aborted ? `no answer within ${this.timeoutMs} ms` : errorMessage(err)
    return new LedgerMeshError('master_unreachable', `the master at ${target.toString()} did not answer${what}: ${why}`)
  }

  /**
   * Sends `request` to the master at `target` on a stream of its own and resolves with its
   * answer; `what` names the request in errors (` the join`).
   */
  protected async request (target: StreamTarget, request: Req, what: string): Promise<Res> {
    const signal = this.deadline()
    const { stream, release } = await this.open(target, signal, this.unreachable(target))
    let response: Res
    try {
      response = await this.roundTrip(this.frames(stream), request, signal)
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      stream.abort(toError(err))
      if (err instanceof LedgerMeshError) throw err
      throw this.noAnswer(target, what, signal, err)
    } finally {
      release()
    }
    if (!response.ok) throw this.refused(response)
    return response
  }
}

/**
 * A request/response protocol that the master serves with a handler (lease: the allocator's
 * grantor; join: the gatekeeper's): serve(handler) starts serving, stop() ends it. Its client
 * side needs neither, and works again after stop().
 */
export abstract class HandledProtocol<Req, Res extends Outcome, H, C extends ProtocolComponents = ProtocolComponents> extends RequestResponseProtocol<Req, Res, C> {
  /** set while this node serves the protocol */
  protected handler?: H

  /** Serves the protocol on this node with `handler` (a second call is ignored). */
  async serve (handler: H): Promise<void> {
    if (this.handler !== undefined) return
    this.handler = handler
    await this.handle()
  }

  async stop (): Promise<void> {
    await this.stopServing(new Error(`the ${this.name} protocol is stopping`))
    this.renewShutdown()
    this.handler = undefined
  }

  /**
   * Whether `target` is this node itself (one of its listen addresses, or its peer id): a node
   * holding several roles (stand-alone) asks itself, which libp2p cannot dial.
   */
  protected isSelf (target: StreamTarget): boolean {
    const libp2p = this.components.libp2p
    if (!isMultiaddr(target)) return target.equals(libp2p.peerId)
    const wanted = hostAndPort(target)
    return libp2p.getMultiaddrs().some(own => {
      const o = hostAndPort(own)
      return o.port !== undefined && o.port === wanted.port && (o.host === wanted.host || o.host === '0.0.0.0')
    })
  }
}

/** The ip and tcp port a multiaddr names (undefined parts when it names none). */
function hostAndPort (address: Multiaddr): { host?: string, port?: string } {
  const parts = address.getComponents()
  return { host: parts.find(p => p.name === 'ip4' || p.name === 'ip6')?.value, port: parts.find(p => p.name === 'tcp')?.value }
}

/** The bounds a protocol's init may override. */
export type LimitOverrides = Partial<Pick<ProtocolLimits, 'timeoutMs' | 'maxMessageBytes' | 'maxInboundStreams' | 'maxOutboundStreams'>>

/** A protocol's limits: its defaults (constants.ts's LIMITS), with what `init` sets. */
export function limitsOf (defaults: ProtocolLimits, init: LimitOverrides): ProtocolLimits {
  return {
    ...defaults,
    timeoutMs: init.timeoutMs ?? defaults.timeoutMs,
    maxMessageBytes: init.maxMessageBytes ?? defaults.maxMessageBytes,
    maxInboundStreams: init.maxInboundStreams ?? defaults.maxInboundStreams,
    maxOutboundStreams: init.maxOutboundStreams ?? defaults.maxOutboundStreams
  }
}
