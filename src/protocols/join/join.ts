import type { Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError } from '../../base/errors.js'
import { HandledProtocol, type ProtocolComponents, limitsOf } from '../../net/protocol.js'
import { publicKeyHexOf } from '../../policies/keys.js'
import { LIMITS, WIRE_VERSION } from './constants.js'
import { JOIN_CODEC, type JoinRequest, type JoinResponse } from './messages.js'

export type JoinComponents = ProtocolComponents

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
export class JoinProtocol extends HandledProtocol<JoinRequest, JoinResponse, JoinGrantor, JoinComponents> {
  constructor (components: JoinComponents, init: JoinInit = {}) {
    super(components, limitsOf(LIMITS, init), JOIN_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/join'

  protected async respond (request: JoinRequest, connection: Connection): Promise<JoinResponse> {
    const peer = connection.remotePeer.toString()
    const key = publicKeyHexOf(connection.remotePeer)
    if (key === undefined) throw new LedgerMeshError('unauthorized', `peer ${peer} has no Ed25519 identity key to admit`)
    const { seq } = await this.handler!({ token: request.token, name: request.name, key, peer })
    return { ok: true, seq, errorCode: '', errorMessage: '' }
  }

  protected refusal (err: LedgerMeshError): JoinResponse {
    return { ok: false, seq: 0, errorCode: err.code, errorMessage: err.message }
  }

  /**
   * Presents `token` to the master at `target`. Resolves with the admission's seq; throws
   * `master_unreachable` when the master cannot be reached in time, or the master's refusal.
   */
  async join (target: Multiaddr, token: string, name: string): Promise<{ seq: number }> {
    const response = await this.request(target, { version: WIRE_VERSION, token, name }, ' the join')
    return { seq: response.seq }
  }
}
