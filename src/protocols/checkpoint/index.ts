/**
 * `/ledgermesh/checkpoint/1.0.0`: nodes gossip the checkpoints they hold, so a master showing
 * two histories (a split view) is caught by any two nodes that talk.
 *
 * ```ts
 * const protocol = new CheckpointProtocol({ libp2p, log })
 * await protocol.serve(async (notes, peer) => ({ notes: [mine], proof: [] }))
 * const theirs = await protocol.exchange(peerId, [mine])
 * ```
 */
export { CheckpointProtocol, type CheckpointComponents, type CheckpointInit, type CheckpointExchange, type CheckpointHandler } from './checkpoint.js'
export { CHECKPOINT_PROTOCOL, GOSSIP_DEBOUNCE_MS, GOSSIP_FANOUT, GOSSIP_INTERVAL_MS } from './constants.js'
export { CHECKPOINT_PROTO, encodeCheckpointRequest, decodeCheckpointRequest, encodeCheckpointResponse, decodeCheckpointResponse, type CheckpointRequest, type CheckpointResponse } from './messages.js'
