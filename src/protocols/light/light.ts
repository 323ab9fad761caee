import type { Connection } from '@libp2p/interface'
import { LedgerMeshError } from '../../base/errors.js'
import { entryBytes } from '../../ledger/entry.js'
import type { Ledger } from '../../ledger/ledger.js'
import { lightNeeds } from '../../ledger/light.js'
import { checkpointNote } from '../../ledger/proofs.js'
import { witnessSetOf } from '../../ledger/witnessed.js'
import { publicKeyHexOf } from '../../policies/keys.js'
import { type ProtocolComponents, RequestResponseProtocol, limitsOf, type LimitOverrides } from '../../net/protocol.js'
import type { StreamTarget } from '../../net/stream.js'
import { LIMITS, MAX_ENTRIES, WIRE_VERSION } from './constants.js'
import { LIGHT_CODEC, type LightRequest, type LightResponse } from './messages.js'

export interface LightComponents extends ProtocolComponents {
  /** the ledger served from (a full node's); a light node serves nothing */
  ledger?: Ledger
  /** the latest witnessed checkpoint this node holds (a note with the witnesses' cosignatures) */
  witnessed?: () => { size: number, note: string } | undefined
  /** a relay its own source refused (revoked) serves no one either */
  servingRefused?: () => string | undefined
  /** told of every request served: undefined when answered, else the refusal's code */
  onServed?: (errorCode?: string) => void
  /**
   * Test-only (LEDGERMESH_TEST_FAULTS=1, src/node/test-faults.ts): changes an answer before it
   * is sent, as a malicious relay would. Never set otherwise.
   */
  tamper?: (request: LightRequest, response: LightResponse) => LightResponse
}

export type LightInit = LimitOverrides

/** What a light fetch asks for: policy ids, and/or everything worker `worker` needs. */
export interface LightQuery { worker?: string, ids?: string[] }

/**
 * `/ledgermesh/light/1.0.0`: one request and one answer per stream. Every full node serves it
 * (start() registers the handler when it holds a ledger with a signed checkpoint to prove
 * against); a light worker fetches with fetch() and checks the answer itself
 * (verifyLightAnswer): a server can withhold, never forge.
 */
export class LightProtocol extends RequestResponseProtocol<LightRequest, LightResponse, LightComponents> {
  constructor (components: LightComponents, init: LightInit = {}) {
    super(components, limitsOf(LIMITS, init), LIGHT_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/light'

  async start (): Promise<void> {
    this.renewShutdown()
    if (this.components.ledger === undefined) return
    await this.handle()
  }

  async stop (): Promise<void> {
    await this.stopServing(new LedgerMeshError('timeout', 'the light protocol is stopping'))
  }

  protected async respond (request: LightRequest, connection: Connection): Promise<LightResponse> {
    const response = await this.answerFor(request, connection)
    this.components.onServed?.()
    return this.components.tamper?.(request, response) ?? response
  }

  private async answerFor (request: LightRequest, connection: Connection): Promise<LightResponse> {
    const ledger = this.components.ledger!
    const refused = this.components.servingRefused?.()
    if (refused !== undefined) throw new LedgerMeshError('unauthorized', `this node serves no light requests now: ${refused}`)
    const key = publicKeyHexOf(connection.remotePeer)
    if (!ledger.admits(key)) throw new LedgerMeshError('unauthorized', `key ${key?.slice(0, 12) ?? '(not Ed25519)'}… is not admitted to this network (or was revoked)`, { reason: 'not_admitted' })
    const signed = ledger.signedHead
    if (signed === undefined) throw new LedgerMeshError('not_found', 'this node holds no signed checkpoint yet: it proves nothing')
    // the checkpoint first: every proof is made at its size, whatever the ledger appends meanwhile.
    // On a network with witnesses, the latest witnessed one (cosignatures included), which a
    // light worker requires; entries past it are missing until the witnesses cosign them.
    const witnessed = this.components.witnessed?.()
    const proveWitnessed = witnessed !== undefined && witnessed.size <= signed.seq && witnessSetOf(ledger) !== undefined
    const size = proveWitnessed ? witnessed.size : signed.seq
    const checkpoint = proveWitnessed || (witnessed !== undefined && witnessed.size === size) ? witnessed!.note : checkpointNote(ledger)
    const state = ledger.state
    const ids = [...new Set([...request.ids, ...(request.worker === '' ? [] : lightNeeds(state, request.worker))])].slice(0, MAX_ENTRIES)
    const entries: LightResponse['entries'] = []
    const missing: string[] = []
    for (const id of ids) {
      const seq = state.seqOf(id)
      if (seq === undefined || seq > size) { missing.push(id); continue }
      const [entry] = await ledger.store.range(seq, 1)
      if (entry === undefined || entry.seq !== seq) { missing.push(id); continue }
      entries.push({ entry: entryBytes(entry), proof: ledger.tree.inclusionProof(seq - 1, size) })
    }
    return { ok: true, errorCode: '', errorMessage: '', checkpoint, entries, missing }
  }

  protected refusal (err: LedgerMeshError, peer: string): LightResponse {
    this.components.onServed?.(err.code)
    this.components.log.debug({ peer, code: err.code, err: err.message }, 'light request refused')
    return { ok: false, checkpoint: '', entries: [], missing: [], errorCode: err.code, errorMessage: err.message }
  }

  /** Fetches from the node at `target`; throws `master_unreachable` when it cannot be reached in time, or its refusal. */
  async fetch (target: StreamTarget, query: LightQuery): Promise<LightResponse> {
    return await this.request(target, { version: WIRE_VERSION, worker: query.worker ?? '', ids: query.ids ?? [] }, ' the light request')
  }
}
