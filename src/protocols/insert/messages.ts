import protobuf from 'protobufjs'
import { LedgerMeshError } from '../../base/errors.js'
import type { EntryOp } from '../../ledger/entry.js'
import type { SignedHead } from '../../ledger/head.js'
import { WIRE_VERSION } from './constants.js'
import { boundedString, decodeWire, encodeOutcome, fixedHex, hexBytes, malformed } from '../../net/wire.js'
import { type WireSignedHead, signedHeadFromWire, signedHeadToWire } from '../signed-head.js'

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
  // When ok, the entry's chain link and, when the entry ended its commit, the master's signed
  // head over it: a replica holding the entry before it applies the entry at once
  // (read-your-writes without waiting for sync to bring it). Absent from older masters.
  bytes prev_hash = 6;
  bytes hash = 7;
  Head head = 8;
  // When refused not_active (a standby master): the active master's p2p address, ip:port,
  // when the standby knows it, so the client goes there next.
  string active = 9;
  // When refused: why, in a word, when the master has one (not_admitted, revoked), so the
  // client can tell a key not admitted yet from the policy itself being refused.
  string reason = 10;
}
message Head {
  uint64 seq = 1;
  bytes hash = 2;          // 32 bytes
  string time = 3;         // when the master signed it, UTC ISO-8601
  bytes public_key = 4;    // 32 bytes
  bytes signature = 5;     // 64 bytes: the master's signature of the checkpoint (cosignature/v1 at time)
  bytes root = 6;          // the RFC 6962 Merkle root of the first seq entries, 32 bytes
  string origin = 7;       // the checkpoint's origin line
  bytes state_root = 8;    // the live state's sparse Merkle root, 32 bytes (empty: a head signed without one)
  uint64 state_size = 9;   // how many policies are live at seq
}
`

const root = protobuf.parse(INSERT_PROTO, { keepCase: true }).root
export const InsertRequestType = root.lookupType('ledgermesh.insert.InsertRequest')
export const InsertResponseType = root.lookupType('ledgermesh.insert.InsertResponse')
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true }

const MAX_ID_CHARS = 128
const MAX_ERROR_CODE_CHARS = 64
const MAX_ERROR_MESSAGE_CHARS = 4096
/** `ip:port` and then some */
const MAX_ADDRESS_CHARS = 64

/** The wire shapes `toObject` returns. */
interface WireInsertRequest { version: number, op: string | number, policy: Uint8Array }
interface WireInsertResponse { ok: boolean, seq: number, id: string, error_code: string, error_message: string, prev_hash: Uint8Array, hash: Uint8Array, head?: WireSignedHead | null, active: string, reason: string }

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
  /** when ok (from masters that send it): the entry's place in the chain */
  link?: { prevHash: string, hash: string }
  /** when ok and the entry ended its commit: the master's signed head at the entry */
  head?: SignedHead
  /** when refused not_active: the active master's p2p address (ip:port), if the standby knows it */
  active?: string
  /** when refused: the refusal's reason, if the master gives one (`not_admitted`, `revoked`) */
  reason?: string
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

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
    id: res.id,
    ...(res.link === undefined ? {} : { prev_hash: hexBytes(res.link.prevHash), hash: hexBytes(res.link.hash) }),
    ...(res.head === undefined
      ? {}
      : { head: signedHeadToWire(res.head) }),
    ...(res.active === undefined ? {} : { active: res.active }),
    ...(res.ok || res.reason === undefined ? {} : { reason: res.reason })
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
    errorMessage: boundedString(o.error_message, MAX_ERROR_MESSAGE_CHARS, 'insert response error_message'),
    ...(o.ok && o.hash.length > 0 ? { link: { prevHash: fixedHex(o.prev_hash, 32, 'insert response prev_hash'), hash: fixedHex(o.hash, 32, 'insert response hash') } } : {}),
    ...(o.ok && o.head !== undefined && o.head !== null ? { head: decodeHead(o.head) } : {}),
    ...(!o.ok && o.active !== '' ? { active: boundedString(o.active, MAX_ADDRESS_CHARS, 'insert response active') } : {}),
    ...(!o.ok && o.reason !== '' ? { reason: boundedString(o.reason, MAX_ERROR_CODE_CHARS, 'insert response reason') } : {})
  }
  if (response.ok ? response.seq === 0 : response.errorCode === '') {
    throw malformed('insert response', response.ok ? 'accepted without a seq' : 'refused without an error code')
  }
  return response
}

/** The head an answer carries: the entry's own, so never seq 0. */
function decodeHead (h: WireSignedHead): SignedHead {
  const head = signedHeadFromWire(h, 'insert response head')
  if (head.seq < 1) throw malformed('insert response', `head seq ${head.seq} is not a positive integer`)
  return head
}

/** The four codecs, as the protocol skeleton takes them. */
export const INSERT_CODEC = {
  encodeRequest: encodeInsertRequest,
  decodeRequest: decodeInsertRequest,
  encodeResponse: encodeInsertResponse,
  decodeResponse: decodeInsertResponse
}
