/**
 * `/ledgermesh/sync/1.0.0`: pull and watch the ledger from any node that has it.
 *
 * ```ts
 * const sync = new SyncProtocol({ libp2p, ledger, log }, { timeoutMs: 10_000 })
 * await sync.start()                       // serve (every node can relay)
 * const { applied, head } = await sync.pull(masterAddr)
 * const watch = sync.watch(masterAddr, { onApplied, onClose })
 * const { head, proof } = await sync.prove(masterAddr, { seq: 42 })   // checked against head.root
 * ```
 */
export {
  SyncProtocol,
  type SyncComponents, type SyncInit, type SyncTarget, type PullOptions, type PullResult,
  type SyncStats, type WatchHandlers, type WatchHandle
} from './sync.js'
export type { ProvedAnswer } from './prove.js'
export {
  SYNC_PROTOCOL, WIRE_VERSION, MAX_MESSAGE_BYTES, MAX_ENTRIES_PER_RESPONSE, TIMEOUT_MS, WATCH_KEEPALIVE_MS,
  MAX_INBOUND_STREAMS, MAX_OUTBOUND_STREAMS, SYNC_ERROR
} from './constants.js'
export {
  encodeRequest, decodeRequest, encodeResponse, decodeResponse, encodeEntry, encodeFrame, entryFrameSize, varintSize,
  type SyncRequest, type SyncResponse, type SyncError, type EncodedResponse, type ProofQuery, type ProofAnswer
} from './codec.js'
export { SYNC_PROTO, SyncRequestType, SyncResponseType, WireEntryType, WireHeadType } from './messages.js'
