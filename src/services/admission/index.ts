/**
 * Admission: who may take part in a network that requires it.
 *
 * ```ts
 * const gatekeeper = new Gatekeeper({ ledger, signer, log })      // on the master
 * const { text } = await gatekeeper.createToken({ ttlMs, uses })   // `create join token`
 * await join.serve(gatekeeper.redeem)                              // `/ledgermesh/join/1.0.0`
 * await join.join(masterAddr, process.env.JOIN_TOKEN, 'w1')        // on a joining node
 * ```
 */
export { Gatekeeper, type GatekeeperOptions } from './gatekeeper.js'
export {
  JoinProtocol, JOIN_PROTOCOL, WIRE_VERSION, JOIN_PROTO, encodeJoinRequest, decodeJoinRequest, encodeJoinResponse, decodeJoinResponse,
  type JoinComponents, type JoinInit, type JoinGrantor, type JoinRequest, type JoinResponse
} from '../../protocols/join/index.js'
export { DEFAULT_TOKEN_TTL_MS, DEFAULT_TOKEN_USES, MAX_TOKEN_TTL_MS } from './constants.js'
export { TOKEN_FORM, TOKEN_PATTERN, newJoinToken, parseJoinToken, pinAdmits } from './tokens.js'
