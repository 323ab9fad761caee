import { setMaxListeners } from 'node:events'
import type { Connection, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { publicKeyHexOf } from '../../policies/keys.js'
import { deadlineSignal } from '../../net/deadline.js'
import { StreamSlots } from '../../net/slots.js'
import { openStream, type NetNode } from '../../net/stream.js'
import { JOIN_PROTOCOL, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_OUTBOUND_STREAMS, TIMEOUT_MS, WIRE_VERSION } from './constants.js'
import { type JoinResponse, decodeJoinRequest, decodeJoinResponse, encodeJoinRequest, encodeJoinResponse } from './messages.js'

export interface JoinComponents {
  libp2p: NetNode
  log: Logger
}

export interface JoinInit {
  timeoutMs?: number
}

/** The master's side: admits `key` for `token`, resolving with the admission's seq (throws LedgerMeshError to refuse). */
export type JoinGrantor = (request: { token: string, name: string, key: string, peer: string }) => Promise<{ seq: number }>

/**
 * `/ledgermesh/join/1.0.0`: one request and one answer per stream. The master serves it with
 * its gatekeeper; a node started with JOIN_TOKEN calls join() on first contact. The key being
 * admitted is the connection's own (noise authenticates it), never one named in the request.
 */
export class JoinProtocol {
  readonly protocol = JOIN_PROTOCOL
  private readonly timeoutMs: number
  private readonly outbound = new StreamSlots(MAX_OUTBOUND_STREAMS)
  private grantor?: JoinGrantor
  private shutdown = new AbortController()

  constructor (private readonly components: JoinComponents, init: JoinInit = {}) {
    this.timeoutMs = init.timeoutMs ?? TIMEOUT_MS
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/join'

  /** Serves joins on this node (the master). */
  async serve (grantor: JoinGrantor): Promise<void> {
    if (this.grantor !== undefined) return
    this.grantor = grantor
    await this.components.libp2p.handle(JOIN_PROTOCOL, (stream, connection) => { void this.answer(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS,
      maxOutboundStreams: MAX_OUTBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    this.shutdown.abort(new Error('the join protocol is stopping'))
    this.shutdown = new AbortController()
    setMaxListeners(Infinity, this.shutdown.signal)
    if (this.grantor !== undefined) await this.components.libp2p.unhandle(JOIN_PROTOCOL).catch(() => {})
    this.grantor = undefined
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const signal = deadlineSignal(this.timeoutMs, this.shutdown.signal)
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    try {
      let response: JoinResponse
      try {
        const request = decodeJoinRequest((await lp.read({ signal })).subarray())
        const key = publicKeyHexOf(connection.remotePeer)
        if (key === undefined) throw new LedgerMeshError('unauthorized', `peer ${peer} has no Ed25519 identity key to admit`)
        const { seq } = await this.grantor!({ token: request.token, name: request.name, key, peer })
        response = { ok: true, seq, errorCode: '', errorMessage: '' }
      } catch (err) {
        if (!(err instanceof LedgerMeshError)) throw err
        response = { ok: false, seq: 0, errorCode: err.code, errorMessage: err.message }
      }
      await lp.write(encodeJoinResponse(response), { signal })
      await stream.close({ signal })
    } catch (err) {
      this.components.log.debug({ peer, err: errorMessage(err) }, 'join stream ended with an error')
      stream.abort(toError(err))
    }
  }

  /**
   * Presents `token` to the master at `target`. Resolves with the admission's seq; throws
   * `master_unreachable` when the master cannot be reached in time, or the master's refusal.
   */
  async join (target: Multiaddr, token: string, name: string): Promise<{ seq: number }> {
    const signal = deadlineSignal(this.timeoutMs, this.shutdown.signal)
    let release: () => void
    try {
      release = await this.outbound.acquire(signal)
    } catch {
      throw new LedgerMeshError('master_unreachable', `no free join stream within ${this.timeoutMs} ms`)
    }
    try {
      let stream: Stream
      try {
        stream = await openStream(this.components.libp2p, target, JOIN_PROTOCOL, signal)
      } catch (err) {
        throw new LedgerMeshError('master_unreachable', `cannot reach the master at ${target.toString()}: ${errorMessage(err)}`)
      }
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      let response: JoinResponse
      try {
        await lp.write(encodeJoinRequest({ version: WIRE_VERSION, token, name }), { signal })
        response = decodeJoinResponse((await lp.read({ signal })).subarray())
        await stream.close({ signal }).catch(() => {})
      } catch (err) {
        stream.abort(toError(err))
        if (err instanceof LedgerMeshError) throw err
        throw new LedgerMeshError('master_unreachable', `the master at ${target.toString()} did not answer the join: ${signal.aborted ? `no answer within ${this.timeoutMs} ms` : errorMessage(err)}`)
      }
      if (!response.ok) throw new LedgerMeshError(response.errorCode as ErrorCode, response.errorMessage)
      return { seq: response.seq }
    } finally {
      release()
    }
  }
}
