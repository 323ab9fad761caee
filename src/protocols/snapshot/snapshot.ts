import type { Connection } from '@libp2p/interface'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import { type SnapshotFiles, parseSnapshotPath } from '../../ledger/snapshot/files.js'
import { HandledProtocol, type LimitOverrides, type ProtocolComponents, limitsOf } from '../../net/protocol.js'
import type { StreamTarget } from '../../net/stream.js'
import { LIMITS, WIRE_VERSION } from './constants.js'
import { SNAPSHOT_CODEC, type SnapshotRequest, type SnapshotResponse } from './messages.js'

export type SnapshotComponents = ProtocolComponents

export type SnapshotInit = LimitOverrides

/** what an answer's frame holds besides the file: the protobuf fields and their lengths */
const FRAME_OVERHEAD = 64

/**
 * `/ledgermesh/snapshot/1.0.0`: one file of the snapshot layout per stream. Every node serves
 * its own snapshots (`serve(new SnapshotFiles(home))`); a node bootstrapping from a snapshot
 * fetch()es the files from a master, its slave or a worker. Nothing is checked here: the
 * fetching side checks the manifest against a checkpoint and each chunk against the manifest.
 */
export class SnapshotProtocol extends HandledProtocol<SnapshotRequest, SnapshotResponse, SnapshotFiles, SnapshotComponents> {
  constructor (components: SnapshotComponents, init: SnapshotInit = {}) {
    super(components, limitsOf(LIMITS, init), SNAPSHOT_CODEC)
  }

  readonly [Symbol.toStringTag] = '@ledgermesh/snapshot'

  protected async respond (request: SnapshotRequest, _connection: Connection): Promise<SnapshotResponse> {
    return { ok: true, data: await this.readFile(this.handler!, request.path), errorCode: '', errorMessage: '' }
  }

  protected refusal (err: LedgerMeshError): SnapshotResponse {
    return { ok: false, data: Buffer.alloc(0), errorCode: err.code, errorMessage: err.message }
  }

  /**
   * The bytes of the file at `path` (`snapshot/latest`, `snapshot/<size>/manifest.json`,
   * `snapshot/<size>/chunk/<index>`) on the node at `target`. Throws its refusal (`not_found`
   * when it has no such file, `bad_message` for a path that is not one), `timeout` when it does
   * not answer within the protocol's timeout, `unreachable` when it cannot be dialed.
   */
  async fetch (target: StreamTarget, path: string): Promise<Buffer> {
    // a node holding several roles asks itself, which libp2p cannot dial
    if (this.handler !== undefined && this.isSelf(target)) return await this.readFile(this.handler, path)
    const response = await this.request(target, { version: WIRE_VERSION, path }, ` the snapshot request for ${path}`)
    return response.data
  }

  private async readFile (files: SnapshotFiles, path: string): Promise<Buffer> {
    const parsed = parseSnapshotPath(path)
    if (parsed === undefined) throw new LedgerMeshError('bad_message', `snapshot request: ${JSON.stringify(path.slice(0, 80))} is not a snapshot path (snapshot/latest, snapshot/<size>/manifest.json or snapshot/<size>/chunk/<index>)`)
    const data = await files.read(path)
    if (data === undefined) {
      throw new LedgerMeshError('not_found', parsed.kind === 'latest'
        ? 'this node has no snapshot yet'
        : parsed.kind === 'manifest'
          ? `this node has no snapshot at size ${parsed.size}`
          : `this node has no chunk ${parsed.index} of a snapshot at size ${parsed.size}`, { path })
    }
    if (data.length > this.maxMessageBytes - FRAME_OVERHEAD) throw new LedgerMeshError('not_supported', `${path} has ${data.length} bytes, more than the snapshot protocol carries (${this.maxMessageBytes - FRAME_OVERHEAD})`)
    return data
  }

  /** A peer that cannot be dialed, or no free outbound stream in time. */
  protected override unreachable (target: StreamTarget): { busy: () => Error, unreachable: (err: unknown) => Error } {
    return {
      busy: () => new LedgerMeshError('timeout', `no free ${this.name} stream within ${this.timeoutMs} ms`),
      unreachable: err => new LedgerMeshError('unreachable', `cannot reach the peer at ${target.toString()} for its snapshot: ${errorMessage(err)}`)
    }
  }

  /** A stream that failed before its answer: `timeout` when the deadline passed. */
  protected override noAnswer (target: StreamTarget, what: string, signal: AbortSignal, err: unknown): LedgerMeshError {
    if (signal.aborted) return new LedgerMeshError('timeout', `the peer at ${target.toString()} did not answer${what} within ${this.timeoutMs} ms`)
    return new LedgerMeshError('unreachable', `the peer at ${target.toString()} did not answer${what}: ${errorMessage(err)}`)
  }
}
