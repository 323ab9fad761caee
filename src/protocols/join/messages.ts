import protobuf from 'protobufjs'
import { decodeOutcome, decodeWire, encodeOutcome, malformed } from '../../net/wire.js'
import { WIRE_VERSION } from './constants.js'

/**
 * The join protocol's two messages (proto3, read by protobufjs reflection). The node presents
 * its token; the connection itself says which key joins (the peer id is the node's key).
 */
export const JOIN_PROTO = `
syntax = "proto3";
package ledgermesh.join;

message JoinRequest {
  uint32 version = 1;        // WIRE_VERSION
  string token = 2;          // lmjt.<id>.<secret>, from 'create join token' on the master
  string name = 3;           // the node's NODE_NAME, recorded in its admission
}

message JoinResponse {
  bool ok = 1;
  uint64 seq = 2;            // the admission's entry: sync to it before writing
  string error_code = 3;
  string error_message = 4;
}
`

const root = protobuf.parse(JOIN_PROTO, { keepCase: true }).root
export const JoinRequestType = root.lookupType('ledgermesh.join.JoinRequest')
export const JoinResponseType = root.lookupType('ledgermesh.join.JoinResponse')
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true }

export interface JoinRequest { version: number, token: string, name: string }
export interface JoinResponse { ok: boolean, seq: number, errorCode: string, errorMessage: string }

export function encodeJoinRequest (req: JoinRequest): Uint8Array {
  return JoinRequestType.encode(JoinRequestType.fromObject(req)).finish()
}

export function decodeJoinRequest (data: Uint8Array): JoinRequest {
  const o = decodeWire<JoinRequest>(JoinRequestType, data, 'join request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) throw malformed('join request', `wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`)
  if (o.token.length > 256) throw malformed('join request', 'the token is longer than 256 characters')
  if (o.name.length > 128) throw malformed('join request', 'the name is longer than 128 characters')
  return o
}

export function encodeJoinResponse (res: JoinResponse): Uint8Array {
  return JoinResponseType.encode(JoinResponseType.fromObject({
    ...encodeOutcome(res),
    seq: res.seq
  })).finish()
}

export function decodeJoinResponse (data: Uint8Array): JoinResponse {
  const o = decodeWire<{ ok: boolean, seq: number, error_code: string, error_message: string }>(JoinResponseType, data, 'join response', TO_OBJECT)
  if (!Number.isSafeInteger(o.seq) || o.seq < 0) throw malformed('join response', `seq ${String(o.seq)} is not a safe integer`)
  return { ...decodeOutcome(o, 'join response'), seq: o.seq }
}

/** The four codecs, as the protocol skeleton takes them. */
export const JOIN_CODEC = {
  encodeRequest: encodeJoinRequest,
  decodeRequest: decodeJoinRequest,
  encodeResponse: encodeJoinResponse,
  decodeResponse: decodeJoinResponse
}
