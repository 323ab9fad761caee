import protobuf from 'protobufjs'
import { LedgerMeshError } from '../../errors.js'
import { canonicalJson } from '../../policies/canonical.js'
import type { Policy } from '../../policies/policy.js'
import type { Entry } from '../entry.js'
import type { SignedHead } from '../head.js'

/**
 * The sync protocol's messages. A client sends one SyncRequest; the server answers with
 * SyncResponse frames: entry batches, then a frame with its master-signed head (a run of
 * entries is applied only once a signed head covers it). Hashes, keys and signatures travel
 * as raw bytes, policies as their canonical JSON.
 */
export const SYNC_PROTO = `
syntax = "proto3";
package ledgermesh.sync;

message SyncRequest {
  uint32 version = 1;
  uint64 after_seq = 2;    // the client's head: send entries after it
  bytes after_hash = 3;    // its hash, so the server can tell a diverged replica
  uint32 limit = 4;        // most entries in this answer (0: only the head)
  bool watch = 5;          // keep the stream open and push new entries as they come
}

message WireEntry {
  enum Op { PUT = 0; DELETE = 1; }
  uint64 seq = 1;
  Op op = 2;
  bytes policy = 3;        // canonical JSON
  bytes prev_hash = 4;
  bytes hash = 5;
}

message WireHead {
  uint64 seq = 1;
  bytes hash = 2;
  string time = 3;
  bytes public_key = 4;
  bytes signature = 5;
}

message SyncResponse {
  repeated WireEntry entries = 1;
  WireHead head = 2;       // ends a run: the entries so far lead up to it (or to more)
  bool more = 3;           // the server stopped at the limit before its head
  string error_code = 4;   // unsupported_version, diverged, bad_message, internal
  string error_message = 5;
}
`

const root = protobuf.parse(SYNC_PROTO, { keepCase: true }).root
const SyncRequestType = root.lookupType('ledgermesh.sync.SyncRequest')
const SyncResponseType = root.lookupType('ledgermesh.sync.SyncResponse')

export interface SyncRequest {
  version: number
  afterSeq: number
  afterHash: string
  limit: number
  watch: boolean
}

export interface SyncResponse {
  entries: Entry[]
  head?: SignedHead
  more: boolean
  error?: { code: string, message: string }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const bytes = (text: string): Buffer => Buffer.from(text, 'hex')
const TO_OBJECT = { longs: Number, enums: String, defaults: true } as const

function badMessage (what: string, err: unknown): LedgerMeshError {
  return new LedgerMeshError('bad_message', `malformed ${what}: ${err instanceof Error ? err.message : String(err)}`)
}

function seqOf (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badMessage(what, `seq ${String(value)} is not a safe non-negative integer`)
  return value
}

export function encodeRequest (req: SyncRequest): Uint8Array {
  return SyncRequestType.encode(SyncRequestType.fromObject({
    version: req.version, after_seq: req.afterSeq, after_hash: bytes(req.afterHash), limit: req.limit, watch: req.watch
  })).finish()
}

export function decodeRequest (data: Uint8Array): SyncRequest {
  let o: Record<string, any>
  try {
    o = SyncRequestType.toObject(SyncRequestType.decode(data), TO_OBJECT)
  } catch (err) {
    throw badMessage('sync request', err)
  }
  return { version: o.version, afterSeq: seqOf(o.after_seq, 'sync request'), afterHash: hex(o.after_hash), limit: o.limit, watch: o.watch }
}

export function encodeResponse (res: SyncResponse): Uint8Array {
  return SyncResponseType.encode(SyncResponseType.fromObject({
    entries: res.entries.map(e => ({
      seq: e.seq,
      op: e.op === 'put' ? 'PUT' : 'DELETE',
      policy: Buffer.from(canonicalJson(e.policy)),
      prev_hash: bytes(e.prevHash),
      hash: bytes(e.hash)
    })),
    ...(res.head !== undefined
      ? { head: { seq: res.head.seq, hash: bytes(res.head.hash), time: res.head.time, public_key: bytes(res.head.publicKey), signature: bytes(res.head.signature) } }
      : {}),
    more: res.more,
    error_code: res.error?.code ?? '',
    error_message: res.error?.message ?? ''
  })).finish()
}

export function decodeResponse (data: Uint8Array): SyncResponse {
  let o: Record<string, any>
  try {
    o = SyncResponseType.toObject(SyncResponseType.decode(data), TO_OBJECT)
  } catch (err) {
    throw badMessage('sync response', err)
  }
  const entries: Entry[] = (o.entries as Array<Record<string, any>>).map(e => {
    let policy: Policy
    try {
      policy = JSON.parse(Buffer.from(e.policy).toString('utf8'))
    } catch (err) {
      throw badMessage('sync entry policy', err)
    }
    return { seq: seqOf(e.seq, 'sync entry'), op: e.op === 'DELETE' ? 'delete' : 'put', policy, prevHash: hex(e.prev_hash), hash: hex(e.hash) }
  })
  const h = o.head as Record<string, any> | undefined
  return {
    entries,
    ...(h !== undefined && h !== null
      ? { head: { seq: seqOf(h.seq, 'signed head'), hash: hex(h.hash), time: h.time, publicKey: hex(h.public_key), signature: hex(h.signature) } }
      : {}),
    more: o.more === true,
    ...(o.error_code !== '' ? { error: { code: o.error_code, message: o.error_message } } : {})
  }
}

/** Bytes an entry takes in a frame, to split batches under the message size limit. */
export function entryWireSize (entry: Entry): number {
  return Buffer.byteLength(canonicalJson(entry.policy)) + 96
}
