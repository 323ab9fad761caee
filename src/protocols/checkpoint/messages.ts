import protobuf from 'protobufjs'
import { MAX_NOTES, MAX_PROOF_HASHES, WIRE_VERSION } from './constants.js'
import { MAX_NOTE_BYTES } from '../../ledger/tlog/note.js'
import { HASH_SIZE } from '../../ledger/tlog/rfc6962.js'
import { decodeOutcome, decodeWire, encodeOutcome, malformed } from '../../net/wire.js'

/**
 * The checkpoint gossip's two messages (proto3, read by protobufjs reflection). Each side
 * shows the other the checkpoints it holds, as C2SP signed notes (cosignatures included); the
 * answer adds a consistency proof from the asker's tree to the answerer's when that is larger,
 * so the asker can check a newer checkpoint at once instead of waiting to reach its size.
 */
export const CHECKPOINT_PROTO = `
syntax = "proto3";
package ledgermesh.checkpoint;

message CheckpointRequest {
  uint32 version = 1;           // WIRE_VERSION
  repeated string notes = 2;    // the sender's latest checkpoint first; after a fork, the two checkpoints of its evidence
}

message CheckpointResponse {
  bool ok = 1;
  repeated string notes = 2;    // the answerer's latest checkpoint first, then any fork evidence it holds
  repeated bytes proof = 3;     // RFC 6962 consistency proof from the request's first checkpoint to the answer's, when larger
  string error_code = 4;
  string error_message = 5;
}
`

const root = protobuf.parse(CHECKPOINT_PROTO, { keepCase: true }).root
const RequestType = root.lookupType('ledgermesh.checkpoint.CheckpointRequest')
const ResponseType = root.lookupType('ledgermesh.checkpoint.CheckpointResponse')
const TO_OBJECT: protobuf.IConversionOptions = { defaults: true, arrays: true }

export interface CheckpointRequest {
  version: number
  notes: string[]
}

export interface CheckpointResponse {
  ok: boolean
  notes: string[]
  proof: Uint8Array[]
  errorCode: string
  errorMessage: string
}

function checkNotes (notes: string[], what: string): void {
  if (notes.length > MAX_NOTES) throw malformed(what, `more than ${MAX_NOTES} checkpoints`)
  if (notes.some(n => Buffer.byteLength(n) > MAX_NOTE_BYTES)) throw malformed(what, `a checkpoint longer than ${MAX_NOTE_BYTES} bytes`)
}

export function encodeCheckpointRequest (req: CheckpointRequest): Uint8Array {
  return RequestType.encode(RequestType.fromObject(req)).finish()
}

export function decodeCheckpointRequest (data: Uint8Array): CheckpointRequest {
  const o = decodeWire<CheckpointRequest>(RequestType, data, 'checkpoint request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) throw malformed('checkpoint request', `wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`)
  checkNotes(o.notes, 'checkpoint request')
  return o
}

export function encodeCheckpointResponse (res: CheckpointResponse): Uint8Array {
  return ResponseType.encode(ResponseType.fromObject({ ...encodeOutcome(res), notes: res.notes, proof: res.proof })).finish()
}

export function decodeCheckpointResponse (data: Uint8Array): CheckpointResponse {
  const o = decodeWire<{ ok: boolean, notes: string[], proof: Uint8Array[], error_code: string, error_message: string }>(ResponseType, data, 'checkpoint response', TO_OBJECT)
  checkNotes(o.notes, 'checkpoint response')
  if (o.proof.length > MAX_PROOF_HASHES || o.proof.some(h => h.byteLength !== HASH_SIZE)) throw malformed('checkpoint response', `the proof must be at most ${MAX_PROOF_HASHES} hashes of ${HASH_SIZE} bytes`)
  return { ...decodeOutcome(o, 'checkpoint response'), notes: o.notes, proof: o.proof }
}

/** The four codecs, as the protocol skeleton takes them. */
export const CHECKPOINT_CODEC = {
  encodeRequest: encodeCheckpointRequest,
  decodeRequest: decodeCheckpointRequest,
  encodeResponse: encodeCheckpointResponse,
  decodeResponse: decodeCheckpointResponse
}
