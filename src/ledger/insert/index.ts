export { InsertProtocol, type InsertComponents } from './insert.js'
export { INSERT_PROTOCOL } from './constants.js'
export { encodeInsertRequest, decodeInsertRequest, encodeInsertResponse, decodeInsertResponse, INSERT_PROTO } from './messages.js'
