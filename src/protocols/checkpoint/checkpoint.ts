import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { LedgerMeshError } from '../../base/errors.js'
import { HandledProtocol, type ProtocolComponents, limitsOf } from '../../net/protocol.js'
import { LIMITS, WIRE_VERSION } from './constants.js'
import { CHECKPOINT_CODEC, type CheckpointRequest, type CheckpointResponse } from './messages.js'

export type CheckpointComponents = ProtocolComponents

export interface CheckpointInit {
  timeoutMs?: number
}

/** What a node shows in an exchange: its checkpoints, and a proof toward its own from the asker's. */
export interface CheckpointExchange {
  notes: string[]
  proof: Uint8Array[]
}

/** The answering side: checks what `peer` showed and answers with this node's checkpoints. */
export type CheckpointHandler = (notes: string[], peer: string) => Promise<CheckpointExchange>

/**
 * `/ledgermesh/checkpoint/1.0.0`: one request and one answer per stream. Every node with a
 * ledger serves it (serve() with its gossip's handler) and calls exchange() on a few peers
 * after each new head: both sides check what the other holds against their own tree.
 */
export class CheckpointProtocol extends HandledProtocol<CheckpointRequest, CheckpointResponse, CheckpointHandler, CheckpointComponents> {
  constructor (components: CheckpointComponents, init: CheckpointInit = {}) {
    super(components, limitsOf(LIMITS, init), CHECKPOINT_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/checkpoint'

  protected async respond (request: CheckpointRequest, connection: Connection): Promise<CheckpointResponse> {
    const answer = await this.handler!(request.notes, connection.remotePeer.toString())
    return { ok: true, ...answer, errorCode: '', errorMessage: '' }
  }

  protected refusal (err: LedgerMeshError): CheckpointResponse {
    return { ok: false, notes: [], proof: [], errorCode: err.code, errorMessage: err.message }
  }

  /** Shows `notes` to the peer at `target` and resolves with what it holds. */
  async exchange (target: Multiaddr | PeerId, notes: string[]): Promise<CheckpointExchange> {
    const response = await this.request(target, { version: WIRE_VERSION, notes }, ' the checkpoint exchange')
    return { notes: response.notes, proof: response.proof }
  }
}
