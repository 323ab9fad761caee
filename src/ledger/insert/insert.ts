import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { type ErrorCode, LedgerMeshError, errorMessage } from '../../errors.js'
import type { Logger } from '../../node/logger.js'
import { canonicalJson } from '../../policies/canonical.js'
import { policyId } from '../../policies/policy.js'
import { parsePolicyJson } from '../../policies/validate.js'
import { openStream, type P2PNode } from '../../services/p2p.js'
import type { LedgerOp } from '../entry.js'
import type { Ledger } from '../ledger.js'
import { INSERT_PROTOCOL, MAX_INBOUND_STREAMS, MAX_MESSAGE_BYTES, MAX_OUTBOUND_STREAMS, TIMEOUT_MS, WIRE_VERSION } from './constants.js'
import { decodeInsertRequest, decodeInsertResponse, encodeInsertRequest, encodeInsertResponse, type InsertResponse } from './messages.js'

export interface InsertComponents {
  libp2p: P2PNode
  ledger: Ledger
  log: Logger
  /** told of every insert served: undefined when accepted, else the error code (for metrics) */
  onServed?: (errorCode?: string) => void
}

const KNOWN_CODES = new Set<string>(['bad_policy', 'bad_signature', 'duplicate_id', 'unauthorized', 'not_found', 'store_unavailable', 'bad_message', 'master_unreachable', 'conflict', 'chain_broken', 'timeout'])

/**
 * `/ledgermesh/insert/1.0.0`. The master serves it: each request is validated, authorized
 * and group-committed by `Ledger.submit`, and answered with its seq only once the commit is
 * durable. Any node submits with `submit()`.
 */
export class InsertProtocol {
  private started = false

  constructor (private readonly components: InsertComponents, private readonly init: { timeoutMs?: number } = {}) {}

  async start (): Promise<void> {
    if (this.components.ledger.isMaster) {
      await this.components.libp2p.handle(INSERT_PROTOCOL, (stream, connection) => {
        void this.serve(stream, connection)
      }, { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_OUTBOUND_STREAMS })
    }
    this.started = true
  }

  async stop (): Promise<void> {
    if (this.started && this.components.ledger.isMaster) await this.components.libp2p.unhandle(INSERT_PROTOCOL).catch(() => {})
    this.started = false
  }

  private get timeoutMs (): number { return this.init.timeoutMs ?? TIMEOUT_MS }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const { ledger, log } = this.components
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    const signal = AbortSignal.timeout(this.timeoutMs)
    let response: InsertResponse
    try {
      const request = decodeInsertRequest((await lp.read({ signal })).subarray())
      if (request.version !== WIRE_VERSION) {
        throw new LedgerMeshError('bad_message', `insert wire version ${request.version} is not supported (this node speaks ${WIRE_VERSION})`)
      }
      const policy = parsePolicyJson(request.policy)
      const entry = await ledger.submit({ op: request.op, policy })
      response = { ok: true, seq: entry.seq, id: policyId(policy), errorCode: '', errorMessage: '' }
      log.info({ peer: connection.remotePeer.toString(), id: response.id, seq: entry.seq }, 'policy accepted')
      this.components.onServed?.()
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
      const code = err instanceof LedgerMeshError ? err.code : timedOut ? 'timeout' : 'internal'
      response = { ok: false, seq: 0, id: '', errorCode: code, errorMessage: errorMessage(err) }
      log.warn({ peer: connection.remotePeer.toString(), code, err: errorMessage(err) }, 'policy rejected')
      this.components.onServed?.(code)
    }
    try {
      await lp.write(encodeInsertResponse(response), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Sends one put or delete to the master; resolves with its seq once it is durable there. */
  async submit (target: Multiaddr | PeerId, op: LedgerOp): Promise<{ seq: number, id: string }> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    let stream: Stream
    try {
      stream = await openStream(this.components.libp2p, target, INSERT_PROTOCOL, signal)
    } catch (err) {
      throw new LedgerMeshError('master_unreachable', `cannot reach the master at ${target.toString()}: ${errorMessage(err)}`)
    }
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    let response: InsertResponse
    try {
      await lp.write(encodeInsertRequest({ version: WIRE_VERSION, op: op.op, policy: canonicalJson(op.policy) }), { signal })
      response = decodeInsertResponse((await lp.read({ signal })).subarray())
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (err instanceof LedgerMeshError) throw err
      throw new LedgerMeshError('master_unreachable', `the master at ${target.toString()} did not answer: ${errorMessage(err)}`)
    }
    if (!response.ok) {
      const code = (KNOWN_CODES.has(response.errorCode) ? response.errorCode : 'internal') as ErrorCode
      throw new LedgerMeshError(code, response.errorMessage)
    }
    return { seq: response.seq, id: response.id }
  }
}
