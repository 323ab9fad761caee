import protobuf from 'protobufjs'
import { LedgerMeshError } from '../../errors.js'

/** The insert protocol's two messages: one request, one answer. */
export const INSERT_PROTO = `
syntax = "proto3";
package ledgermesh.insert;

message InsertRequest {
  enum Op { PUT = 0; DELETE = 1; }
  uint32 version = 1;
  Op op = 2;
  bytes policy = 3;        // the signed policy (or tombstone), canonical JSON
}

message InsertResponse {
  bool ok = 1;
  uint64 seq = 2;          // its place in the ledger, once durable
  string id = 3;
  string error_code = 4;   // ledgermesh's error codes: bad_policy, duplicate_id, unauthorized, ...
  string error_message = 5;
}
`

const root = protobuf.parse(INSERT_PROTO, { keepCase: true }).root
const RequestType = root.lookupType('ledgermesh.insert.InsertRequest')
const ResponseType = root.lookupType('ledgermesh.insert.InsertResponse')
const TO_OBJECT = { longs: Number, enums: String, defaults: true } as const

export interface InsertRequest { version: number, op: 'put' | 'delete', policy: string }
export interface InsertResponse { ok: boolean, seq: number, id: string, errorCode: string, errorMessage: string }

function decode (type: protobuf.Type, data: Uint8Array, what: string): Record<string, any> {
  try {
    return type.toObject(type.decode(data), TO_OBJECT)
  } catch (err) {
    throw new LedgerMeshError('bad_message', `malformed ${what}: ${(err as Error).message}`)
  }
}

export function encodeInsertRequest (req: InsertRequest): Uint8Array {
  return RequestType.encode(RequestType.fromObject({ version: req.version, op: req.op === 'put' ? 'PUT' : 'DELETE', policy: Buffer.from(req.policy) })).finish()
}

export function decodeInsertRequest (data: Uint8Array): InsertRequest {
  const o = decode(RequestType, data, 'insert request')
  return { version: o.version, op: o.op === 'DELETE' ? 'delete' : 'put', policy: Buffer.from(o.policy).toString('utf8') }
}

export function encodeInsertResponse (res: InsertResponse): Uint8Array {
  return ResponseType.encode(ResponseType.fromObject({ ok: res.ok, seq: res.seq, id: res.id, error_code: res.errorCode, error_message: res.errorMessage })).finish()
}

export function decodeInsertResponse (data: Uint8Array): InsertResponse {
  const o = decode(ResponseType, data, 'insert response')
  return { ok: o.ok, seq: o.seq, id: o.id, errorCode: o.error_code, errorMessage: o.error_message }
}
