/**
 * `/ledgermesh/witness/1.0.0`: c2sp.org/tlog-witness's add-checkpoint over libp2p, from the
 * active master to the witnesses its network policy names.
 *
 * ```ts
 * const protocol = new WitnessProtocol({ libp2p, log })
 * await protocol.serve(async body => await witness.addCheckpoint(body))   // WITNESS=true
 * const reply = await protocol.addCheckpoint(witnessAddr, `old 0\n\n${note}`)
 * ```
 */
export { WitnessProtocol, type WitnessComponents, type WitnessInit, type AddCheckpointHandler } from './witness.js'
export { WITNESS_PROTOCOL, TIMEOUT_MS } from './constants.js'
export { WITNESS_PROTO, encodeAddCheckpointRequest, decodeAddCheckpointRequest, encodeAddCheckpointResponse, decodeAddCheckpointResponse, type AddCheckpointRequest, type AddCheckpointResponse } from './messages.js'
