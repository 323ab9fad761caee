/**
 * `/ledgermesh/insert/1.0.0`: submit a signed policy to the master.
 *
 * ```ts
 * const insert = new InsertProtocol({ libp2p, ledger, log })
 * await insert.start()                     // serves only when ledger.isMaster
 * const { seq, id } = await insert.submit(masterAddr, { op: 'put', policy })
 * ```
 */
export { InsertProtocol, type InsertComponents, type InsertInit, type InsertTarget, type Submitted } from './insert.js'
export { INSERT_PROTOCOL, WIRE_VERSION, MAX_MESSAGE_BYTES, TIMEOUT_MS, MAX_INBOUND_STREAMS, MAX_OUTBOUND_STREAMS } from './constants.js'
export {
  encodeInsertRequest, decodeInsertRequest, encodeInsertResponse, decodeInsertResponse, INSERT_PROTO,
  InsertRequestType, InsertResponseType, type InsertRequest, type InsertResponse
} from './messages.js'
