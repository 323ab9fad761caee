import protobuf from 'protobufjs'
import { MAX_MESSAGE_BYTES, WIRE_VERSION } from './constants.js'
import { decodeOutcome, decodeWire, encodeOutcome, malformed } from '../../net/wire.js'

/**
 * The witness protocol's two messages (proto3, read by protobufjs reflection): the request
 * is c2sp.org/tlog-witness's add-checkpoint body, the answer its HTTP status, content type
 * and body (the cosignature line on 200, the witness's size on 409), so one Witness serves
 * both this protocol and `POST /add-checkpoint`.
 */
export const WITNESS_PROTO = `
syntax = "proto3";
package ledgermesh.witness;

message AddCheckpointRequest {
  uint32 version = 1;           // WIRE_VERSION
  string body = 2;              // old <size>, consistency proof lines, an empty line, the checkpoint note
}

message AddCheckpointResponse {
  bool ok = 1;                  // the witness answered (whatever its status)
  uint32 status = 2;            // tlog-witness's HTTP status: 200 cosigned, 409 size mismatch, 422 inconsistent, ...
  string content_type = 3;
  string body = 4;
  string error_code = 5;
  string error_message = 6;
}
`

const root = protobuf.parse(WITNESS_PROTO, { keepCase: true }).root
const RequestType = root.lookupType('ledgermesh.witness.AddCheckpointRequest')
const ResponseType = root.lookupType('ledgermesh.witness.AddCheckpointResponse')
const TO_OBJECT: protobuf.IConversionOptions = { defaults: true }

export interface AddCheckpointRequest {
  version: number
  body: string
}

export interface AddCheckpointResponse {
  ok: boolean
  status: number
  contentType: string
  body: string
  errorCode: string
  errorMessage: string
}

export function encodeAddCheckpointRequest (req: AddCheckpointRequest): Uint8Array {
  return RequestType.encode(RequestType.fromObject(req)).finish()
}

export function decodeAddCheckpointRequest (data: Uint8Array): AddCheckpointRequest {
  const o = decodeWire<AddCheckpointRequest>(RequestType, data, 'add-checkpoint request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) throw malformed('add-checkpoint request', `wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`)
  if (o.body.length > MAX_MESSAGE_BYTES) throw malformed('add-checkpoint request', `a body longer than ${MAX_MESSAGE_BYTES} characters`)
  return o
}

export function encodeAddCheckpointResponse (res: AddCheckpointResponse): Uint8Array {
  return ResponseType.encode(ResponseType.fromObject({ ...encodeOutcome(res), status: res.status, content_type: res.contentType, body: res.body })).finish()
}

export function decodeAddCheckpointResponse (data: Uint8Array): AddCheckpointResponse {
  const o = decodeWire<{ ok: boolean, status: number, content_type: string, body: string, error_code: string, error_message: string }>(ResponseType, data, 'add-checkpoint response', TO_OBJECT)
  if (o.ok && (o.status < 100 || o.status > 599)) throw malformed('add-checkpoint response', `status ${o.status} is not an HTTP status`)
  return { ...decodeOutcome(o, 'add-checkpoint response'), status: o.status, contentType: o.content_type.slice(0, 128), body: o.body.slice(0, 4096) }
}

/** The four codecs, as the protocol skeleton takes them. */
export const WITNESS_CODEC = {
  encodeRequest: encodeAddCheckpointRequest,
  decodeRequest: decodeAddCheckpointRequest,
  encodeResponse: encodeAddCheckpointResponse,
  decodeResponse: decodeAddCheckpointResponse
}
