import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError } from '../../base/errors.js'
import { publicKeyHexOf } from '../../policies/keys.js'
import { HandledProtocol, type ProtocolComponents, limitsOf } from '../../net/protocol.js'
import { LIMITS, WIRE_VERSION } from './constants.js'
import { LEASE_CODEC, type LeaseRequest, type LeaseResponse } from './messages.js'
import type { SignedLeaseAnswer } from './signed-answer.js'

export type LeaseComponents = ProtocolComponents

export interface LeaseInit {
  timeoutMs?: number
}

/** The lease's terms, as the master grants them. */
export interface LeaseGrant {
  ttlMs: number
  graceMs: number
  minSeq: number
  /** to a light worker: the answer signed by the master (see signed-answer.ts) */
  signed?: SignedLeaseAnswer
}

/** The master's side: decides a renewal (throws LedgerMeshError to refuse it). */
/** `remoteKey`: the requesting connection's noise-authenticated Ed25519 key (hex), when it has one */
export type LeaseGrantor = (request: LeaseRequest, remotePeer: string, remoteKey?: string) => Promise<LeaseGrant>

/**
 * `/ledgermesh/lease/1.0.0`: one request and one answer per stream. The master serves it
 * (serve() with the allocator's grantor); a worker calls renew() every few seconds. Leases
 * live outside the ledger, like Kubernetes Lease objects: they change too often to order.
 */
export class LeaseProtocol extends HandledProtocol<LeaseRequest, LeaseResponse, LeaseGrantor, LeaseComponents> {
  constructor (components: LeaseComponents, init: LeaseInit = {}) {
    super(components, limitsOf(LIMITS, init), LEASE_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/lease'

  protected async respond (request: LeaseRequest, connection: Connection): Promise<LeaseResponse> {
    const grant = await this.handler!(request, connection.remotePeer.toString(), publicKeyHexOf(connection.remotePeer))
    return { ok: true, ...grant, errorCode: '', errorMessage: '' }
  }

  protected refusal (err: LedgerMeshError, peer: string): LeaseResponse {
    this.components.log.warn({ peer, code: err.code, err: err.message }, 'lease renewal refused')
    return { ok: false, ttlMs: 0, graceMs: 0, minSeq: 0, errorCode: err.code, errorMessage: err.message }
  }

  /**
   * Renews this worker's lease at the master. Resolves with the grant; throws
   * `master_unreachable` when the master cannot be reached in time, or the master's refusal.
   */
  async renew (target: Multiaddr, request: Omit<LeaseRequest, 'version'>): Promise<LeaseGrant> {
    // a stand-alone node's worker renews with its own allocator, in process
    if (this.isSelf(target)) {
      if (this.handler === undefined) throw new LedgerMeshError('master_unreachable', 'this node is the master it renews with, but its allocator does not serve leases (yet)')
      return await this.handler({ version: WIRE_VERSION, ...request }, this.components.libp2p.peerId.toString())
    }
    const response = await this.request(target, { version: WIRE_VERSION, ...request }, ' the lease renewal')
    return { ttlMs: response.ttlMs, graceMs: response.graceMs, minSeq: response.minSeq, ...(response.signed === undefined ? {} : { signed: response.signed }) }
  }
}
