import protobuf from 'protobufjs'
import { LedgerMeshError } from '../../base/errors.js'
import type { EntryOp } from '../../ledger/entry.js'
import { WIRE_VERSION } from './constants.js'
import { decodeWire, encodeOutcome, malformed } from '../../net/wire.js'

/**
 * The insert protocol's two messages (proto3, read by protobufjs reflection): one request,
 * one answer, on one stream. The policy travels as its canonical JSON; the master parses,
 * validates, authorizes and orders it, and answers once the commit holding it is durable.
 */
export const INSERT_PROTO = `
syntax = "proto3";
package ledgermesh.insert;

message InsertRequest {
  enum Op {
    PUT = 0;
    DELETE = 1;
  }
  uint32 version = 1;      // WIRE_VERSION; the master refuses others (unsupported_version)
  Op op = 2;
  bytes policy = 3;        // the signed policy, or for DELETE its signed tombstone: canonical JSON, UTF-8
}

message InsertResponse {
  bool ok = 1;
  uint64 seq = 2;          // its place in the ledger, once durable
  string id = 3;           // the policy id
  string error_code = 4;   // when not ok: bad_policy, bad_signature, duplicate_id, unauthorized, timeout, ...
  string error_message = 5;
}
`

const root = protobuf.parse(INSERT_PROTO, { keepCase: true }).root
export const InsertRequestType = root.lookupType('ledgermesh.insert.InsertRequest')
export const InsertResponseType = root.lookupType('ledgermesh.insert.InsertResponse')
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true }

const MAX_ID_CHARS = 128
const MAX_ERROR_CODE_CHARS = 64
const MAX_ERROR_MESSAGE_CHARS = 4096

/** The wire shapes `toObject` returns. */
interface WireInsertRequest { version: number, op: string | number, policy: Uint8Array }
interface WireInsertResponse { ok: boolean, seq: number, id: string, error_code: string, error_message: string }

export interface InsertRequest {
  version: number
  op: EntryOp
  /** canonical JSON of the policy (the master parses it: bad JSON is `bad_policy`) */
  policy: string
}

export interface InsertResponse {
  ok: boolean
  seq: number
  id: string
  /** '' when ok */
  errorCode: string
  errorMessage: string
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function boundedString (value: unknown, max: number, what: string): string {
  if (typeof value !== 'string' || value.length > max) throw malformed(what, `a string of at most ${max} characters is expected`)
  return value
}

export function encodeInsertRequest (req: InsertRequest): Uint8Array {
  return InsertRequestType.encode(InsertRequestType.fromObject({
    version: req.version,
    op: req.op === 'put' ? 'PUT' : 'DELETE',
    policy: Buffer.from(req.policy, 'utf8')
  })).finish()
}

/**
 * Any bytes give a request or LedgerMeshError('bad_message'). Another wire version throws
 * with `details.insertError` = `unsupported_version`, before the other fields are read.
 */
export function decodeInsertRequest (data: Uint8Array): InsertRequest {
  const o = decodeWire<WireInsertRequest>(InsertRequestType, data, 'insert request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) {
    throw new LedgerMeshError('bad_message', `insert wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`,
      { insertError: 'unsupported_version', version: o.version })
  }
  if (o.op !== 'PUT' && o.op !== 'DELETE') throw malformed('insert request', `unknown op ${String(o.op)}`)
  let policy: string
  try {
    policy = utf8.decode(o.policy)
  } catch {
    throw malformed('insert request', 'policy is not UTF-8')
  }
  return { version: o.version, op: o.op === 'PUT' ? 'put' : 'delete', policy }
}

export function encodeInsertResponse (res: InsertResponse): Uint8Array {
  return InsertResponseType.encode(InsertResponseType.fromObject({
    ...encodeOutcome(res),
    seq: res.seq,
    id: res.id
  })).finish()
}

export function decodeInsertResponse (data: Uint8Array): InsertResponse {
  const o = decodeWire<WireInsertResponse>(InsertResponseType, data, 'insert response', TO_OBJECT)
  if (!Number.isSafeInteger(o.seq) || o.seq < 0) throw malformed('insert response', `seq ${String(o.seq)} is not a safe non-negative integer`)
  const response = {
    ok: o.ok,
    seq: o.seq,
    id: boundedString(o.id, MAX_ID_CHARS, 'insert response id'),
    errorCode: boundedString(o.error_code, MAX_ERROR_CODE_CHARS, 'insert response error_code'),
    errorMessage: boundedString(o.error_message, MAX_ERROR_MESSAGE_CHARS, 'insert response error_message')
  }
  if (response.ok ? response.seq === 0 : response.errorCode === '') {
    throw malformed('insert response', response.ok ? 'accepted without a seq' : 'refused without an error code')
  }
  return response
}

/** The four codecs, as the protocol skeleton takes them. */
export const INSERT_CODEC = {
  encodeRequest: encodeInsertRequest,
  decodeRequest: decodeInsertRequest,
  encodeResponse: encodeInsertResponse,
  decodeResponse: decodeInsertResponse
}
