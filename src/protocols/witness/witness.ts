import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { LedgerMeshError } from '../../base/errors.js'
import type { WitnessReply } from '../../ledger/tlog/witness.js'
import { HandledProtocol, type ProtocolComponents, limitsOf } from '../../net/protocol.js'
import { LIMITS, WIRE_VERSION } from './constants.js'
import { WITNESS_CODEC, type AddCheckpointRequest, type AddCheckpointResponse } from './messages.js'

export type WitnessComponents = ProtocolComponents

export interface WitnessInit {
  timeoutMs?: number
}

/** The witness's side: answers one add-checkpoint body as tlog-witness does over HTTP. */
export type AddCheckpointHandler = (body: string) => Promise<WitnessReply>

/**
 * `/ledgermesh/witness/1.0.0`: one request and one answer per stream. A node with
 * WITNESS=true serves it with its Witness; the active master calls addCheckpoint() on each
 * witness the network policy names after every new checkpoint.
 */
export class WitnessProtocol extends HandledProtocol<AddCheckpointRequest, AddCheckpointResponse, AddCheckpointHandler, WitnessComponents> {
  constructor (components: WitnessComponents, init: WitnessInit = {}) {
    super(components, limitsOf(LIMITS, init), WITNESS_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/witness'

  protected async respond (request: AddCheckpointRequest, _connection: Connection): Promise<AddCheckpointResponse> {
    const reply = await this.handler!(request.body)
    return { ok: true, status: reply.status, contentType: reply.contentType, body: reply.body, errorCode: '', errorMessage: '' }
  }

  protected refusal (err: LedgerMeshError): AddCheckpointResponse {
    return { ok: false, status: 0, contentType: '', body: '', errorCode: err.code, errorMessage: err.message }
  }

  /** Sends an add-checkpoint body to the witness at `target`; resolves with its tlog-witness reply. */
  async addCheckpoint (target: Multiaddr | PeerId, body: string): Promise<WitnessReply> {
    const response = await this.request(target, { version: WIRE_VERSION, body }, ' the add-checkpoint request')
    return { status: response.status, contentType: response.contentType, body: response.body }
  }
}
