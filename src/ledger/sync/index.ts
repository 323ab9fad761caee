export { SyncProtocol, type SyncComponents, type SyncInit, type PullResult, type SyncStats, type WatchHandlers } from './sync.js'
export { SYNC_PROTOCOL, WIRE_VERSION, MAX_MESSAGE_BYTES } from './constants.js'
export { encodeRequest, decodeRequest, encodeResponse, decodeResponse, SYNC_PROTO } from './messages.js'
