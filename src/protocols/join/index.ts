/**
 * `/ledgermesh/join/1.0.0`: a node presents a join token to the master and is admitted.
 *
 * ```ts
 * const join = new JoinProtocol({ libp2p, log })
 * await join.serve(gatekeeper.redeem)                              // on the master
 * await join.join(masterAddr, process.env.JOIN_TOKEN, 'w1')        // on a joining node
 * ```
 */
export { JoinProtocol, type JoinComponents, type JoinInit, type JoinGrantor } from './join.js'
export { JOIN_PROTOCOL, WIRE_VERSION, TIMEOUT_MS } from './constants.js'
export { JOIN_PROTO, encodeJoinRequest, decodeJoinRequest, encodeJoinResponse, decodeJoinResponse, type JoinRequest, type JoinResponse } from './messages.js'
