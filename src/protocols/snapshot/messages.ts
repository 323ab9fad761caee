import protobuf from 'protobufjs'
import { MAX_PATH_CHARS, WIRE_VERSION } from './constants.js'
import { decodeOutcome, decodeWire, encodeOutcome, malformed } from '../../net/wire.js'

/**
 * The snapshot protocol's two messages (proto3, read by protobufjs reflection): the request
 * names one file of the snapshot layout (src/ledger/snapshot/files.ts), the answer carries its
 * bytes as they are on the server's disk, so a peer and a static mirror serve the same files.
 */
export const SNAPSHOT_PROTO = `
syntax = "proto3";
package ledgermesh.snapshot;

message SnapshotRequest {
  uint32 version = 1;           // WIRE_VERSION
  string path = 2;              // snapshot/latest, snapshot/<size>/manifest.json or snapshot/<size>/chunk/<index>
}

message SnapshotResponse {
  bool ok = 1;
  bytes data = 2;               // the file's bytes
  string error_code = 3;        // not_found: this node has no such file
  string error_message = 4;
}
`

const root = protobuf.parse(SNAPSHOT_PROTO, { keepCase: true }).root
const RequestType = root.lookupType('ledgermesh.snapshot.SnapshotRequest')
const ResponseType = root.lookupType('ledgermesh.snapshot.SnapshotResponse')
const TO_OBJECT: protobuf.IConversionOptions = { defaults: true }

export interface SnapshotRequest {
  version: number
  path: string
}

export interface SnapshotResponse {
  ok: boolean
  data: Buffer
  errorCode: string
  errorMessage: string
}

export function encodeSnapshotRequest (req: SnapshotRequest): Uint8Array {
  return RequestType.encode(RequestType.fromObject(req)).finish()
}

export function decodeSnapshotRequest (data: Uint8Array): SnapshotRequest {
  const o = decodeWire<SnapshotRequest>(RequestType, data, 'snapshot request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) throw malformed('snapshot request', `wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`)
  if (o.path.length > MAX_PATH_CHARS) throw malformed('snapshot request', `a path longer than ${MAX_PATH_CHARS} characters`)
  return o
}

export function encodeSnapshotResponse (res: SnapshotResponse): Uint8Array {
  return ResponseType.encode(ResponseType.fromObject({ ...encodeOutcome(res), data: res.data })).finish()
}

export function decodeSnapshotResponse (data: Uint8Array): SnapshotResponse {
  const o = decodeWire<{ ok: boolean, data: Uint8Array, error_code: string, error_message: string }>(ResponseType, data, 'snapshot response', TO_OBJECT)
  return { ...decodeOutcome(o, 'snapshot response'), data: Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength) }
}

/** The four codecs, as the protocol skeleton takes them. */
export const SNAPSHOT_CODEC = {
  encodeRequest: encodeSnapshotRequest,
  decodeRequest: decodeSnapshotRequest,
  encodeResponse: encodeSnapshotResponse,
  decodeResponse: decodeSnapshotResponse
}
