import { setMaxListeners } from 'node:events'
import type { Connection, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { deadlineSignal } from '../../net/deadline.js'
import { StreamSlots } from '../../net/slots.js'
import { openStream, type NetNode } from '../../net/stream.js'
import { LEASE_PROTOCOL, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_OUTBOUND_STREAMS, TIMEOUT_MS, WIRE_VERSION } from './constants.js'
import { type LeaseRequest, type LeaseResponse, decodeLeaseRequest, decodeLeaseResponse, encodeLeaseRequest, encodeLeaseResponse } from './messages.js'

export interface LeaseComponents {
  libp2p: NetNode
  log: Logger
}

export interface LeaseInit {
  timeoutMs?: number
}

/** The lease's terms, as the master grants them. */
export interface LeaseGrant {
  ttlMs: number
  graceMs: number
  minSeq: number
}

/** The master's side: decides a renewal (throws LedgerMeshError to refuse it). */
export type LeaseGrantor = (request: LeaseRequest, remotePeer: string) => Promise<LeaseGrant>

/**
 * `/ledgermesh/lease/1.0.0`: one request and one answer per stream. The master serves it
 * (serve() with the allocator's grantor); a worker calls renew() every few seconds. Leases
 * live outside the ledger, like Kubernetes Lease objects: they change too often to order.
 */
export class LeaseProtocol {
  readonly protocol = LEASE_PROTOCOL
  private readonly timeoutMs: number
  private readonly outbound = new StreamSlots(MAX_OUTBOUND_STREAMS)
  private grantor?: LeaseGrantor
  private shutdown = new AbortController()

  constructor (private readonly components: LeaseComponents, init: LeaseInit = {}) {
    this.timeoutMs = init.timeoutMs ?? TIMEOUT_MS
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/lease'

  /** Serves renewals on this node (the master). */
  async serve (grantor: LeaseGrantor): Promise<void> {
    if (this.grantor !== undefined) return
    this.grantor = grantor
    await this.components.libp2p.handle(LEASE_PROTOCOL, (stream, connection) => { void this.answer(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS,
      maxOutboundStreams: MAX_OUTBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    this.shutdown.abort(new Error('the lease protocol is stopping'))
    this.shutdown = new AbortController()
    setMaxListeners(Infinity, this.shutdown.signal)
    if (this.grantor !== undefined) await this.components.libp2p.unhandle(LEASE_PROTOCOL).catch(() => {})
    this.grantor = undefined
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const signal = deadlineSignal(this.timeoutMs, this.shutdown.signal)
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    try {
      let response: LeaseResponse
      try {
        const request = decodeLeaseRequest((await lp.read({ signal })).subarray())
        const grant = await this.grantor!(request, peer)
        response = { ok: true, ...grant, errorCode: '', errorMessage: '' }
      } catch (err) {
        if (!(err instanceof LedgerMeshError)) throw err
        this.components.log.warn({ peer, code: err.code, err: err.message }, 'lease renewal refused')
        response = { ok: false, ttlMs: 0, graceMs: 0, minSeq: 0, errorCode: err.code, errorMessage: err.message }
      }
      await lp.write(encodeLeaseResponse(response), { signal })
      await stream.close({ signal })
    } catch (err) {
      this.components.log.debug({ peer, err: errorMessage(err) }, 'lease stream ended with an error')
      stream.abort(toError(err))
    }
  }

  /**
   * Renews this worker's lease at the master. Resolves with the grant; throws
   * `master_unreachable` when the master cannot be reached in time, or the master's refusal.
   */
  async renew (target: Multiaddr, request: Omit<LeaseRequest, 'version'>): Promise<LeaseGrant> {
    const signal = deadlineSignal(this.timeoutMs, this.shutdown.signal)
    let release: () => void
    try {
      release = await this.outbound.acquire(signal)
    } catch {
      throw new LedgerMeshError('master_unreachable', `no free lease stream within ${this.timeoutMs} ms`)
    }
    try {
      let stream: Stream
      try {
        stream = await openStream(this.components.libp2p, target, LEASE_PROTOCOL, signal)
      } catch (err) {
        throw new LedgerMeshError('master_unreachable', `cannot reach the master at ${target.toString()}: ${errorMessage(err)}`)
      }
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      let response: LeaseResponse
      try {
        await lp.write(encodeLeaseRequest({ version: WIRE_VERSION, ...request }), { signal })
        response = decodeLeaseResponse((await lp.read({ signal })).subarray())
        await stream.close({ signal }).catch(() => {})
      } catch (err) {
        stream.abort(toError(err))
        if (err instanceof LedgerMeshError) throw err
        throw new LedgerMeshError('master_unreachable', `the master at ${target.toString()} did not answer the lease renewal: ${signal.aborted ? `no answer within ${this.timeoutMs} ms` : errorMessage(err)}`)
      }
      if (!response.ok) throw new LedgerMeshError(response.errorCode as ErrorCode, response.errorMessage)
      return { ttlMs: response.ttlMs, graceMs: response.graceMs, minSeq: response.minSeq }
    } finally {
      release()
    }
  }
}
