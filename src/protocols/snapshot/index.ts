/**
 * `/ledgermesh/snapshot/1.0.0`: a node's snapshot files (src/ledger/snapshot/files.ts) over
 * libp2p, for a node bootstrapping from a peer's snapshot rather than the log from entry 0.
 *
 * ```ts
 * const protocol = new SnapshotProtocol({ libp2p, log })
 * await protocol.serve(new SnapshotFiles(home))                 // every node
 * const size = parseLatest((await protocol.fetch(peer, latestPath())).toString('utf8'))
 * const manifest = await protocol.fetch(peer, manifestPath(size))
 * ```
 */
export { SnapshotProtocol, type SnapshotComponents, type SnapshotInit } from './snapshot.js'
export { SNAPSHOT_PROTOCOL, TIMEOUT_MS, MAX_MESSAGE_BYTES } from './constants.js'
export { SNAPSHOT_PROTO, encodeSnapshotRequest, decodeSnapshotRequest, encodeSnapshotResponse, decodeSnapshotResponse, type SnapshotRequest, type SnapshotResponse } from './messages.js'
